"""./shard test [TIER ...]: the test suite, tier by tier.

A tier is one pytest run over tests/<tier>/, with the tool virtualenv's python.
Tiers run in a fixed order, cheapest first; the tiers that need the embedded
cloud bring it up first (`cloud.up()` is idempotent and fast when it is healthy).
A tier whose directory holds no test file yet is reported as such, never
silently skipped.
"""

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from shard_jobs import paths

TIERS = ("lint", "unit", "layout", "cloud", "e2e", "molecule", "faults", "zuul", "docs")
CLOUD_TIERS = frozenset({"cloud", "e2e", "molecule", "faults", "zuul"})

PASSED = "passed"
FAILED = "FAILED"
NO_TESTS = "no tests yet"
NONE_SELECTED = "no tests selected"
NO_CLOUD = "FAILED (cloud up)"

# pytest exit codes (pytest.ExitCode), without importing pytest here.
PYTEST_OK = 0
PYTEST_NO_TESTS_COLLECTED = 5


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
        sys.stderr.write(f"shard test: unknown tier {names}; the tiers are: {' '.join(TIERS)}\n")
        return None
    wanted = set(tiers) or set(TIERS)
    return [t for t in TIERS if t in wanted]


def _pytest(tier: str, pytest_args: list[str]) -> int:
    python = paths.bin_path("python")
    cmd = [python, "-m", "pytest", str(tier_dir(tier).relative_to(paths.REPO)), *pytest_args]
    env = dict(os.environ, SHARD_REPO=str(paths.REPO), SHARD_VENV=str(paths.VENV))
    env["PATH"] = f"{paths.VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    _say(f"{tier}: {shlex.join(cmd)}")
    return subprocess.run(cmd, cwd=paths.REPO, env=env).returncode


def _table(rows: list[tuple[str, str, float]]) -> str:
    width = max(len(r[1]) for r in rows)
    lines = [f"{'tier':<10} {'result':<{width}} {'seconds':>8}"]
    lines.append(f"{'-' * 10} {'-' * width} {'-' * 8}")
    for tier, result, seconds in rows:
        lines.append(f"{tier:<10} {result:<{width}} {seconds:>8.1f}")
    return "\n".join(lines)


def main(tiers: list[str] | None = None, pytest_args: str | list[str] = "") -> int:
    selected = _select(list(tiers or []))
    if selected is None:
        return 2
    if isinstance(pytest_args, str):
        pytest_args = shlex.split(pytest_args)
    rows: list[tuple[str, str, float]] = []
    cloud_state: int | None = None  # rc of cloud.up(), once per run
    for tier in selected:
        start = time.monotonic()
        directory = tier_dir(tier)
        note = ""
        if not has_tests(directory):
            result = NO_TESTS
            note = f": tests/{tier}/ has no test_*.py, tier skipped"
        else:
            rc = None
            if tier in CLOUD_TIERS:
                if cloud_state is None:
                    from shard_jobs import cloud

                    _say(f"{tier}: needs the embedded cloud: ./shard cloud up")
                    cloud_state = cloud.up()
                if cloud_state != 0:
                    _say(f"{tier}: the embedded cloud did not come up (rc {cloud_state})")
                    result = NO_CLOUD
                    rc = cloud_state
            if rc is None:
                rc = _pytest(tier, pytest_args)
                if rc == PYTEST_OK:
                    result = PASSED
                elif rc == PYTEST_NO_TESTS_COLLECTED:
                    result = NONE_SELECTED
                else:
                    result = FAILED
        seconds = time.monotonic() - start
        rows.append((tier, result, seconds))
        _say(f"{tier}: {result} ({seconds:.1f}s){note}")

    print(flush=True)
    print(_table(rows), flush=True)
    failed = [tier for tier, result, _ in rows if result.startswith(FAILED)]
    if failed:
        _say(f"failed: {' '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
