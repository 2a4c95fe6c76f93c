"""Where things live. Every location can be moved with an environment variable."""

import os
from pathlib import Path

REPO = Path(os.environ.get("SHARD_REPO") or Path(__file__).resolve().parent.parent)
VENV = Path(os.environ.get("SHARD_VENV") or REPO / ".venv")
# Everything shard-jobs keeps on this machine: the embedded cloud's state,
# virtualenvs that survive `cloud destroy`, local job runs.
HOME = Path(os.environ.get("SHARD_HOME") or Path.home() / ".shard-jobs")
CLOUD_DIR = Path(os.environ.get("SHARD_CLOUD_DIR") or HOME / "cloud")
# Logs of ./shard cloud up|down|destroy. Outside the state directory (destroy
# removes that); next to it when the state directory was moved, so that a second
# cloud never overwrites the logs of the default one.
CLOUD_LOG_DIR = Path(
    os.environ.get("SHARD_CLOUD_LOG_DIR")
    or (CLOUD_DIR.parent / f"{CLOUD_DIR.name}-logs" if os.environ.get("SHARD_CLOUD_DIR") else None)
    or HOME / "logs"
)
CLOUD_VENV = Path(os.environ.get("SHARD_CLOUD_VENV") or HOME / "venvs" / "cloud")
RUNS_DIR = Path(os.environ.get("SHARD_RUNS_DIR") or HOME / "runs")

PLAYBOOKS = REPO / "playbooks"
ROLES = REPO / "roles"
LIBRARY = REPO / "library"
CONSTRAINTS = REPO / "constraints.txt"


def bin_path(name: str) -> str:
    return str(VENV / "bin" / name)
