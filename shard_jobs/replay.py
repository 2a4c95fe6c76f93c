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

import urllib.error
import urllib.request
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

    def describe(self) -> str:
        change = self.item.get("change")
        what = f"change {change},{self.item.get('patchset')}" if change else self.item.get("ref")
        return (
            f"build {self.build or '?'} of {self.job} ({self.project} {what} on "
            f"{self.item.get('branch', '?')}) from {self.where}"
        )


def _job_variable(name: str) -> bool:
    return not (
        name in ("zuul", "nodepool", SECRET_VARIABLE) or name.startswith(("zuul_", "ansible_"))
    )


def _read_text(where: str) -> str:
    if where.startswith(("http://", "https://")):
        url = f"{where.rstrip('/')}/{INVENTORY}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (http(s) only)
                data = response.read(MAX_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
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
    return Build(
        where=where,
        build=str(zuul.get("build") or ""),
        job=zuul["job"],
        project=project["name"],
        variables={k: v for k, v in all_vars.items() if _job_variable(k)},
        item={k: zuul[k] for k in ITEM_KEYS if zuul.get(k) is not None},
    )


def settings(build: Build, job: str | None, src_items) -> dict:
    """The run settings a replay gives: the build's job (or JOB, a job of this repository
    that a site's job was derived from), its variables (under -e), its change in Zuul's
    item. The change's tree must come with --src: a replay never tests anything else."""
    if not any(item.partition("=")[0] == build.project for item in src_items):
        raise RunError(
            f"the build tested {build.project} ({build.describe()}): pass --src "
            f"{build.project}=PATH, a tree holding that change"
        )
    return {"job": job or build.job, "variables": build.variables, "zuul_item": build.item}


def inventory(hosts: dict, job_vars: dict, zuul: dict) -> dict:
    """The inventory a local run logs, in the shape Zuul's executor gives its jobs (the
    `zuul` variable among all.vars): what a replay reads back."""
    job_vars = {k: v for k, v in job_vars.items() if k != SECRET_VARIABLE}
    return {"all": {"hosts": hosts, "vars": {**job_vars, "zuul": zuul}}}
