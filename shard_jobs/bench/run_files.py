"""A finished run's figures, from the files it left: summary.json, the
efficiency report's report.json, and the Ansible task results of its
job-output.txt (or a cloud's cloud-up.log) with the module processes they
started."""

import json
import re
from pathlib import Path

import yaml

from shard_jobs import paths
from shard_jobs.rules import phases


def _json_file(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


# A task's result in job-output.txt (or a cloud's cloud-up.log): the line our
# callback (shard_progress) writes, followed by the result as indented JSON.
TASK_RESULT = re.compile(
    r"^(?P<status>ok|changed|failed|failed \(ignored\)|unreachable|fatal[^:]*): "
    r"\[(?P<host>[^\]]+)\] (?P<task>.*) \((?P<seconds>\d+(?:\.\d+)?)s\)$"
)


def task_results(log: Path) -> list[dict]:
    """The task results of a run's log, in order: status, task ("role : name"
    or a play's "name"), host, seconds and the result ({} when it does not parse). A
    skipped task leaves no result there."""
    try:
        lines = Path(log).read_text(errors="replace").splitlines()
    except OSError:
        return []
    results = []
    body = None
    for line in [*lines, None]:
        m = TASK_RESULT.match(line) if line is not None else None
        if m or line is None:
            if results and body is not None:
                try:
                    results[-1]["result"] = json.loads("\n".join(body)) if body else {}
                except ValueError:
                    results[-1]["result"] = {}
                if not isinstance(results[-1]["result"], dict):
                    results[-1]["result"] = {}
            if m:
                results.append(
                    {
                        "status": m["status"],
                        "task": m["task"],
                        "host": m["host"],
                        "seconds": float(m["seconds"]),
                    }
                )
                body = []
        elif body is not None:
            body.append(line)
    return results


# Actions that run on the controller, in the ansible-playbook process: no
# module process on the node (include_role and include_tasks, set_fact, assert,
# fail, debug, include_vars, meta, zuul_return ...).
CONTROLLER_ACTIONS = frozenset(
    {
        "add_host",
        "assert",
        "debug",
        "fail",
        "group_by",
        "import_playbook",
        "import_role",
        "import_tasks",
        "include",
        "include_role",
        "include_tasks",
        "include_vars",
        "meta",
        "pause",
        "set_fact",
        "set_stats",
        "validate_argument_spec",
        "zuul_return",
    }
)
STATIC_IMPORTS = frozenset({"import_playbook", "import_role", "import_tasks"})
# Action plugins that run two modules on the node: stat, then copy (or file
# when nothing changed). Counted with strace on ansible-core 2.19.
TWO_MODULES = frozenset({"copy", "template"})
# Tasks Ansible adds: fact gathering runs the setup module; a role's argument
# check runs on the controller.
IMPLICIT_TASKS = ((re.compile(r"Gathering Facts$"), 1), (re.compile(r"Validating arguments "), 0))


def action_processes(action: str, args) -> int:
    """Module processes one run of an action starts on the node (per loop item)."""
    name = action.rsplit(".", 1)[-1]
    if name in CONTROLLER_ACTIONS:
        return 0
    if name in TWO_MODULES and not (isinstance(args, dict) and args.get("remote_src")):
        return 2
    return 1


def _name_pattern(name: str) -> re.Pattern:
    """A task name as a pattern: what {{ ... }} renders to is any text."""
    parts = re.split(r"\{\{.*?\}\}", name.strip())
    return re.compile(".*".join(re.escape(part) for part in parts) + "$")


class TaskIndex:
    """Which action each task of the repository runs, found by its name as the
    log shows it ("role : name", or "name" for a play's own task and an
    included role's entry): the tasks of roles/ (a role's own, a profile's
    steps under roles/shard/profiles/, included by any role) and playbooks/."""

    def __init__(self, repo: Path | None = None):
        from ansible.playbook.task import Task

        self.keywords = set(Task.fattributes) | {"local_action", "block", "rescue", "always"}
        self.entries = []  # (role or None, name pattern, module processes per item)
        repo = Path(repo or paths.REPO)
        for path in sorted(repo.glob("roles/*/*/**/*.y*ml")):
            parts = path.relative_to(repo / "roles").parts
            if parts[1] == "tasks" or parts[1] == "handlers":
                self._add(self._load(path), parts[0])
            elif parts[1] == "profiles" and "tasks" in parts:
                self._add(self._load(path), None)
        for path in sorted(repo.glob("playbooks/**/*.y*ml")):
            for play in self._load(path):
                if isinstance(play, dict):
                    for section in ("pre_tasks", "tasks", "post_tasks", "handlers"):
                        self._add(play.get(section), None)

    @staticmethod
    def _load(path: Path) -> list:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            return []
        return data if isinstance(data, list) else []

    def _action(self, task: dict):
        for key in ("action", "local_action"):
            if key in task:
                value = task[key]
                if isinstance(value, dict):
                    return str(value.get("module", "")), value
                return str(value).split()[0] if value else "", {}
        for key, value in task.items():
            if key not in self.keywords and not key.startswith("with_"):
                return key, value
        return None, None

    def _add(self, tasks, role):
        for task in tasks or []:
            if not isinstance(task, dict):
                continue
            for section in ("block", "rescue", "always"):
                self._add(task.get(section), role)
            if "block" in task or not task.get("name"):
                continue
            action, args = self._action(task)
            # A static import leaves no result: the tasks it imports do.
            if action and action.rsplit(".", 1)[-1] not in STATIC_IMPORTS:
                processes = action_processes(action, args)
                self.entries.append((role, _name_pattern(str(task["name"])), processes))

    def processes(self, task: str) -> int | None:
        """Module processes per item of a task, by its logged name; None if unknown."""
        role, sep, name = task.partition(" : ")
        if not sep:
            role, name = None, task
        for pattern, count in IMPLICIT_TASKS:
            if pattern.match(name):
                return count
        found = [(r, n) for r, pattern, n in self.entries if pattern.match(name)]
        for wanted in (role, None):
            for r, n in found:
                if r == wanted:
                    return n
        return found[0][1] if found else None


def result_processes(per_item: int, result: dict) -> int:
    """Module processes of one task result: per item of a loop (a skipped item
    none), per attempt of a retried task (until/retries)."""
    if per_item == 0 or result.get("skipped"):
        return 0
    items = result.get("results")
    if isinstance(items, list):
        return per_item * sum(
            int(item.get("attempts") or 1)
            for item in items
            if isinstance(item, dict) and not item.get("skipped")
        )
    return per_item * int(result.get("attempts") or 1)


def ansible_counts(log: Path, index: "TaskIndex | None" = None) -> dict:
    """The Ansible tasks a run's log shows results of, and the module processes
    they started. A task the repository no longer has (renamed since the run)
    counts none and is named in "unknown_tasks": module_processes is then a
    lower bound."""
    results = task_results(log)
    if not results:
        return {"tasks": None, "module_processes": None}
    index = index or TaskIndex()
    processes, unknown = 0, []
    for r in results:
        per_item = index.processes(r["task"])
        if per_item is None:
            unknown.append(r["task"])
            continue
        processes += result_processes(per_item, r.get("result") or {})
    return {
        "tasks": len(results),
        "module_processes": processes,
        "unknown_tasks": sorted(set(unknown)),
    }


def read_run(build: str, runs_dir: Path | None = None, index: "TaskIndex | None" = None) -> dict:
    """What ./shard run left in its run directory (<runs>/<build>/): the result
    (summary.json), the efficiency report's figures (logs/shard/report.json:
    code under test's CPU, its share as the report measured it, the phases'
    seconds) and the Ansible counts (logs/job-output.txt)."""
    logs = Path(runs_dir or paths.RUNS_DIR) / build / "logs"
    summary = _json_file(logs / "summary.json") or {}
    report = _json_file(logs / "shard" / "report.json") or {}
    cpu = report.get("cpu") or {}
    groups = cpu.get("groups") or {}
    seconds = {}
    for phase in report.get("phases") or []:
        if isinstance(phase, dict) and phase.get("seconds") is not None:
            name = phase.get("name")
            seconds[name] = round(seconds.get(name, 0.0) + phase["seconds"], 2)
    if not seconds:  # no report: the phases the summary has
        for name, phase in (summary.get("phases") or {}).items():
            if isinstance(phase, dict) and phase.get("seconds") is not None:
                seconds[name] = phase["seconds"]
    out = {
        "result": summary.get("result"),
        "verdict": report.get("verdict"),
        # The report's split of the machine's CPU (cpu.groups), over its window
        # (first to last phase event): report_cpu_s is the machine's.
        "code_cpu_s": (groups.get(phases.CODE_UNDER_TEST) or {}).get("seconds"),
        "cloud_cpu_s": (groups.get(phases.TARGET_CLOUD) or {}).get("seconds"),
        "harness_cpu_s": (groups.get(phases.HARNESS) or {}).get("seconds"),
        "other_cpu_s": (groups.get(phases.OTHER) or {}).get("seconds"),
        "report_cpu_s": (cpu.get(phases.MACHINE) or {}).get("seconds"),
        "report_code_share": cpu.get("code_share"),
        "phases": seconds,
        "playbooks": len(summary.get("playbooks") or []),
        "report": str(logs / "shard" / "report.html") if report else None,
    }
    out.update(ansible_counts(logs / "job-output.txt", index))
    return out


def slowest_tasks(job_output: Path, count=8) -> list[dict]:
    """The slowest tasks of a run's job-output.txt."""
    tasks = [{"task": r["task"], "seconds": r["seconds"]} for r in task_results(job_output)]
    return sorted(tasks, key=lambda t: -t["seconds"])[:count]
