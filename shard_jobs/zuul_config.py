"""Reading zuul.d/ the way Zuul freezes a job: inheritance, playbooks, vars, secrets.

Only what a local run needs. Zuul's own configloader checks the layout (the
`layout` test tier); this module resolves one job for `./shard run`.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class ConfigError(Exception):
    pass


@dataclass
class Playbook:
    path: str
    cleanup: bool = False
    # The job whose definition lists this playbook: its secrets apply.
    job: str = ""


@dataclass
class FrozenJob:
    name: str
    chain: list  # from the base to the job itself
    pre_run: list = field(default_factory=list)
    run: list = field(default_factory=list)
    post_run: list = field(default_factory=list)
    variables: dict = field(default_factory=dict)
    required_projects: list = field(default_factory=list)
    secrets: dict = field(default_factory=dict)  # job name -> [{name, secret}]
    timeout: int | None = None
    description: str = ""


def _tag_constructors(loader):
    # !encrypted/pkcs1-oaep values cannot be decrypted locally; !inherit and
    # !override only change merge semantics Zuul applies to lists.
    def any_tag(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_mapping(node, deep=True)

    loader.add_multi_constructor("!", any_tag)


class _Loader(yaml.SafeLoader):
    pass


_tag_constructors(_Loader)


def load(zuul_d: Path) -> dict:
    """All config objects of zuul.d/*.yaml (and .zuul.yaml style files) by type and name."""
    objects = {"job": {}, "secret": {}, "project-template": {}, "project": [], "semaphore": {}}
    files = sorted(zuul_d.glob("*.yaml")) + sorted(zuul_d.glob("*.yml"))
    if not files:
        raise ConfigError(f"no Zuul configuration in {zuul_d}")
    for path in files:
        docs = yaml.load(path.read_text(), Loader=_Loader) or []
        for item in docs:
            ((kind, body),) = item.items()
            if kind == "project":
                objects["project"].append(body)
            else:
                objects.setdefault(kind, {})[body["name"]] = body
    return objects


def _playbooks(value, job):
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(Playbook(item, False, job))
        else:
            out.append(Playbook(item["name"], bool(item.get("cleanup", False)), job))
    return out


def deep_merge(base: dict, over: dict) -> dict:
    """base with over on top, mappings merged key by key: how Zuul merges a job's
    vars into its parent's (and Ansible's combine(recursive=True))."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def freeze(objects: dict, name: str) -> FrozenJob:
    jobs = objects["job"]
    if name not in jobs:
        known = ", ".join(sorted(n for n, j in jobs.items() if not j.get("abstract")))
        raise ConfigError(f"unknown job {name!r} (jobs: {known})")
    if jobs[name].get("abstract"):
        raise ConfigError(f"job {name!r} is abstract: run one of its children")
    chain = []
    current = name
    while current:
        if current in chain:
            raise ConfigError(f"job {name!r} inherits from itself via {current!r}")
        if current not in jobs:
            if current == "base":  # the tenant's base job lives in its config project
                break
            raise ConfigError(f"job {chain[-1]!r} has an unknown parent {current!r}")
        chain.append(current)
        current = jobs[current].get("parent", "base")
    chain.reverse()

    frozen = FrozenJob(name=name, chain=chain)
    for job_name in chain:
        body = jobs[job_name]
        # Zuul: parents' pre-run first, children's post-run first, the
        # nearest run playbook wins; variables deep-merge, child over parent.
        frozen.pre_run += _playbooks(body.get("pre-run"), job_name)
        frozen.post_run = _playbooks(body.get("post-run"), job_name) + frozen.post_run
        if body.get("run"):
            frozen.run = _playbooks(body.get("run"), job_name)
        frozen.variables = deep_merge(frozen.variables, body.get("vars") or {})
        for project in body.get("required-projects") or []:
            pname = project if isinstance(project, str) else project["name"]
            if pname not in frozen.required_projects:
                frozen.required_projects.append(pname)
        if body.get("secrets"):
            frozen.secrets[job_name] = [
                s if isinstance(s, dict) else {"name": s, "secret": s} for s in body["secrets"]
            ]
        if body.get("timeout"):
            frozen.timeout = body["timeout"]
        frozen.description = body.get("description", frozen.description)
    if not frozen.run:
        raise ConfigError(f"job {name!r} has no run playbook")
    return frozen


SUMMARY_WIDTH = 100


def runnable_jobs(objects: dict) -> list[tuple[str, str]]:
    """(name, first sentence of the description) of every job that is not abstract."""
    out = []
    for name, body in sorted(objects["job"].items()):
        if body.get("abstract"):
            continue
        paragraph = str(body.get("description") or "").strip().split("\n\n")[0]
        text = " ".join(paragraph.split()).replace("``", "")
        sentence = re.split(r"(?<=\.)\s", text, maxsplit=1)[0]
        if len(sentence) > SUMMARY_WIDTH:
            sentence = sentence[:SUMMARY_WIDTH].rsplit(" ", 1)[0] + " ..."
        out.append((name, sentence))
    return out


def secrets_for(frozen: FrozenJob, playbook: Playbook) -> list:
    """Secrets a playbook receives: its own job's, plus children's passed to parents."""
    out = list(frozen.secrets.get(playbook.job, []))
    below = frozen.chain[frozen.chain.index(playbook.job) + 1 :]
    for child in below:
        out += [s for s in frozen.secrets.get(child, []) if s.get("pass-to-parent")]
    return out
