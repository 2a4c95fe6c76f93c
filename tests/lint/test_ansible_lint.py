"""ansible-lint, profile production (.ansible-lint), over the whole repository."""

import json
import warnings

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


def _describe(violation: dict) -> str:
    return f"{_where(violation)}: [{violation.get('check_name')}] {violation.get('description')}"


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
    # Warnings (severity minor: experimental rules, warn_list) are shown, not fatal.
    for v in violations:
        if v.get("severity") == "minor":
            warnings.warn(f"ansible-lint: {_describe(v)}", stacklevel=1)
    lines = sorted(_describe(v) for v in violations if v.get("severity") != "minor")
    if lines:
        pytest.fail(
            f"ansible-lint (profile production) found {len(lines)} violation(s):\n"
            + "\n".join(lines),
            pytrace=False,
        )
    if proc.returncode != 0:
        pytest.fail(f"ansible-lint failed (rc {proc.returncode}):\n{proc.stderr}", pytrace=False)
