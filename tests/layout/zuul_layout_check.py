"""Load a zuul.d/ directory with Zuul's own configuration loader and print JSON.

Run with the python of a virtualenv holding the pinned zuul (requirements/zuul.txt);
tests/layout/test_layout.py creates that virtualenv and reads the output. No ZooKeeper,
database or scheduler: a synthetic tenant with one trusted config project (the
pipelines and the `base` job a deployment provides) and the checked repository as an
untrusted project, each file parsed with TenantParser.loadProjectYAML, then the layout
built as a scheduler builds it. Zuul reports unknown attributes, undefined parents,
missing nodesets, templates, jobs and secrets in layout.loading_errors.

This uses private parts of zuul.configloader: requirements/zuul.txt pins the version.

Usage: python zuul_layout_check.py [--project NAME] [--tenant-project NAME ...] REPO_DIR
(--tenant-project: another project the tenant holds, e.g. one a job lists in
required-projects; it loads no configuration.)
Output (stdout): {"zuul_version", "errors": [...], "jobs": {...}, "project_templates": {...},
"projects": {...}}; exit status 0 even when the configuration has errors (they are data).
"""

import argparse
import configparser
import json
import logging
import shutil
import sys
import types
from importlib.metadata import version
from pathlib import Path

from zuul import configloader, model
from zuul.lib.ansible import AnsibleManager
from zuul.lib.connections import ConnectionRegistry

CONFIG_PROJECT = "shard-config"
CONNECTION = "git"
CANONICAL_HOSTNAME = "opendev.org"

# What a deployment's config project typically provides to a job library:
# the pipelines it reports in and the base job every job descends from.
CONFIG_PROJECT_YAML = """
- pipeline:
    name: check
    manager: independent
    trigger:
      git:
        - event: ref-updated
- pipeline:
    name: gate
    manager: dependent
    trigger:
      git:
        - event: ref-updated
- job:
    name: base
    parent: null
    description: The base job of the synthetic config project.
"""


def _connections(baseurl: str, hostname: str) -> ConnectionRegistry:
    if shutil.which("bwrap") is None:
        # The registry instantiates every driver; the bubblewrap one runs
        # `bwrap --version`. Nothing is sandboxed here, so bubblewrap is not needed.
        from zuul.driver.bubblewrap import BubblewrapDriver

        BubblewrapDriver._parse_bwrap_version = lambda self: (0, 0, 0)
    config = configparser.ConfigParser()
    config.read_dict(
        {
            f"connection {CONNECTION}": {
                "driver": "git",
                "baseurl": baseurl,
                "canonical_hostname": hostname,
            }
        }
    )
    registry = ConnectionRegistry()
    registry.configure(config, sources=True, triggers=True, reporters=True)
    return registry


def _tpc(source, name: str, trusted: bool, classes) -> model.TenantProjectConfig:
    tpc = model.TenantProjectConfig(source.getProject(name))
    tpc.load_classes = frozenset(classes)
    tpc.trusted = trusted
    tpc.branches = ["master"]
    tpc.dynamic_branches = []
    tpc.merge_modes = None
    return tpc


def _error(err) -> dict:
    ctx = err.key.context
    mark = err.key.mark
    return {
        "name": err.name,
        "severity": err.severity,
        "short_error": err.short_error,
        "error": err.error,
        "project": ctx.project_name if ctx else None,
        "path": ctx.path if ctx else None,
        "line": (mark.line + 1) if mark else None,
    }


def _owner(obj):
    """Canonical name of the project defining obj (None for built-ins such as noop)."""
    ctx = getattr(obj, "source_context", None)
    return ctx.project_canonical_name if ctx else None


def _playbooks(contexts) -> list:
    return [pb.path for pb in contexts or ()]


# Representative changes (their files), for which the layout reports whether
# each job would run: Zuul's own file matchers decide.
SAMPLE_CHANGES = {
    "docs only": ["doc/source/admin/index.rst", "README.rst"],
    "release note": ["releasenotes/notes/fix-1234-0123456789abcdef.yaml"],
    "api reference": ["api-ref/source/servers.inc"],
    "translations": ["nova/locale/de/LC_MESSAGES/nova.po"],
    "unit tests only": ["nova/tests/unit/compute/test_compute.py"],
    "functional tests only": ["nova/tests/functional/test_servers.py"],
    "code": ["nova/compute/manager.py", "nova/tests/unit/compute/test_compute.py"],
    "requirements": ["requirements.txt"],
    "migration": ["nova/db/main/migrations/versions/0123456789ab_new.py"],
}


def _runs_for(job) -> dict:
    runs = {}
    for name, files in SAMPLE_CHANGES.items():
        change = types.SimpleNamespace(files=files)
        runs[name] = bool(job.changeMatchesFiles(change))
    return runs


