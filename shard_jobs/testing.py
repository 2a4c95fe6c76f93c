"""./shard test [TIER ...]: the test suite, tier by tier.

A tier is one pytest run over tests/<tier>/ with the tool virtualenv's python.
Tiers run in a fixed order, cheapest first, whatever order they are named in.
The tiers that need the embedded cloud bring it up first (`cloud.up()` is
idempotent and fast when the cloud is healthy). A tier whose directory holds no
test module yet is reported as "no tests yet", never silently skipped.
Each tier leaves a JUnit XML report in ~/.shard-jobs/test-reports/<tier>.xml.
Exit status: 0 when no tier failed, 1 when one did, 2 for an unknown tier.
"""

import os
import shlex
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from shard_jobs import paths


@dataclass(frozen=True)
class Tier:
    name: str
    what: str
    needs: str
    # Roughly, on a 2-core machine with its virtualenvs built (CI's last full run).
    minutes: str


TIER_INFO = (
    Tier("lint", "ruff, yamllint, ansible-lint (production), module docs", "tool venv", "0.5"),
    Tier("unit", "modules and the CLI against fakes", "tool venv", "0.5"),
    Tier("layout", "zuul.d/ loaded by Zuul's own config loader", "Zuul's venv (built once)", "0.1"),
    Tier("cloud", "./shard cloud up/status/down/destroy from nothing", "MariaDB, RabbitMQ", "3"),
    Tier("e2e", "every job run locally, failures and the upgrade path", "the cloud", "9"),
    Tier("molecule", "a scenario per role: converge, idempotence, verify", "the cloud", "6"),
    Tier("faults", "kills at every phase, janitor, decoys, 8 jobs at once", "the cloud", "7"),
    Tier("zuul", "a real Zuul runs the jobs on a static node", "the cloud, Zuul, sshd", "3"),
    Tier("docs", "the Sphinx site builds without warnings", "Sphinx's venv (built once)", "0.1"),
)
TIERS = tuple(t.name for t in TIER_INFO)
CLOUD_TIERS = frozenset(t.name for t in TIER_INFO if "the cloud" in t.needs or t.name == "cloud")


def describe_tiers() -> str:
    """The tiers for `./shard test --help`: what each checks, needs and takes."""
    lines = ["tiers (run in this order; minutes on 2 cores, tools already installed):"]
    for t in TIER_INFO:
        lines.append(f"  {t.name:<9} {t.what}; needs {t.needs}; ~{t.minutes} min")
    lines.append("The first run also builds the virtualenvs: a few minutes more.")
    return "\n".join(lines)


REPORTS = paths.HOME / "test-reports"

PASSED = "passed"
FAILED = "FAILED"
NO_TESTS = "no tests yet"
NONE_SELECTED = "no tests selected"

# pytest's exit codes (pytest.ExitCode) without importing pytest here.
PYTEST_OK = 0
PYTEST_NO_TESTS_COLLECTED = 5


@dataclass
class TierResult:
    tier: str
    result: str
    seconds: float
    counts: str = ""
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.result.startswith(FAILED)


def tier_dir(tier: str) -> Path:
    return paths.REPO / "tests" / tier


def has_tests(directory: Path) -> bool:
    """Whether pytest would find a test module there (its default file patterns)."""
    if not directory.is_dir():
        return False
    return any(
        p.is_file() for pattern in ("test_*.py", "*_test.py") for p in directory.rglob(pattern)
    )


def _say(msg: str) -> None:
    print(f"shard test: {msg}", flush=True)


def _select(tiers: list[str]) -> list[str] | None:
    unknown = [t for t in tiers if t not in TIERS]
    if unknown:
        names = ", ".join(repr(t) for t in unknown)
        sys.stdout.flush()
        sys.stderr.write(f"shard test: unknown tier {names}; the tiers are: {' '.join(TIERS)}\n")
        return None
    wanted = set(tiers) or set(TIERS)
    return [t for t in TIERS if t in wanted]


