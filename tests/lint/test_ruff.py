"""ruff check and ruff format --check over all Python (settings: pyproject.toml)."""

import pytest
from lint_helpers import python_sources, run_tool


def test_ruff_check():
    proc = run_tool("ruff", "check", "--no-cache", "--output-format", "concise", *python_sources())
    if proc.returncode != 0:
        pytest.fail(f"ruff check found problems:\n{proc.stdout}{proc.stderr}", pytrace=False)


def test_ruff_format():
    proc = run_tool(
        "ruff", "format", "--no-cache", "--check", "--output-format", "concise", *python_sources()
    )
    if proc.returncode != 0:
        pytest.fail(
            "ruff format would reformat (fix with .venv/bin/ruff format FILE; "
            f"see the change with --diff):\n{proc.stdout}{proc.stderr}",
            pytrace=False,
        )