def _job(job, default_parent: str) -> dict:
    ctx = job.source_context
    # None: a base job (parent: null); no parent attribute: the tenant's default parent.
    parent = job.parent or default_parent
    if parent == job.BASE_JOB_MARKER:
        parent = None
    return {
        "project": ctx.project_name,
        "path": ctx.path,
        "line": (job.start_mark.line + 1) if job.start_mark else None,
        "parent": parent,
        "abstract": bool(job.abstract),
        "description": job.description,
        "pre_run": _playbooks(job.pre_run),
        "run": _playbooks(job.run),
        "post_run": _playbooks(job.post_run),
        "cleanup_run": _playbooks(job.cleanup_run),
        "roles": [
            {"project": r.project_name, "target_name": r.target_name, "implicit": r.implicit}
            for r in job.roles or ()
        ],
        "vars": sorted((job.variables or {}).keys()),
        # The job's own values of the variables that bound its waits.
        "wait_vars": {
            k: v
            for k, v in (job.variables or {}).items()
            if k in ("shard_upgrade_shards", "shard_wait_timeout")
        },
        "nodeset": getattr(job.nodeset, "name", job.nodeset) if job.nodeset else None,
        "secrets": [getattr(s, "name", str(s)) for s in (job.secrets or ())],
        "semaphores": sorted(getattr(s, "name", str(s)) for s in (job.semaphores or ())),
        "timeout": job.timeout,
        "post_timeout": job.post_timeout,
        "runs_for": _runs_for(job),
    }


def _pipelines(config) -> dict:
    return {
        name: sorted(ppc.job_list.jobs.keys()) for name, ppc in sorted(config.pipelines.items())
    }


def load(repo: Path, project: str, others=(), hostname: str = CANONICAL_HOSTNAME) -> dict:
    logging.basicConfig(level=logging.CRITICAL)
    connections = _connections(str(repo.parent), hostname)
    source = connections.connections[CONNECTION].source
    tenant = model.Tenant("shard")
    # What TenantParser.fromYaml sets for a tenant entry without options.
    tenant.default_base_job = "base"
    tenant.allowed_triggers = None
    tenant.allowed_reporters = None
    tenant.allowed_labels = None
    tenant.disallowed_labels = None
    tenant.use_nodepool = True
    tenant.anonymous_read_access = True
    tenant.role_mappings = {}
    tenant.web_root = None
    ansible_manager = AnsibleManager()
    tenant.default_ansible_version = ansible_manager.default_version
    config_tpc = _tpc(source, CONFIG_PROJECT, True, configloader.TenantParser.job_classes)
    lib_tpc = _tpc(source, project, False, configloader.TenantParser.job_classes)
    tenant.addTPC(config_tpc)
    tenant.addTPC(lib_tpc)
    for name in others:
        tenant.addTPC(_tpc(source, name, False, ()))

    loader = configloader.ConfigLoader(connections, model.SystemAttributes(), None, None, None)
    parser = loader.tenant_parser
    pcontext = configloader.ParseContext(
        connections, None, model.SystemAttributes(), ansible_manager
    )

    files = {"zuul.d/base.yaml": CONFIG_PROJECT_YAML}
    parsed = model.ParsedConfig()
    for tpc, trusted, contents in (
        (config_tpc, True, files),
        (lib_tpc, False, _read_zuul_d(repo)),
    ):
        for path, text in sorted(contents.items()):
            ctx = model.SourceContext(
                tpc.project.canonical_name,
                tpc.project.name,
                tpc.project.connection_name,
                "master",
                path,
            )
            with pcontext.errorContext(source_context=ctx):
                branch_config = parser.loadProjectYAML(text, ctx, pcontext)
            parser.addProjectBranchConfig(
                pcontext, parsed, tenant, tpc, branch_config, trusted=trusted
            )
    layout = parser._parseLayout(tenant, parsed, pcontext)
    tenant.layout = layout

    lib_name = lib_tpc.project.canonical_name
    jobs = {}
    for name, variants in sorted(layout.jobs.items()):
        mine = [j for j in variants if _owner(j) == lib_name]
        if mine:
            jobs[name] = [_job(j, tenant.default_base_job) for j in mine]
    templates = {}
    for name, tmpls in sorted(layout.project_templates.items()):
        mine = [t for t in tmpls if _owner(t) == lib_name]
        if mine:
            templates[name] = [
                {"path": t.source_context.path, "pipelines": _pipelines(t)} for t in mine
            ]
    projects = {}
    for name, configs in sorted(layout.project_configs.items()):
        projects[name] = [
            {
                "path": c.source_context.path,
                "templates": list(c.templates),
                "pipelines": _pipelines(c),
            }
            for c in configs
        ]
    return {
        "zuul_version": version("zuul"),
        "project": project,
        "errors": [_error(e) for e in layout.loading_errors.errors],
        "jobs": jobs,
        "project_templates": templates,
        "projects": projects,
    }


def _read_zuul_d(repo: Path) -> dict:
    files = {}
    for root in ("zuul.yaml", ".zuul.yaml"):
        if (repo / root).is_file():
            files[root] = (repo / root).read_text()
    for root in ("zuul.d", ".zuul.d"):
        if not (repo / root).is_dir():
            continue
        for path in sorted((repo / root).rglob("*")):
            if path.is_file() and path.suffix in (".yaml", ".yml"):
                files[str(path.relative_to(repo))] = path.read_text()
    return files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path, help="repository holding zuul.d/")
    parser.add_argument("--project", default="shard-jobs", help="its project name in the tenant")
    parser.add_argument(
        "--tenant-project",
        action="append",
        default=[],
        metavar="NAME",
        help="another project of the tenant (loads no configuration); repeatable",
    )
    parser.add_argument("--hostname", default=CANONICAL_HOSTNAME, help="canonical hostname")
    args = parser.parse_args(argv)
    result = load(args.repo.resolve(), args.project, args.tenant_project, args.hostname)
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
