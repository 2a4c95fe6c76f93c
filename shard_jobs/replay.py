"""A finished build, run again here: `./shard run --from-zuul LOG_URL_OR_DIR`.

The one home of reading a build's `zuul-info/inventory.yaml`, the inventory
Zuul's executor gave the job, as zuul-jobs' log-inventory role copies it into
the build's logs (and as `./shard run` writes it into its own): the job, its
variables, the project and change it tested. A replay runs that job with
those variables against the embedded cloud (or --cloud), the change's source
given by --src.

What is not replayed: anything that only made sense on the build's hosts
(Zuul's own `zuul` and `nodepool` variables, Ansible's connection variables)
and any credential (a build's log is public; the local run takes its own).
"""

import http.client
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from shard_jobs.settings import RunError

INVENTORY = "zuul-info/inventory.yaml"
# The job's credentials travel as this variable (a secret passed to the
# parent): never taken from a log.
SECRET_VARIABLE = "shard_cloud"
# A log's inventory is small; anything larger is not one.
MAX_BYTES = 4 * 1024 * 1024
# The change's place in Zuul's item that the local run takes over (its
# build, paths and projects stay its own).
ITEM_KEYS = ("tenant", "pipeline", "branch", "ref", "change", "patchset", "change_url")


@dataclass(frozen=True)
class Build:
    """What a finished build ran: its job, variables, project and change."""

    where: str
    build: str
    job: str
    project: str
    variables: dict
    item: dict
    # The commit Zuul's merger prepared for the project ("" when the build does not say).
    commit: str = ""

    def describe(self) -> str:
        change = self.item.get("change")
        what = f"change {change},{self.item.get('patchset')}" if change else self.item.get("ref")
        names = ", ".join(sorted(self.variables)) or "none"
        return (
            f"build {self.build or '?'} of {self.job} ({self.project} {what} on "
            f"{self.item.get('branch', '?')}) from {self.where}, with its variables {names}"
        )


def _job_variable(name: str) -> bool:
    return not (
        name in ("zuul", "nodepool", SECRET_VARIABLE) or name.startswith(("zuul_", "ansible_"))
    )


def _decoded(data: bytes, encoding: str, url: str) -> bytes:
    """A log server's compressed file as it was written: zuul-jobs' uploads store text
    with Content-Encoding gzip or deflate, which urllib leaves as it is."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise RunError(f"cannot read {url}: unknown Content-Encoding {encoding!r}")
    # gzip (wbits 31), zlib (15), raw deflate (-15): servers label deflate either way.
    for wbits in (31, 15, -15) if encoding == "deflate" else (31,):
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(data, MAX_BYTES + 1)
        except zlib.error:
            continue
        return out
    raise RunError(f"cannot read {url}: its {encoding} content does not decompress")


def _read_text(where: str) -> str:
    scheme, sep, _ = where.partition("://")
    if sep and scheme not in ("http", "https"):
        raise RunError(f"cannot read {where}: a build's logs are a URL (http, https) or a path")
    if sep:
        url = where if where.endswith(INVENTORY) else f"{where.rstrip('/')}/{INVENTORY}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (http(s) only)
                data = _decoded(
                    response.read(MAX_BYTES + 1), response.headers.get("Content-Encoding"), url
                )
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc.__class__.__name__
            raise RunError(f"cannot read {url}: {reason}") from None
    else:
        path = Path(where).expanduser()
        if path.is_dir():
            path = path / INVENTORY
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_BYTES + 1)
        except OSError as exc:
            raise RunError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise RunError(f"{where}: {INVENTORY} is larger than {MAX_BYTES} bytes: not a build's")
    return data.decode("utf-8", errors="replace")


def read(where: str) -> Build:
    """The build whose logs are at WHERE (a log URL, a log directory, or its inventory file);
    a RunError of one line when it holds no build of a job."""
    try:
        found = yaml.safe_load(_read_text(where))
    except yaml.YAMLError as exc:
        line = str(exc).splitlines()[0]
        raise RunError(f"{where}: {INVENTORY} is not YAML: {line}") from None
    return build_of(found, where)


def build_of(inventory, where: str) -> Build:
    """The build an inventory (Zuul's shape, parsed) describes."""
    all_vars = (
        ((inventory or {}).get("all") or {}).get("vars") if isinstance(inventory, dict) else None
    )
    zuul = all_vars.get("zuul") if isinstance(all_vars, dict) else None
    project = (zuul or {}).get("project") if isinstance(zuul, dict) else None
    if (
        not isinstance(zuul, dict)
        or not isinstance(zuul.get("job"), str)
        or not isinstance(project, dict)
        or not isinstance(project.get("name"), str)
    ):
        raise RunError(
            f"{where}: {INVENTORY} names no job and project (all.vars.zuul.job, "
            "all.vars.zuul.project.name): not a Zuul build's inventory"
        )
    prepared = [
        p
        for p in (zuul.get("projects") or {}).values()
        if isinstance(p, dict) and p.get("name") == project["name"]
    ]
    return Build(
        where=where,
        build=str(zuul.get("build") or ""),
        job=zuul["job"],
        project=project["name"],
        variables={k: v for k, v in all_vars.items() if _job_variable(k)},
        item={k: zuul[k] for k in ITEM_KEYS if zuul.get(k) is not None},
        commit=str((prepared[0].get("commit") if prepared else "") or ""),
    )


def settings(build: Build, job: str | None, trees: dict) -> dict:
    """The run settings a replay gives: the build's job (or JOB, a job of this repository
    that a site's job was derived from), its variables (under -e), its change in Zuul's
    item. The change's tree must come with --src (TREES: sources.local_trees of them): a
    replay never tests anything else."""
    if build.project not in trees:
        raise RunError(
            f"the build tested {build.project} ({build.describe()}): pass --src "
            f"{build.project}=PATH, a tree holding that change"
        )
    return {"job": job or build.job, "variables": build.variables, "zuul_item": build.item}


def tree_note(build: Build, tree_head: str) -> str:
    """What the replay says of the --src tree: the build's commit, or not ("" when the
    build does not record it)."""
    if not build.commit:
        return ""
    if tree_head == build.commit:
        return f"the --src tree is at the build's commit {build.commit[:12]}"
    return (
        f"the --src tree is at {tree_head[:12]}, not at the build's commit {build.commit[:12]}:"
        " this run tests the tree, not the build's change"
    )


def inventory(hosts: dict, job_vars: dict, zuul: dict) -> dict:
    """The inventory a local run logs, in the shape Zuul's executor gives its jobs (the
    `zuul` variable among all.vars): what a replay reads back."""
    job_vars = {k: v for k, v in job_vars.items() if k != SECRET_VARIABLE}
    return {"all": {"hosts": hosts, "vars": {**job_vars, "zuul": zuul}}}
