"""The tasks a job ran and the host each ran on, from a finished build's logs: a
local run's job-output.txt (the shard_progress callback's lines) or a Zuul
build's job-output.json (Zuul's zuul_json callback), in one form, so that the
same job under Zuul and under ./shard run can be compared (the zuul tier does).

A task is (task name without its role, host), in the order the tasks ran.
Tasks skipped on a host are not in the list: the local log does not show them.
"""

import json
from pathlib import Path

from shard_jobs.bench.run_files import task_results

# What a role prefixes to its tasks' names in the local log ("role : name").
ROLE_SEPARATOR = " : "


def _bare(name: str) -> str:
    return name.split(ROLE_SEPARATOR, 1)[1] if ROLE_SEPARATOR in name else name


def from_local(job_output_txt: Path) -> list[tuple[str, str]]:
    """The tasks of a local run, from its job-output.txt."""
    return [(_bare(r["task"]), r["host"]) for r in task_results(job_output_txt)]


def from_zuul(job_output_json: Path, project: str) -> list[tuple[str, str]]:
    """The tasks of a Zuul build's playbooks from I(project) (its canonical name's
    last part, e.g. shard-jobs: the site's base job's playbooks left out)."""
    playbooks = json.loads(Path(job_output_json).read_text())
    tasks = []
    for playbook in playbooks:
        # <canonical hostname>/<project>/<path in the project>
        path = playbook.get("playbook") or ""
        if not path.partition("/")[2].startswith(f"{project}/"):
            continue
        for play in playbook.get("plays", []):
            for task in play.get("tasks", []):
                name = task["task"]["name"]
                for host, result in (task.get("hosts") or {}).items():
                    if not result.get("skipped"):
                        tasks.append((_bare(name), host))
    return tasks
