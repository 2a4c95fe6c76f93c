"""The molecule tier: one `molecule test -s <scenario>` per scenario of molecule/.

Scenarios run concurrently in a small pool (SHARD_MOLECULE_WORKERS, default 2:
most of a scenario's time is spent waiting on the cloud, not computing),
longest first; each test waits for its own scenario. Every scenario's full
output is kept in ~/.shard-jobs/test-reports/molecule/<scenario>.log and the
tier ends with a table of per-scenario times.
"""

import contextlib
import os
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from shard_jobs import paths, sources

MOLECULE_DIR = paths.REPO / "molecule"
SCENARIOS = sorted(p.parent.name for p in MOLECULE_DIR.glob("*/molecule.yml"))
LOGS = paths.HOME / "test-reports" / "molecule"
WORKERS = int(os.environ.get("SHARD_MOLECULE_WORKERS", "2"))
# Seconds one scenario may take before it is stopped (then torn down).
TIMEOUT = int(os.environ.get("SHARD_MOLECULE_TIMEOUT", "1500"))
# Longest first, so that the pool ends together (measured; others go last).
ORDER = [
    "embedded_cloud",
    "shard_upgrade",
    "shard_exercise",
    "shard_teardown",
    "shard_label",
    "shard_deploy",
    "shard_build",
    "shard_preflight",
    "shard_guard",
    "shard_janitor",
    "shard",
]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The finished runs, for the summary table.
RUNS = pytest.StashKey[list]()


@dataclass
class Run:
    scenario: str
    rc: int
    seconds: float
    log: Path
    note: str = ""

    def tail(self, lines: int = 120) -> str:
        text = ANSI.sub("", self.log.read_text(errors="replace"))
        return "\n".join(text.splitlines()[-lines:])


def molecule_env() -> dict:
    """The tool virtualenv first on PATH; no ANSIBLE_* settings from the caller
    (molecule writes the scenario's ansible.cfg, and its idempotence check reads
    the default output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env["PATH"] = f"{paths.VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.update(SHARD_REPO=str(paths.REPO), SHARD_VENV=str(paths.VENV), NO_COLOR="1")
    env["PY_COLORS"] = "0"
    return env


def _molecule(args: list[str], log, timeout: float | None) -> int:
    proc = subprocess.Popen(
        [str(paths.VENV / "bin" / "molecule"), *args],
        cwd=paths.REPO,
        env=molecule_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        raise


def run_scenario(scenario: str) -> Run:
    LOGS.mkdir(parents=True, exist_ok=True)
    path = LOGS / f"{scenario}.log"
    start = time.monotonic()
    with path.open("w") as log:
        try:
            rc = _molecule(["test", "-s", scenario], log, TIMEOUT)
            note = ""
        except subprocess.TimeoutExpired:
            # Stopped midway: tear down what it created, as `molecule test` would.
            log.write(f"\n*** stopped after {TIMEOUT}s: molecule cleanup, destroy ***\n")
            log.flush()
            for step in ("cleanup", "destroy"):
                _molecule([step, "-s", scenario], log, 900)
            rc, note = 124, f"timed out after {TIMEOUT}s"
    return Run(scenario, rc, time.monotonic() - start, path, note)


def _temp_dirs(scenario: str) -> set[Path]:
    """The scenario's temporary directories (see molecule/shared/create.yml)."""
    return set(Path("/tmp").glob(f"shard-molecule-{scenario}-*"))


@pytest.fixture(scope="session")
def molecule_runs(request):
    """Start every selected scenario in the pool; {scenario: future of its Run}."""
    selected = [
        item.callspec.params["scenario"]
        for item in request.session.items
        if hasattr(item, "callspec") and "scenario" in item.callspec.params
    ]
    rank = {name: i for i, name in enumerate(ORDER)}
    wanted = sorted(set(selected), key=lambda s: (rank.get(s, len(ORDER)), s))
    # The code under test of the shard scenarios: the nova release the embedded
    # cloud runs, as `./shard run` prepares it.
    sources.release_source("nova", sources.pinned_version("nova"))
    before = {s: _temp_dirs(s) for s in wanted}
    pool = ThreadPoolExecutor(max_workers=max(1, WORKERS), thread_name_prefix="molecule")
    futures = {s: pool.submit(run_scenario, s) for s in wanted}
    yield {"futures": futures, "temp_dirs_before": before}
    pool.shutdown(wait=True)


def pytest_terminal_summary(terminalreporter):
    runs = terminalreporter.config.stash.get(RUNS, None)
    if not runs:
        return
    terminalreporter.section("molecule scenarios")
    total = 0.0
    for run in sorted(runs, key=lambda r: -r.seconds):
        total += run.seconds
        state = "ok" if run.rc == 0 else f"FAILED (rc {run.rc}) {run.note}".strip()
        terminalreporter.write_line(f"{run.scenario:<20} {run.seconds:7.1f}s  {state}")
    terminalreporter.write_line(f"{'sum':<20} {total:7.1f}s  ({WORKERS} at a time; logs in {LOGS})")
