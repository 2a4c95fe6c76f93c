"""The layout tier's Zuul: a virtualenv with requirements/zuul.txt, created on demand.

It lives in ~/.shard-jobs/venvs/zuul (SHARD_HOME moves ~/.shard-jobs; SHARD_ZUUL_VENV
moves the virtualenv itself), is built with Debian's /usr/bin/python3 (SHARD_ZUUL_PYTHON
overrides it) under requirements/zuul-constraints.txt, and is rebuilt from scratch when
either file or the interpreter changes (their hash is stamped inside it). About a minute
the first time, nothing afterwards.
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from shard_jobs import paths

REQUIREMENTS = paths.REPO / "requirements" / "zuul.txt"
CONSTRAINTS = paths.REPO / "requirements" / "zuul-constraints.txt"
VENV = Path(os.environ.get("SHARD_ZUUL_VENV") or paths.HOME / "venvs" / "zuul")
PYTHON = os.environ.get("SHARD_ZUUL_PYTHON") or "/usr/bin/python3"
STAMP = VENV / ".shard-stamp"


class VenvError(Exception):
    pass


def _wanted_stamp() -> str:
    digest = hashlib.sha256()
    for path in (REQUIREMENTS, CONSTRAINTS):
        digest.update(path.read_bytes())
    version = subprocess.run(
        [PYTHON, "-c", "import sys; print(sys.version)"], capture_output=True, text=True
    )
    digest.update(version.stdout.encode())
    return digest.hexdigest()


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise VenvError(f"{what} failed (rc {proc.returncode}): {' '.join(cmd)}\n{tail}")


def ensure(log=print) -> Path:
    """The python of the Zuul virtualenv, created or rebuilt when needed."""
    if not Path(PYTHON).exists():
        raise VenvError(f"{PYTHON} not found: set SHARD_ZUUL_PYTHON to a Python 3.11+")
    VENV.parent.mkdir(parents=True, exist_ok=True)
    python = VENV / "bin" / "python"
    stamp = _wanted_stamp()
    with open(VENV.parent / f".{VENV.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time
        if STAMP.is_file() and STAMP.read_text().strip() == stamp and python.exists():
            return python
        log(f"creating the Zuul virtualenv {VENV} (about a minute)")
        shutil.rmtree(VENV, ignore_errors=True)
        probe = subprocess.run([PYTHON, "-c", "import ensurepip, venv"], capture_output=True)
        if probe.returncode != 0:
            raise VenvError(f"{PYTHON} cannot create virtualenvs: apt-get install python3-venv")
        _run([PYTHON, "-m", "venv", str(VENV)], "creating the virtualenv")
        _run(
            [
                str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                "-c", str(CONSTRAINTS), "-r", str(REQUIREMENTS),
            ],
            f"installing {REQUIREMENTS.relative_to(paths.REPO)}",
        )  # fmt: skip
        STAMP.write_text(stamp + "\n")
    return python


if __name__ == "__main__":
    try:
        print(ensure(log=lambda msg: print(msg, file=sys.stderr)))
    except VenvError as exc:
        sys.exit(str(exc))
