"""The tasks a job ran and the host each ran on, from a finished build's logs: a
local run's job-output.txt (the shard_progress callback's lines) or a Zuul
build's job-output.json (Zuul's zuul_json callback), in one form, so that the
same job under Zuul and under ./shard run can be compared (the zuul tier does).

A task is (task name without its role, host), in the order the tasks ran.
Tasks skipped on a host are not in the list: the local log does not show them.
"""

import json
from pathlib import Path

from shard_jobs import paths
from shard_jobs.bench.run_files import task_results

# What the local log puts before a role's task ("role : name"). Zuul's
# job-output.json keeps the role apart, and its include tasks are the role's,
# where the local log names them bare: names are compared without the role.
ROLE_SEPARATOR = " : "


def _without_role(name: str, roles: frozenset) -> str:
    role, sep, rest = name.partition(ROLE_SEPARATOR)
    # Only a role's own prefix: a task may have " : " in its name.
    return rest if sep and role in roles else name


def from_local(job_output_txt: Path, roles_dir: Path = paths.ROLES) -> list[tuple[str, str]]:
    """The tasks of a local run, from its job-output.txt. Every task of the
    roles is named (ansible-lint's name[missing]); an unnamed one would read
    as its action here and as "" in Zuul's."""
    roles = frozenset(p.name for p in Path(roles_dir).iterdir() if p.is_dir())
    return [(_without_role(r["task"], roles), r["host"]) for r in task_results(job_output_txt)]


def from_zuul(job_output_json: Path, project: str) -> list[tuple[str, str]]:
    """The tasks of a Zuul build's playbooks from I(project), its name as the
    tenant has it (shard-jobs, openstack/nova): those whose
    zuul_execution_canonical_name_and_path is <canonical hostname>/<project>/...
    (the site's base job's playbooks left out)."""
    playbooks = json.loads(Path(job_output_json).read_text())
    tasks = []
    for playbook in playbooks:
        path = playbook.get("playbook") or ""
        if not path.partition("/")[2].startswith(f"{project}/"):
            continue
        for play in playbook.get("plays", []):
            for task in play.get("tasks", []):
                for host, result in (task.get("hosts") or {}).items():
                    if not result.get("skipped"):
                        tasks.append((task["task"]["name"], host))
    return tasks
