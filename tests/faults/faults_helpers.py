"""Helpers of the `faults` tier: runs started in the background, killed at a
phase, cleaned up; the processes a run left (job_runs: a run and its leftovers).

Everything here watches a run from the outside, the way an operator would: its
phase events (the build's ``phases.jsonl`` on the node), its process tree, the
cloud seen with the operator's credentials.
"""

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from job_runs import leftovers

from shard_jobs import paths
from shard_jobs.rules import labels, phases, processes, waits

SHARD = str(paths.REPO / "shard")
JOB = "shard-nova-compute"
# Where the shard role puts a build's workspace on the node (this machine):
# shard_workspace_root's default, ansible_user_dir/.shard-jobs/builds.
WORKSPACES = Path.home() / ".shard-jobs" / "builds"


def new_build() -> str:
    return uuid.uuid4().hex


def label_of(build: str) -> str:
    return labels.label_for(build)


def workspace(build: str) -> Path:
    return WORKSPACES / label_of(build)


def run_dir(build: str) -> Path:
    return paths.RUNS_DIR / build


def phase_events(build: str) -> list[tuple[str, str]]:
    """(phase, event) of the build so far, from its phases.jsonl on the node."""
    events = phases.read_events(workspace(build) / phases.PHASES_FILE)
    return [(e["phase"], e.get("event")) for e in events]


# ---------------------------------------------------------------- processes


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, pgid) of a process, or None when it is gone."""
    fields = processes.stat_fields(pid)
    if not fields:
        return None
    return int(fields[processes.PPID]), int(fields[processes.PGID])


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid in _pids():
        st = _stat(pid)
        if st:
            children.setdefault(st[0], []).append(pid)
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def cmdline(pid: int) -> str:
    return _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ").decode(errors="replace").strip()


def processes_of(build: str) -> dict[int, str]:
    """Processes that belong to a run: they name its workspace or run directory
    in their command line, or work in one of them (ansible runs in the run's
    work/, the shard's service from its workspace)."""
    marks = (str(workspace(build)), str(run_dir(build)))
    found = {}
    for pid in _pids():
        if pid == os.getpid():
            continue
        cmd = cmdline(pid)
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            cwd = ""
        if any(m in cmd or cwd.startswith(m) for m in marks):
            found[pid] = cmd
    return found


def kill_processes(pids) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def wait_gone(pids, timeout: float = 10) -> list[int]:
    """The pids still alive (not zombies) after up to timeout seconds."""
    alive = list(pids)

    def gone():
        alive[:] = [p for p in pids if _stat(p) and b"State:\tZ" not in _read(f"/proc/{p}/status")]
        return not alive

    with contextlib.suppress(waits.WaitTimeout):
        waits.wait_until(gone, timeout, interval=0.1)
    return alive


# ---------------------------------------------------------------- runs


@dataclass
class BackgroundRun:
    """`./shard run JOB --build ID --json` started in a session of its own."""

    build: str
    proc: subprocess.Popen
    out: Path
    err: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def label(self) -> str:
        return label_of(self.build)

    def running(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> tuple[str, str]:
        return self.out.read_text(errors="replace"), self.err.read_text(errors="replace")

    def keep_output(self) -> None:
        """Add what the run printed to the secret scan's material."""
        OUTPUTS.append("".join(self.output()))

    def summary(self) -> dict | None:
        stdout = self.out.read_text(errors="replace")
        start = stdout.find("{\n")
        return json.loads(stdout[start:]) if start >= 0 else None

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> list[int]:
        """SIGKILL the run and everything of its process tree that dies with a
        crashed executor: the runner's process group and the session of every
        playbook (the runner starts ansible-playbook in a session of its own).
        Services the run started in their own session (the shard's process)
        survive, as they would on a node whose executor died. Returns the
        pids killed."""
        tree = descendants(self.proc.pid)
        groups = [self.proc.pid]
        groups += [pid for pid in tree if "ansible-playbook" in cmdline(pid)]
        killed = [self.proc.pid] + [pid for pid in tree if (_stat(pid) or (0, -1))[1] in groups]
        # The runner first, so that it cannot start the next playbook.
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        return killed


def start_run(tmp: Path, *args: str, build: str | None = None, job: str = JOB) -> BackgroundRun:
    build = build or new_build()
    tmp.mkdir(parents=True, exist_ok=True)
    out, err = tmp / f"{build}.out", tmp / f"{build}.err"
    with out.open("w") as o, err.open("w") as e:
        proc = subprocess.Popen(
            [SHARD, "run", job, "--json", "--build", build, *args],
            stdout=o,
            stderr=e,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return BackgroundRun(build, proc, out, err)


def wait_for(predicate, timeout: float, what: str, run: BackgroundRun | None = None, poll=0.05):
    """Poll predicate until it returns something truthy; fail when the run ended first."""

    def probe():
        value = predicate()
        if not value and run is not None and not run.running():
            stdout, stderr = run.output()
            raise AssertionError(
                f"the run ended (rc {run.proc.returncode}) before {what}:\n"
                f"{stderr[-2000:]}\n{stdout[-2000:]}"
            )
        return value

    return waits.wait_until(probe, timeout, what=what, interval=poll, error=AssertionError)


def cleanup(build: str, job: str = JOB, timeout: float = 900) -> subprocess.CompletedProcess:
    """`./shard run JOB --cleanup --build ID`: the cleanup playbooks of a killed run."""
    return shard("run", job, "--cleanup", "--build", build, "--json", timeout=timeout)


def janitor(*args: str, timeout: float = 900) -> tuple[int, dict | None, str]:
    """`./shard janitor --json ARGS`: (exit status, report, stderr)."""
    proc = shard("janitor", "--json", *args, timeout=timeout)
    return proc.returncode, summary_of(proc.stdout), proc.stderr


def assert_clean(conn, build: str):
    """Nothing labelled with the build's label in the cloud, no process of the
    run on the node, no workspace."""
    assert leftovers(conn, label_of(build)) == {}
    assert processes_of(build) == {}
    assert not workspace(build).exists()


# Everything the tier's ./shard commands printed, for the secret scan.
OUTPUTS: list[str] = []
# Secrets the tier made up (a wrong password, a throw-away account's), by what
# they are: the scan looks for them too.
SECRETS: dict[str, str] = {}


def shard(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """`./shard ARGS`, its output kept for the secret scan."""
    proc = subprocess.run(
        [SHARD, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    OUTPUTS.append(proc.stdout + proc.stderr)
    return proc


def summary_of(stdout: str) -> dict | None:
    start = stdout.find("{\n")
    return json.loads(stdout[start:]) if start >= 0 else None


def rescue(run: BackgroundRun) -> None:
    """Whatever a failed test left of a run: the run, its processes, its resources."""
    if run.running():
        run.kill()
    if processes_of(run.build) or workspace(run.build).exists():
        cleanup(run.build)
        kill_processes(processes_of(run.build))
    run.keep_output()
