"""./shard bench: what testing a change costs, several ways, on this machine.

    from-scratch-fresh         a cloud of its own (not the default one) from
                               nothing, as devstack on a fresh CI node: a new
                               services' virtualenv from the package cache,
                               configure, start; then the floor's cycle on it
    from-scratch-preinstalled  the same with the services' virtualenv kept
                               (its packages pre-installed)
    shard                      ./shard run shard-nova-compute against the
                               running default cloud
    floor                      the shard job's work in a plain openstacksdk
                               script (bench_floor.py): the build of the
                               change, then the same cycle
    shard-glance-api           ./shard run shard-glance-api (not by default)
    shard-nova-compute-upgrade ./shard run shard-nova-compute-upgrade (not by
                               default; needs a cloud whose ordinary compute
                               runs the previous release, for example
                               SHARD_CLOUD_VAR_COMPUTE_NOVA=33.0.2)

Each variant runs --repeat times (interleaved, so that the machine's other work
spreads over all of them); the table shows medians. For each run: wall seconds,
CPU seconds of every process on the machine (/proc/stat busy time), the peak of
the machine's memory in use above its level at the start, the OpenStack
processes the run started, the CPU seconds of the code under test (the service
that runs the change) and its share of the machine's CPU, and the Ansible tasks
and module processes the run started (from the run's job-output.txt, or the
cloud's cloud-up.log). A shard run's figures come from the files it leaves in
its run directory (summary.json, logs/shard/report.json, job-output.txt), never
from its terminal output. Then the scaling of shard jobs run at once, and the
harness overhead: where a shard run's time goes beyond the floor, per phase.
Everything goes to a JSON file too.
"""

import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import yaml

from shard_jobs import paths
from shard_jobs.rules import labels, phases, processes

VARIANTS = (
    "from-scratch-fresh",
    "from-scratch-preinstalled",
    "shard",
    "floor",
    "shard-glance-api",
    "shard-nova-compute-upgrade",
)
# The other jobs take minutes more per run (the upgrade job two builds and a
# restart; the glance job its own glance source): run them with --only.
DEFAULT_VARIANTS = VARIANTS[:4]
# Names a variant had before.
RENAMED = {"from-scratch": "from-scratch-preinstalled (or from-scratch-fresh)"}
# The variants that are ./shard run of a job, and that job.
SHARD_JOBS = {
    "shard": "shard-nova-compute",
    "shard-glance-api": "shard-glance-api",
    "shard-nova-compute-upgrade": "shard-nova-compute-upgrade",
}
JOB = SHARD_JOBS["shard"]
# The ratios the table prints: the shard run over each of the others.
RATIOS = (
    ("shard", "from-scratch-fresh"),
    ("shard", "from-scratch-preinstalled"),
    ("shard", "floor"),
)
# The floor builds what the shard variant's job builds: this profile's package.
FLOOR_PROFILE = paths.ROLES / "shard" / "profiles" / "nova-compute" / "profile.yaml"
# The floor's dependency virtualenvs (one per requirements, constraints and
# interpreter), kept between benches as the job's build keeps its cache.
FLOOR_CACHE = paths.HOME / "cache" / "bench-floor"
# The from-scratch variants' own cloud: other ports, databases, vhost and users
# than the default cloud (and the test suite's clouds), destroyed at the end.
# Its ports lie below the kernel's ephemeral range (32768-60999 by default):
# there, any client connection of the machine may hold one for a while, and the
# cloud would not come up.
BENCH_CLOUD = {
    "SHARD_CLOUD_DIR": "/tmp/shard-jobs-bench-cloud",
    "SHARD_CLOUD_VAR_PORTS": json.dumps(
        {
            "keystone": 31000,
            "placement": 31778,
            "glance": 31292,
            "neutron": 31696,
            "nova_api": 31774,
        }
    ),
    "SHARD_CLOUD_VAR_DB_PREFIX": "shardbench_",
    "SHARD_CLOUD_VAR_DB_USER": "shard_bench",
    "SHARD_CLOUD_VAR_RABBIT_VHOST": "shard-bench",
    "SHARD_CLOUD_VAR_RABBIT_USER": "shard_bench",
    "SHARD_CLOUD_VAR_NAME": "shard-bench",
}
# The shard and floor variants use the default cloud: the one ./shard cloud up
# manages in this environment (SHARD_CLOUD_DIR and SHARD_CLOUD_VAR_* included,
# as CI sets them for a cloud of its own names).
DEFAULT_CLOUD_DIR = paths.CLOUD_DIR
SAMPLE_INTERVAL = 0.5
SHARD = str(paths.REPO / "shard")


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- measuring


def machine_busy(proc="/proc") -> float:
    """CPU-seconds all the machine's CPUs spent busy since boot (the phase sampler's rule)."""
    return phases.machine_seconds(proc)[0]


