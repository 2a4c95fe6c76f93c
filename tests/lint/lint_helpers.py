"""Helpers of the lint tier: where the repository and its tools are."""

import os
import subprocess

from shard_jobs import paths

REPO = paths.REPO


def tool_env() -> dict:
    """The environment the tools run in: the tool virtualenv first on PATH, and the
    custom modules of library/ and module_utils/ visible to Ansible everywhere (Zuul
    finds them next to the playbooks through the playbooks/library symlinks)."""
    env = dict(os.environ)
    env["PATH"] = f"{paths.VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_LIBRARY"] = str(REPO / "library")
    env["ANSIBLE_MODULE_UTILS"] = str(REPO / "module_utils")
    # Zuul's zuul_return, as ./shard run provides it (Zuul's executor has its own).
    env["ANSIBLE_ACTION_PLUGINS"] = str(REPO / "shard_jobs" / "ansible_plugins" / "action")
    env["ANSIBLE_ROLES_PATH"] = str(REPO / "roles")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["NO_COLOR"] = "1"
    env.pop("ANSIBLE_CONFIG", None)
    return env


def run_tool(*cmd: str, timeout: int = 600) -> subprocess.CompletedProcess:
    tool = str(paths.VENV / "bin" / cmd[0])
    return subprocess.run(
        [tool, *cmd[1:]],
        cwd=REPO,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def python_sources() -> list[str]:
    """Every Python path ruff checks, relative to the repository (existing ones)."""
    candidates = ["shard", "shard_jobs", "library", "module_utils", "tests"]
    return [c for c in candidates if (REPO / c).exists()]