def _counts(junit: Path) -> str:
    """'12 passed, 1 failed, 2 skipped' from pytest's JUnit XML report."""
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return ""
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        for key in total:
            total[key] += int(suite.get(key, 0))
    if not total["tests"]:
        return ""
    passed = total["tests"] - total["failures"] - total["errors"] - total["skipped"]
    parts = [f"{passed} passed"]
    parts += [
        f"{total[key]} {label}"
        for key, label in (("failures", "failed"), ("errors", "errors"), ("skipped", "skipped"))
        if total[key]
    ]
    return ", ".join(parts)


def _pytest(tier: str, pytest_args: list[str]) -> tuple[int, str]:
    """Run the tier's pytest; its exit code and its test counts."""
    python = paths.bin_path("python")
    target = str(tier_dir(tier).relative_to(paths.REPO))
    env = dict(os.environ, SHARD_REPO=str(paths.REPO), SHARD_VENV=str(paths.VENV))
    env["PATH"] = f"{paths.VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    # A JUnit report per tier, kept for CI to collect; the summary counts come from it.
    junit = REPORTS / f"{tier}.xml"
    junit.parent.mkdir(parents=True, exist_ok=True)
    junit.unlink(missing_ok=True)
    # -rfEs: list failures, errors and skip reasons (e.g. "zuul.d/ not written yet").
    cmd = [python, "-m", "pytest", target, "-rfEs", *pytest_args]
    _say(f"{tier}: {shlex.join(cmd)}")
    rc = subprocess.run([*cmd, f"--junitxml={junit}"], cwd=paths.REPO, env=env).returncode
    return rc, _counts(junit)


def _run_tier(tier: str, pytest_args: list[str], cloud_up) -> TierResult:
    start = time.monotonic()
    if not has_tests(tier_dir(tier)):
        return TierResult(tier, NO_TESTS, 0.0, note=f"tests/{tier}/ has no test_*.py; skipped")
    if tier in CLOUD_TIERS:
        rc = cloud_up()
        if rc != 0:
            return TierResult(
                tier,
                FAILED,
                time.monotonic() - start,
                note=f"the embedded cloud did not come up (rc {rc}); see ./shard cloud status",
            )
    rc, counts = _pytest(tier, pytest_args)
    if rc == PYTEST_OK:
        result = PASSED
    elif rc == PYTEST_NO_TESTS_COLLECTED:
        result = NONE_SELECTED
    else:
        result = FAILED
    return TierResult(tier, result, time.monotonic() - start, counts=counts)


def _table(rows: list[TierResult]) -> str:
    width = max(len("result"), *(len(r.result) for r in rows))
    lines = [f"{'tier':<9} {'result':<{width}} {'seconds':>8}  tests"]
    lines.append(f"{'-' * 9} {'-' * width} {'-' * 8}  {'-' * 5}")
    for r in rows:
        lines.append(f"{r.tier:<9} {r.result:<{width}} {r.seconds:>8.1f}  {r.counts or r.note}")
    return "\n".join(lines)


def main(tiers: list[str] | None = None, pytest_args: str | list[str] = "") -> int:
    selected = _select(list(tiers or []))
    if selected is None:
        return 2
    if isinstance(pytest_args, str):
        pytest_args = shlex.split(pytest_args)

    cloud_rc: list[int] = []  # cloud.up()'s result, once per run

    def cloud_up() -> int:
        if not cloud_rc:
            from shard_jobs import cloud

            _say("the next tiers need the embedded cloud: cloud up")
            cloud_rc.append(cloud.up())
        return cloud_rc[0]

    rows = []
    for tier in selected:
        row = _run_tier(tier, pytest_args, cloud_up)
        rows.append(row)
        detail = "; ".join(x for x in (row.counts, row.note) if x)
        _say(f"{tier}: {row.result} in {row.seconds:.1f}s" + (f" ({detail})" if detail else ""))

    print(flush=True)
    print(_table(rows), flush=True)
    failed = [r.tier for r in rows if r.failed]
    if failed:
        _say(f"failed tiers: {' '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
