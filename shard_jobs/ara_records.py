"""./shard run --ara: record every play with ARA, and a static report next to the logs.

ARA's callback plugin records each playbook of the run through its offline API
client into one sqlite database in the run's log directory (logs/ara/);
ARA's own settings (and the secret key of its Django app) stay in the run's
private directory. After the run, `ara-manage generate` writes a browsable
static report to logs/ara-report/ (index.html). Extra variables, which carry
the job's secrets, are never recorded (ARA_IGNORED_ARGUMENTS).
"""

import os
import subprocess
from pathlib import Path

from shard_jobs import paths

DATABASE = Path("ara") / "ansible.sqlite"
REPORT = "ara-report"


def callback_plugins() -> str:
    """ARA's callback plugin directory (as `python -m ara.setup.callback_plugins` prints it)."""
    from ara.setup import callback_plugins as path

    return path


def env(log_root: Path, private: Path, progress_plugins: Path, labels: list[str]) -> dict:
    """Environment of an ansible-playbook run that ARA records.

    ANSIBLE_CALLBACK_PLUGINS replaces the ansible.cfg callback_plugins setting,
    so it lists the progress callback's directory too.
    """
    (log_root / DATABASE).parent.mkdir(parents=True, exist_ok=True)
    return {
        "ANSIBLE_CALLBACK_PLUGINS": os.pathsep.join([str(progress_plugins), callback_plugins()]),
        "ANSIBLE_CALLBACKS_ENABLED": "ara_default",
        "ARA_API_CLIENT": "offline",
        "ARA_BASE_DIR": str(private / "ara"),
        "ARA_DATABASE_NAME": str(log_root / DATABASE),
        "ARA_DEFAULT_LABELS": ",".join(labels),
        "ARA_IGNORED_ARGUMENTS": "extra_vars,vault_password_files",
        "ARA_LOG_LEVEL": "WARNING",
    }


def generate(log_root: Path, private: Path) -> tuple[Path | None, str]:
    """Write the static report; (its index.html, or None, and what went wrong)."""
    database = log_root / DATABASE
    if not database.exists():
        return None, "ARA recorded nothing"
    out = log_root / REPORT
    run_env = dict(
        os.environ,
        ARA_BASE_DIR=str(private / "ara"),
        ARA_DATABASE_NAME=str(database),
        ARA_LOG_LEVEL="WARNING",
    )
    proc = subprocess.run(
        [paths.bin_path("ara-manage"), "generate", str(out)],
        env=run_env,
        capture_output=True,
        text=True,
    )
    index = out / "index.html"
    if proc.returncode != 0 or not index.exists():
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        why = lines[-1] if lines else "no output"
        return None, f"ara-manage generate failed (rc {proc.returncode}): {why}"
    return index, ""
