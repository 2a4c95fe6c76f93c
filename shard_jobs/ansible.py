"""Running ansible-playbook from the tool virtualenv."""

import json
import os
import subprocess
import tempfile
from pathlib import Path

from shard_jobs import paths

CALLBACKS = Path(__file__).resolve().parent / "ansible_plugins" / "callback"
# Where Ansible's collections are: kept even without inherit_ansible, as ./shard
# checks the collections there and installs missing ones there
# (collection_requirements).
COLLECTIONS_PATH_VARS = ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS")


def base_env(extra: dict | None = None, inherit_ansible: bool = True) -> dict:
    """Environment for ansible-playbook, independent of any ansible.cfg around.

    Like Zuul: the roles of this repository are on the roles path, modules are
    found next to the playbooks (playbooks/library), and no ansible.cfg is read.
    Without inherit_ansible, none of this process's ANSIBLE_* settings either
    (Zuul's executor passes on its service's environment, which normally has
    none, and sets ANSIBLE_CONFIG) but where collections are.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if inherit_ansible or not k.startswith("ANSIBLE_") or k in COLLECTIONS_PATH_VARS
    }
    env.update(
        {
            "ANSIBLE_CONFIG": str(CALLBACKS.parent / "ansible.cfg"),
            "ANSIBLE_ROLES_PATH": str(paths.ROLES),
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_NOCOWS": "1",
            "ANSIBLE_PIPELINING": "true",
            "ANSIBLE_INTERNAL_POLL_INTERVAL": "0.01",
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
            "ANSIBLE_PYTHON_INTERPRETER": str(paths.VENV / "bin" / "python"),
            "PATH": f"{paths.VENV / 'bin'}:{env.get('PATH', '')}",
        }
    )
    env.update(extra or {})
    return env


def playbook(
    playbook_path: Path,
    extra_vars: dict,
    *,
    inventory: str = "localhost,",
    connection: str = "local",
    progress_prefix: str | None = None,
    log_path: Path | None = None,
    env: dict | None = None,
) -> int:
    """Run one playbook; with progress_prefix, print one line per step."""
    run_env = base_env(env)
    if progress_prefix is not None:
        run_env.update(
            {
                "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
                "ANSIBLE_STDOUT_CALLBACK": "shard_progress",
                "SHARD_PROGRESS_PREFIX": progress_prefix,
            }
        )
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("")
        run_env["SHARD_PROGRESS_LOG"] = str(log_path)
    # Extra vars go through a private file: they may hold secrets.
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        os.chmod(f.name, 0o600)
        json.dump(extra_vars, f)
        vars_file = f.name
    try:
        cmd = [
            paths.bin_path("ansible-playbook"),
            "-i",
            inventory,
            "-c",
            connection,
            "-e",
            f"@{vars_file}",
            str(playbook_path),
        ]
        return subprocess.run(cmd, env=run_env).returncode
    finally:
        os.unlink(vars_file)