def memory_used(proc="/proc") -> int:
    """Bytes in use on the machine: MemTotal - MemAvailable."""
    info = {}
    with open(f"{proc}/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            info[key] = int(rest.split()[0]) * 1024
    return info["MemTotal"] - info.get("MemAvailable", info.get("MemFree", 0))


PROGRAM = re.compile(r"^(nova|keystone|glance|neutron|placement)(-[a-z-]+)?$")
TITLE = re.compile(r"^([a-z][a-z-]*): .*?(?:\[([\w-]+)\])?$")


def openstack_program(argv: list[str]) -> str | None:
    """The OpenStack program a process runs, from its command line, or None.

    Knows the scripts (bin/nova-compute, bin/keystone-manage, run by their
    interpreter or not), gunicorn serving a service (--name) and the process
    titles services give themselves ("nova-conductor: master process [...]",
    "gunicorn: worker [neutron]")."""
    if not argv:
        return None
    # A process title overwrites the command line, padded with spaces.
    argv = [argv[0].strip(), *argv[1:]]
    title = TITLE.match(argv[0])
    if title and " " in argv[0]:
        name, bracket = title.group(1), title.group(2)
        if name in ("gunicorn", "uwsgi") and bracket and PROGRAM.match(bracket):
            return bracket
        if PROGRAM.match(name):
            return name
    names = [os.path.basename(a) for a in argv[:2]]
    for name in names:
        if PROGRAM.match(name):
            return name
    if "gunicorn" in names and "--name" in argv[:-1]:
        name = argv[argv.index("--name") + 1]
        return name if PROGRAM.match(name) else None
    return None


def _read(path, mode="r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


class Sampler:
    """Every SAMPLE_INTERVAL seconds: the machine's memory in use (its peak), and
    the OpenStack processes started since the sampler started that belong to the
    run under measurement: a descendant of `root` (this process) when first seen,
    a child of one of them (a worker), or one whose command line, working
    directory or environment mentions one of `scopes` (a daemon that its
    launcher left: a service's configuration path, a shard's label)."""

    def __init__(self, scopes=(), root=None, proc="/proc"):
        self.proc = proc
        self.root = os.getpid() if root is None else root
        self.scopes = [s.encode() for s in scopes if s]
        self.baseline = {(pid, start) for pid, start, _ppid in self._stats()}  # ran before
        self.seen = set(self.baseline)
        self.started = {}  # (pid, start) -> program
        self.mem_start = memory_used(proc)
        self.mem_peak = self.mem_start
        self.rss_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _stats(self):
        for pid, fields in processes.process_table(self.proc).items():
            yield pid, int(fields[processes.STARTTIME]), int(fields[processes.PPID])

    def _descends(self, pid, parents):
        for _ in range(64):
            pid = parents.get(pid)
            if pid is None or pid <= 1:
                return False
            if pid == self.root:
                return True
        return False

    def _mine(self, pid, parents, starts):
        ppid = parents.get(pid)
        if (ppid, starts.get(ppid)) in self.started or self._descends(pid, parents):
            return True
        blobs = [
            _read(f"{self.proc}/{pid}/cmdline", "rb") or b"",
            os.fsencode(_safe_readlink(f"{self.proc}/{pid}/cwd")),
            _read(f"{self.proc}/{pid}/environ", "rb") or b"",
        ]
        return any(scope in blob for scope in self.scopes for blob in blobs)

    def sample(self):
        stats = list(self._stats())
        starts = {pid: start for pid, start, _ppid in stats}
        parents = {pid: ppid for pid, _start, ppid in stats}
        # Parents before children: a worker is counted with its master.
        for pid, start, _ppid in sorted(stats, key=lambda s: s[1]):
            key = (pid, start)
            if key in self.seen:
                continue
            self.seen.add(key)
            raw = _read(f"{self.proc}/{pid}/cmdline", "rb")
            if not raw:
                continue
            argv = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
            program = openstack_program(argv)
            if program and self._mine(pid, parents, starts):
                self.started[key] = program
        self.mem_peak = max(self.mem_peak, memory_used(self.proc))
        rss = 0
        for pid, start in self.started:
            if starts.get(pid) == start:
                statm = _read(f"{self.proc}/{pid}/statm")
                if statm:
                    rss += int(statm.split()[1]) * os.sysconf("SC_PAGE_SIZE")
        self.rss_peak = max(self.rss_peak, rss)

    def adopt(self, pids):
        """Count these processes and their descendants as the run's, those that
        were not running at the start (a cloud's services, named by its pid
        files: a service that renamed itself before a sample saw it, and whose
        launcher had already left, has no other mark of whose it is)."""
        stats = list(self._stats())
        starts = {pid: start for pid, start, _ppid in stats}
        wanted, grew = set(pids), True
        while grew:
            grew = False
            for pid, _start, ppid in stats:
                if ppid in wanted and pid not in wanted:
                    wanted.add(pid)
                    grew = True
        for pid in wanted:
            key = (pid, starts.get(pid))
            if key[1] is None or key in self.baseline or key in self.started:
                continue
            self.seen.add(key)
            raw = _read(f"{self.proc}/{pid}/cmdline", "rb") or b""
            argv = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
            program = openstack_program(argv)
            if program:
                self.started[key] = program

    def _loop(self):
        while not self._stop.wait(SAMPLE_INTERVAL):
            self.sample()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample()

    def result(self) -> dict:
        programs = {}
        for program in self.started.values():
            programs[program] = programs.get(program, 0) + 1
        return {
            "peak_mem_mib": round((self.mem_peak - self.mem_start) / 2**20),
            "openstack_processes": len(self.started),
            "openstack_programs": dict(sorted(programs.items())),
            "openstack_rss_peak_mib": round(self.rss_peak / 2**20),
        }


def _safe_readlink(path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def measure(scopes, func) -> dict:
    """Run func(sampler) -> dict and add wall and CPU seconds, memory and processes."""
    cpu0, t0 = machine_busy(), time.monotonic()
    load0 = os.getloadavg()[0]
    with Sampler(scopes) as sampler:
        result = func(sampler)
    result.update(
        wall_s=round(time.monotonic() - t0, 1),
        cpu_s=round(machine_busy() - cpu0, 1),
        load1_before=round(load0, 2),
        **sampler.result(),
    )
    return with_share(result)


def with_share(result: dict) -> dict:
    """The code under test's share of the machine's CPU in a measured run."""
    code, cpu = result.get("code_cpu_s"), result.get("cpu_s")
    result["code_share"] = round(code / cpu, 4) if code and cpu else None
    return result


def _json_file(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- what a run left


# A task's result in job-output.txt (or a cloud's cloud-up.log): the line our
# callback (shard_progress) writes, followed by the result as indented JSON.
TASK_RESULT = re.compile(
    r"^(?P<status>ok|changed|failed|failed \(ignored\)|unreachable|fatal[^:]*): "
    r"\[(?P<host>[^\]]+)\] (?P<task>.*) \((?P<seconds>\d+(?:\.\d+)?)s\)$"
)


def task_results(log: Path) -> list[dict]:
    """The task results of a run's log, in order: status, task ("role : name"
    or a play's "name"), seconds and the result ({} when it does not parse). A
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
                    {"status": m["status"], "task": m["task"], "seconds": float(m["seconds"])}
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
        "code_cpu_s": (groups.get(phases.CODE_UNDER_TEST) or {}).get("seconds"),
        "report_cpu_s": (cpu.get(phases.MACHINE) or {}).get("seconds"),
        "report_code_share": cpu.get("code_share"),
        "phases": seconds,
        "playbooks": len(summary.get("playbooks") or []),
        "report": str(logs / "shard" / "report.html") if report else None,
    }
    out.update(ansible_counts(logs / "job-output.txt", index))
    return out


# ---------------------------------------------------------------- the variants


def _env(extra=None) -> dict:
    """The environment of a command: this one for the default cloud; for the bench's
    own cloud (extra), nothing of the default cloud's SHARD_CLOUD_* settings."""
    if extra is None:
        return dict(os.environ)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARD_CLOUD_")}
    env.update(extra)
    return env


def new_build() -> str:
    """A build id, as Zuul's; the run's label (shard-<12 hex>) is derived from it."""
    return uuid.uuid4().hex


def start_shard_job(workdir: Path, build: str, job: str = JOB):
    """./shard run JOB as a process, with a build id known in advance."""
    log = open(workdir / f"{labels.label_for(build)}.out", "w+")  # noqa: SIM115 (closed in finish)
    proc = subprocess.Popen(
        [SHARD, "run", job, "--json", "--build", build],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=_env(),
    )
    return {"proc": proc, "build": build, "job": job, "log": log, "start": time.monotonic()}


def label_of(build: str) -> str:
    return labels.label_for(build)


def wait_jobs(jobs: list[dict]):
    """Wait for every job, noting when each one ended (not when it was looked at)."""
    while True:
        for job in jobs:
            if "end" not in job and job["proc"].poll() is not None:
                job["end"] = time.monotonic()
        if all("end" in job for job in jobs):
            return
        time.sleep(0.2)


def finish_shard_job(job) -> dict:
    """Wait until a ./shard run ends: nothing else, as this is measured."""
    wait_jobs([job])
    job["log"].close()
    return {
        "rc": job["proc"].returncode,
        "job": job["job"],
        "build": job["build"],
        "job_wall_s": round(job["end"] - job["start"], 1),
        "output": job["log"].name,
    }


def shard_run_result(finished: dict, runs_dir: Path | None = None, index=None) -> dict:
    """A finished ./shard run's figures, from the files it left (read_run);
    read after the measured window, as reading them is the bench's work."""
    run = read_run(finished["build"], runs_dir, index)
    result = run.pop("result") or f"exit {finished['rc']}"
    out = {k: v for k, v in finished.items() if k != "rc"}
    out.update(ok=finished["rc"] == 0 and result == "SUCCESS", result=result, **run)
    return out


def run_floor(secret_file: str, workdir: Path, venv: str | None = None, build=None) -> dict:
    """bench_floor.py as a process: with build (floor_build()'s), the change is
    built first; with venv, nova-compute runs from that virtualenv."""
    cmd = [
        paths.bin_path("python"),
        "-m",
        "shard_jobs.bench_floor",
        "--secret-file",
        secret_file,
        "--workdir",
        str(workdir),
    ]
    if build:
        cmd += ["--src", build["src"], "--constraints", build["constraints"]]
        cmd += ["--cache", build["cache"], "--python", build["python"]]
    else:
        cmd += ["--venv", venv]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    try:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {"ok": False, "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    return {
        "ok": proc.returncode == 0 and out.get("ok", False),
        "label": out.get("label"),
        "error": out.get("error"),
        "code_cpu_s": out.get("code_cpu"),
        "steps": out.get("steps", {}),
        "floor_s": out.get("seconds"),
        "boot_retries": out.get("boot_retries"),
        "built": out.get("built", False),
        "deps": out.get("deps"),
        # No Ansible: plain openstacksdk in one process.
        "tasks": 0,
        "module_processes": 0,
    }


def service_pids(manifest: dict) -> list[int]:
    """The pids of a cloud's services, from their pid records (run/<name>.pid.json)."""
    records = (processes.raw_record(svc["pidfile"]) for svc in manifest.get("services", []))
    return [record["pid"] for record in records if record is not None]


def cloud_manifest(cloud_dir: str) -> dict:
    return json.loads((Path(cloud_dir) / "cloud.json").read_text())


def run_cloud(action: str, env: dict) -> float:
    start = time.monotonic()
    proc = subprocess.run(
        [SHARD, "cloud", action], env=_env(env), capture_output=True, text=True, timeout=1800
    )
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise BenchError(f"cloud {action} of the bench cloud failed: {' / '.join(tail)}")
    return round(time.monotonic() - start, 1)


# ---------------------------------------------------------------- statistics and tables


def median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 4) if values else None


COLUMNS = (
    "wall_s",
    "cpu_s",
    "peak_mem_mib",
    "openstack_processes",
    "code_cpu_s",
    "tasks",
    "module_processes",
)


def summarize(runs: list[dict]) -> dict:
    """Medians (and min, max) of the numeric columns of a variant's runs that
    passed (a failed run stops early: its numbers are not the variant's); of
    all of them when none passed."""
    passed = [r for r in runs if r.get("ok")]
    out = {"runs": len(runs), "ok": len(passed)}
    counted = passed or runs
    for key in COLUMNS:
        values = [r.get(key) for r in counted if r.get(key) is not None]
        out[key] = median(values)
        out[key + "_range"] = [min(values), max(values)] if values else None
    out["code_share"] = median([r.get("code_share") for r in counted])
    return out


def ratios(summary: dict) -> dict:
    """The shard run's wall and CPU over each other variant's (RATIOS)."""

    def ratio(a, b, key):
        x, y = summary.get(a, {}).get(key), summary.get(b, {}).get(key)
        return round(x / y, 2) if x and y else None

    return {f"{a}/{b}": {key: ratio(a, b, key) for key in ("wall_s", "cpu_s")} for a, b in RATIOS}


# A shard run's phases (report.json) that the floor does too, and its step.
FLOOR_STEPS = {
    "build": "build",
    "deploy": "deploy",
    "label": "label",
    "exercise": "exercise",
    "teardown": "teardown",
}


def overhead(shard_runs: list[dict], floor_runs: list[dict]) -> list[dict]:
    """Per phase of the shard run (its report.json), its median seconds next
    to the floor's for the same work (build, deploy, label, exercise,
    teardown); the other phases (pre-flight, guard, collecting logs) have no
    counterpart in the floor. Outside the phases: the shard run's starting of
    playbooks, fact gathering and ./shard run's preparation (the source tree
    as the merger makes it), against the floor's time outside the steps above
    (its clone of the source, its start)."""
    ok = [r for r in shard_runs if r.get("ok")] or shard_runs
    floor_runs = [r for r in floor_runs if r.get("ok")] or floor_runs
    names = []
    for run in ok:
        for name in run.get("phases") or {}:
            if name not in names:
                names.append(name)
    rows = []
    for name in names:
        shard_s = median([r["phases"].get(name) for r in ok if r.get("phases")])
        step = FLOOR_STEPS.get(name)
        floor_s = median([r["steps"].get(step) for r in floor_runs]) if step else 0.0
        rows.append({"step": name, "shard_s": shard_s, "floor_s": floor_s or 0.0})
    phases_total = sum(r["shard_s"] or 0 for r in rows)
    wall = median([r.get("job_wall_s") for r in ok])
    if wall is not None:
        rows.append(
            {
                "step": "outside the phases",
                "shard_s": round(wall - phases_total, 2),
                "floor_s": median(
                    [
                        r["floor_s"]
                        - sum(v for k, v in r["steps"].items() if k in FLOOR_STEPS.values())
                        for r in floor_runs
                        if r.get("floor_s")
                    ]
                )
                or 0.0,
            }
        )
    for row in rows:
        row["beyond_floor_s"] = (
            round(row["shard_s"] - row["floor_s"], 2) if row["shard_s"] is not None else None
        )
    return rows


def _fmt(value, spec=".1f", none="-"):
    return none if value is None else format(value, spec)


def format_table(headers: list[str], rows: list[list]) -> str:
    """A plain text table: the first column left-aligned, the others right-aligned."""
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        parts = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render(result: dict) -> str:
    out = []
    machine = result["machine"]
    out.append(
        f"shard bench {result['started']}: {machine['cpus']} CPUs ({machine['cpu_model']}), "
        f"{machine['mem_gib']} GiB, {machine['os']}; repeat {result['repeat']}, medians"
    )
    summary = result["summary"]
    rows = []
    for variant in result["variants"]:
        s = summary.get(variant)
        if not s:
            continue
        rows.append(
            [
                variant,
                _fmt(s["wall_s"]),
                _fmt(s["cpu_s"]),
                _fmt(s["peak_mem_mib"], ".0f"),
                _fmt(s["openstack_processes"], ".0f"),
                _fmt(s["code_cpu_s"]),
                _fmt(s["code_share"] * 100, ".1f") + "%" if s["code_share"] is not None else "-",
                _fmt(s.get("tasks"), ".0f"),
                _fmt(s.get("module_processes"), ".0f"),
                f"{s['ok']}/{s['runs']}",
            ]
        )
    out.append(
        format_table(
            [
                "variant",
                "wall s",
                "CPU s",
                "peak mem MiB",
                "OpenStack procs",
                "code CPU s",
                "code share",
                "tasks",
                "module procs",
                "ok",
            ],
            rows,
        )
    )
    ratio_rows = [
        [name, _fmt(r["wall_s"], ".2f"), _fmt(r["cpu_s"], ".2f")]
        for name, r in result["ratios"].items()
        if r["wall_s"] is not None or r["cpu_s"] is not None
    ]
    if ratio_rows:
        out += ["", format_table(["ratio", "wall", "CPU"], ratio_rows)]
    if result.get("scaling"):
        rows = [
            [
                str(s["jobs"]),
                _fmt(s["wall_s"]),
                _fmt(s["job_wall_s"]),
                _fmt(s["cpu_s"]),
                _fmt(s["cpu_s"] / s["jobs"] if s["cpu_s"] is not None else None),
                str(s["failures"]),
            ]
            for s in result["scaling"]
        ]
        out += [
            "",
            "scaling: shard jobs started at once",
            format_table(
                ["jobs", "wall s", "wall s per job", "CPU s", "CPU s per job", "failures"], rows
            ),
        ]
    if result.get("overhead"):
        rows = [
            [r["step"], _fmt(r["shard_s"]), _fmt(r["floor_s"]), _fmt(r["beyond_floor_s"])]
            for r in result["overhead"]
        ]
        total = [r["beyond_floor_s"] for r in result["overhead"] if r["beyond_floor_s"]]
        rows.append(["total", "", "", _fmt(sum(total))])
        out += [
            "",
            "harness overhead: a shard run's phases against the floor (medians)",
            format_table(["phase", "shard s", "floor s", "beyond floor s"], rows),
        ]
    if result.get("slowest_tasks"):
        out += ["", "slowest tasks of the last shard run:"]
        out += [f"  {t['seconds']:6.1f}s  {t['task']}" for t in result["slowest_tasks"]]
    if result.get("notes"):
        out += [""] + [f"note: {n}" for n in result["notes"]]
    return "\n".join(out)


def slowest_tasks(job_output: Path, count=8) -> list[dict]:
    """The slowest tasks of a run's job-output.txt."""
    tasks = [{"task": r["task"], "seconds": r["seconds"]} for r in task_results(job_output)]
    return sorted(tasks, key=lambda t: -t["seconds"])[:count]


def machine_info() -> dict:
    model = "unknown CPU"
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    os_name = "Linux"
    for line in (_read("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            os_name = line.split("=", 1)[1].strip('"')
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "mem_gib": round(memory_total() / 2**30),
        "os": os_name,
    }


def memory_total() -> int:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


# ---------------------------------------------------------------- the bench


class Bench:
    def __init__(self, args):
        self.repeat = args.repeat
        self.variants = [v for v in VARIANTS if v in args.only]
        self.scaling = args.scaling
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.dir = paths.HOME / "bench" / stamp
        self.dir.mkdir(parents=True, exist_ok=True)
        self.json_path = Path(args.out) if args.out else self.dir / "bench.json"
        # With --json, stdout is the result alone: progress goes to stderr.
        self.progress = sys.stderr if args.json else sys.stdout
        self.runs = {v: [] for v in self.variants}
        self.result = {
            "started": stamp,
            "machine": machine_info(),
            "repeat": self.repeat,
            "variants": self.variants,
            "dir": str(self.dir),
        }
        self.default_manifest = None
        self.bench_cloud_up = False
        self._floor_build = None

    def log(self, msg):
        print(f"bench: {msg}", file=self.progress, flush=True)

    # -- variants
    def variant(self, name: str, n: int) -> dict:
        if name in SHARD_JOBS:
            return self.shard(n, SHARD_JOBS[name])
        if name == "floor":
            return self.floor(n)
        return self.from_scratch(n, fresh=name == "from-scratch-fresh")

    def shard(self, n, job=JOB) -> dict:
        build = new_build()
        out = measure(
            [label_of(build)],
            lambda _sampler: finish_shard_job(start_shard_job(self.dir, build, job)),
        )
        finished = {k: out.pop(k) for k in ("rc", "job", "build", "job_wall_s", "output")}
        out.update(shard_run_result(finished))
        return with_share(out)

    def floor_build(self) -> dict:
        """Untimed, once: what the floor builds (the source release the shard
        job builds by default, fetched as ./shard run fetches it) and its
        dependency virtualenv (made once, as the job's build cache is)."""
        if self._floor_build is None:
            from shard_jobs import bench_floor, settings, sources

            package = yaml.safe_load(FLOOR_PROFILE.read_text())["package"]
            # The interpreter the job's build uses: python3 on ./shard run's PATH.
            python = paths.bin_path("python3")
            try:
                version = sources.pinned_version(package)
                src = sources.release_source(package, version)
                deps = bench_floor.prepare_deps(
                    src, paths.CONSTRAINTS, FLOOR_CACHE, python, self.log
                )
            except (settings.RunError, bench_floor.FloorError) as exc:
                raise BenchError(f"the floor's build: {exc}") from None
            self._floor_build = {
                "package": package,
                "version": version,
                "src": str(src),
                "constraints": str(paths.CONSTRAINTS),
                "cache": str(FLOOR_CACHE),
                "python": python,
                "deps": str(deps),
            }
            self.result["floor_build"] = self._floor_build
        return self._floor_build

    def floor(self, n) -> dict:
        manifest = self.default_manifest
        build = self.floor_build()
        workdir = self.dir / f"floor-{n}"
        out = measure(
            [str(workdir)],
            lambda _sampler: run_floor(manifest["secret_file"], workdir, build=build),
        )
        # Untimed: the build's source tree and virtualenv (its log stays).
        for name in ("src", "venv"):
            for path in workdir.glob(f"*/{name}"):
                shutil.rmtree(path, ignore_errors=True)
        return out

    def from_scratch(self, n, fresh: bool) -> dict:
        variant = "from-scratch-fresh" if fresh else "from-scratch-preinstalled"
        workdir = self.dir / f"{variant}-{n}"
        # The cloud's logs of this run (cloud-up.log: its Ansible tasks).
        env = dict(BENCH_CLOUD, SHARD_CLOUD_LOG_DIR=str(workdir / "cloud-logs"))
        scopes = [BENCH_CLOUD["SHARD_CLOUD_DIR"], str(workdir)]
        if fresh:
            # A services' virtualenv that was never there, as on a fresh node:
            # cloud up installs every service into it from the package cache.
            venv = workdir / "services-venv"
            env["SHARD_CLOUD_VENV"] = str(venv)
            scopes.append(str(venv))
        # Untimed: a cloud that was never there (its own, never the default one).
        self.bench_cloud_up = True
        try:
            destroy_s = run_cloud("destroy", env)
        except BenchError as exc:
            return {"ok": False, "error": str(exc), "wall_s": 0.0, "cpu_s": 0.0}

        def work(sampler):
            try:
                up_s = run_cloud("up", env)
            except BenchError as exc:
                return {"ok": False, "error": str(exc)}
            manifest = cloud_manifest(BENCH_CLOUD["SHARD_CLOUD_DIR"])
            sampler.adopt(service_pids(manifest))
            floor = run_floor(manifest["secret_file"], workdir, venv=manifest["venv"])
            floor["steps"] = dict(floor["steps"], cloud_up=up_s)
            return floor

        out = measure(scopes, work)
        out["destroy_before_s"] = destroy_s
        # The Ansible of the run is that of cloud up (the floor's cycle has none).
        out.update(ansible_counts(workdir / "cloud-logs" / "cloud-up.log"))
        if fresh:
            # Untimed: the cloud that runs from that virtualenv goes, then the virtualenv.
            try:
                out["destroy_after_s"] = run_cloud("destroy", env)
            except BenchError as exc:
                self.log(str(exc))
            shutil.rmtree(venv, ignore_errors=True)
            Path(f"{venv}.lock").unlink(missing_ok=True)
        return out

    def scale(self, jobs: int) -> dict:
        builds = [new_build() for _ in range(jobs)]

        def work(_sampler):
            started = [start_shard_job(self.dir, build) for build in builds]
            wait_jobs(started)
            return {"jobs_runs": [finish_shard_job(job) for job in started]}

        out = measure([label_of(build) for build in builds], work)
        index = TaskIndex()
        runs = [shard_run_result(job, index=index) for job in out.pop("jobs_runs")]
        return {
            "jobs": jobs,
            "wall_s": out["wall_s"],
            "job_wall_s": median([r["job_wall_s"] for r in runs]),
            "cpu_s": out["cpu_s"],
            "failures": sum(1 for r in runs if not r["ok"]),
            "peak_mem_mib": out["peak_mem_mib"],
            "openstack_processes": out["openstack_processes"],
            "runs": runs,
        }

    # -- the whole
    def run(self) -> dict:
        if any(v in self.variants for v in ("floor", *SHARD_JOBS)) or self.scaling:
            self.log("the default cloud: ./shard cloud up")
            # Its lines are progress too: on stderr with --json.
            self.progress.flush()
            up = subprocess.run([SHARD, "cloud", "up"], env=_env(), stdout=self.progress)
            if up.returncode != 0:
                raise BenchError("the default cloud did not come up")
            from shard_jobs import cloud

            self.default_manifest = cloud.load_manifest(DEFAULT_CLOUD_DIR)
        try:
            for n in range(1, self.repeat + 1):
                for variant in self.variants:
                    self.log(f"{variant} {n}/{self.repeat} ...")
                    run = self.variant(variant, n)
                    self.runs[variant].append(run)
                    why = run.get("error") or run.get("result")
                    state = "ok" if run.get("ok") else f"FAILED ({why})"
                    self.log(
                        f"{variant} {n}/{self.repeat}: {state}, wall {run['wall_s']}s,"
                        f" CPU {run['cpu_s']}s"
                    )
                    self.save()
            scaling = []
            for jobs in self.scaling:
                if jobs == 1 and self.runs.get("shard"):
                    summary = summarize(self.runs["shard"])
                    scaling.append(
                        {
                            "jobs": 1,
                            "wall_s": summary["wall_s"],
                            "job_wall_s": summary["wall_s"],
                            "cpu_s": summary["cpu_s"],
                            "failures": summary["runs"] - summary["ok"],
                            "from": "the shard variant's runs (medians)",
                        }
                    )
                    continue
                self.log(f"scaling: {jobs} shard jobs at once ...")
                scaling.append(self.scale(jobs))
                s = scaling[-1]
                self.log(
                    f"scaling {jobs}: wall {s['wall_s']}s, {s['job_wall_s']}s per job,"
                    f" CPU {s['cpu_s']}s, {s['failures']} failed"
                )
                self.result["scaling"] = scaling
                self.save()
            self.result["scaling"] = scaling
        finally:
            if self.bench_cloud_up:
                self.log("destroying the bench cloud")
                try:
                    run_cloud("destroy", BENCH_CLOUD)
                except BenchError as exc:
                    self.log(str(exc))
        self.finish()
        return self.result

    def finish(self):
        self.result["summary"] = {v: summarize(r) for v, r in self.runs.items() if r}
        self.result["ratios"] = ratios(self.result["summary"])
        if self.runs.get("shard") and self.runs.get("floor"):
            self.result["overhead"] = overhead(self.runs["shard"], self.runs["floor"])
        shard_ok = [r for r in self.runs.get("shard", []) if r.get("ok")]
        if shard_ok:
            logs = paths.RUNS_DIR / shard_ok[-1]["build"] / "logs" / "job-output.txt"
            self.result["slowest_tasks"] = slowest_tasks(logs)
        self.result["notes"] = notes(self.result)
        self.save()

    def save(self):
        self.result["runs"] = self.runs
        self.json_path.parent.mkdir(parents=True, exist_ok=True)
        self.json_path.write_text(json.dumps(self.result, indent=2) + "\n")


def notes(result: dict) -> list[str]:
    ran = set(result.get("variants", []))
    out = [
        "CPU s and peak mem are machine-wide (/proc/stat, /proc/meminfo): whatever else runs "
        "on the machine at the same time is in them",
        "code CPU s is the service running the code under test (nova-compute; glance-api for "
        "shard-glance-api) from its start until it is stopped, from the run's report.json for "
        "the shard variants; code share is that over CPU s",
        "tasks and module procs: the Ansible task results in the run's job-output.txt (for "
        "from-scratch: cloud up's cloud-up.log), and the module processes they started on the "
        "node (one per module run, per loop item and retry; copy and template two; none for "
        "what runs in ansible-playbook itself: set_fact, include_*, assert ...; checked "
        "against strace on ansible-core 2.19)",
    ]
    if "from-scratch-fresh" in ran:
        out.append(
            "from-scratch-fresh: as devstack on a fresh CI node, a cloud of its own from "
            "nothing with a new services' virtualenv installed from the package cache, then "
            "the floor's cycle on it (nova-compute from that virtualenv); the destroy before "
            "it, and the removal of that virtualenv after it, are not timed"
        )
    if "from-scratch-preinstalled" in ran:
        out.append(
            "from-scratch-preinstalled: the same, the services' virtualenv kept (its packages "
            "pre-installed)"
        )
    if "floor" in ran:
        build = result.get("floor_build") or {}
        what = f"{build['package']} {build['version']}" if build else "the source release"
        out.append(
            f"floor: bench_floor.py, the shard job's work without Ansible: the build of "
            f"{what} (a clone of the source, then, timed as the step build, pip install "
            "--no-deps -e into a virtualenv layered on a cached dependency virtualenv, as "
            "roles/shard_build does), nova-compute from that build, the exercise (boot on "
            "the shard's trait, stop, start, reboot, delete) and teardown"
        )
    unknown = sorted(
        {
            t
            for runs in result.get("runs", {}).values()
            for r in runs
            for t in r.get("unknown_tasks") or []
        }
    )
    if unknown:
        out.append(
            f"module procs is a lower bound: {len(unknown)} task(s) of the runs are not in "
            "the repository's roles and playbooks as they are now (renamed since?), "
            f"e.g. {unknown[0]!r}"
        )
    loads = [r.get("load1_before") for runs in result.get("runs", {}).values() for r in runs]
    loads = [v for v in loads if v is not None]
    if loads:
        out.append(
            f"1-minute load before each run: {min(loads):.1f} to {max(loads):.1f} "
            f"on {result['machine']['cpus']} CPUs"
        )
    return out


def parse_scaling(text: str) -> list[int]:
    if text.strip().lower() in ("", "none", "0"):
        return []
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BenchError(f"bad --scaling {text!r}: a list of job counts, e.g. 1,2,4,8") from None
    if any(v < 1 or v > 16 for v in values):
        raise BenchError(f"bad --scaling {text!r}: job counts from 1 to 16")
    return values


def parse_only(text: str | None) -> list[str]:
    """--only: variant names, comma-separated (default DEFAULT_VARIANTS)."""
    if text is None:
        return list(DEFAULT_VARIANTS)
    only = [v.strip() for v in text.split(",") if v.strip()]
    for name in only:
        if name in RENAMED:
            raise BenchError(f"bad --only {name}: now {RENAMED[name]}")
    unknown = [v for v in only if v not in VARIANTS]
    if unknown or not only:
        raise BenchError(f"bad --only {','.join(unknown)}: choose among {', '.join(VARIANTS)}")
    return only


def main(args) -> int:
    try:
        args.scaling = parse_scaling(args.scaling)
        args.only = parse_only(args.only)
        if args.repeat < 1:
            raise BenchError("--repeat must be at least 1")
        bench = Bench(args)
        # --json: whatever prints progress in this process (the source release's
        # fetch, for one) goes to standard error with the bench's own lines.
        progress = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
        with progress:
            result = bench.run()
    except BenchError as exc:
        sys.stderr.write(f"bench: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("bench: interrupted\n")
        return 130
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print()
        print(render(result))
        print(f"\nbench: JSON in {bench.json_path}")
    failed = [r for runs in bench.runs.values() for r in runs if not r.get("ok")]
    failed += [s for s in result.get("scaling", []) if s.get("failures")]
    return 1 if failed else 0
