"""yamllint (.yamllint) over every YAML file; .yamllint must suit ansible-lint."""

import pytest
from lint_helpers import REPO, run_tool


def test_yamllint_config_compatible_with_ansible_lint():
    from ansiblelint.yaml_utils import load_yamllint_config

    config = load_yamllint_config(REPO / ".yamllint")
    if config.incompatible:
        pytest.fail(config.incompatible, pytrace=False)


def test_yamllint():
    proc = run_tool("yamllint", "--strict", "-c", ".yamllint", "-f", "parsable", ".")
    problems = [line for line in proc.stdout.splitlines() if line.strip()]
    if problems:
        pytest.fail(
            f"yamllint found {len(problems)} problem(s):\n" + "\n".join(problems), pytrace=False
        )
    if proc.returncode != 0:
        pytest.fail(f"yamllint failed (rc {proc.returncode}):\n{proc.stderr}", pytrace=False)
