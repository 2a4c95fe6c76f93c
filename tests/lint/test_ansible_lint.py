"""ansible-lint, profile production (.ansible-lint), over the whole repository."""

import json

import pytest
import yaml
from lint_helpers import REPO, run_tool


def test_ansible_lint_config():
    config = yaml.safe_load((REPO / ".ansible-lint").read_text())
    problems = []
    if config.get("profile") != "production":
        problems.append("profile must be production")
    excluded = {p.rstrip("/") for p in config.get("exclude_paths", [])}
    problems += [f"exclude_paths lacks {p}" for p in sorted({".venv", "tests"} - excluded)]
    if problems:
        pytest.fail(".ansible-lint: " + "; ".join(problems), pytrace=False)


def _where(violation: dict) -> str:
    loc = violation.get("location", {})
    line = loc.get("lines", {}).get("begin")
    if line is None:
        line = loc.get("positions", {}).get("begin", {}).get("line")
    return f"{loc.get('path')}:{line}"


def test_ansible_lint_production():
    proc = run_tool(
        "ansible-lint", "-c", ".ansible-lint", "--nocolor", "-q", "-f", "codeclimate", timeout=900
    )
    try:
        violations = json.loads(proc.stdout or "[]")
    except ValueError:
        pytest.fail(
            f"ansible-lint (rc {proc.returncode}) printed no report:\n{proc.stdout}{proc.stderr}",
            pytrace=False,
        )
    lines = sorted(
        f"{_where(v)}: [{v.get('check_name')}] {v.get('description')}" for v in violations
    )
    if lines:
        pytest.fail(
            f"ansible-lint (profile production) found {len(lines)} violation(s):\n"
            + "\n".join(lines),
            pytrace=False,
        )
    if proc.returncode != 0:
        pytest.fail(f"ansible-lint failed (rc {proc.returncode}):\n{proc.stderr}", pytrace=False)
