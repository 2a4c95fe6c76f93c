"""./shard docs, and the docs tier's Sphinx: a virtualenv with requirements/docs.txt.

It lives in ~/.shard-jobs/venvs/docs (SHARD_HOME moves ~/.shard-jobs; SHARD_DOCS_VENV
moves the virtualenv itself), is built with Debian's /usr/bin/python3 (SHARD_DOCS_PYTHON
overrides it) from requirements/docs.txt, which pins every package (installed with
--no-deps, then `pip check` proves the list complete), and is rebuilt from scratch when
that file or the interpreter changes (their hash is stamped inside it). About half a
minute the first time, nothing afterwards. The same pattern as the layout tier's
tests/layout/zuul_venv.py.

`./shard docs [--out DIR]` builds the site (docs/source) into docs/_build/html with
warnings as errors, as the docs tier does.
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from shard_jobs import paths

REQUIREMENTS = paths.REPO / "requirements" / "docs.txt"
VENV = Path(os.environ.get("SHARD_DOCS_VENV") or paths.HOME / "venvs" / "docs")
PYTHON = os.environ.get("SHARD_DOCS_PYTHON") or "/usr/bin/python3"
STAMP = VENV / ".shard-stamp"


class VenvError(Exception):
    pass


def _wanted_stamp() -> str:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
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
    """The python of the docs virtualenv, created or rebuilt when needed."""
    if not Path(PYTHON).exists():
        raise VenvError(f"{PYTHON} not found: set SHARD_DOCS_PYTHON to a Python 3.11+")
    VENV.parent.mkdir(parents=True, exist_ok=True)
    python = VENV / "bin" / "python"
    stamp = _wanted_stamp()
    with open(VENV.parent / f".{VENV.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time
        if STAMP.is_file() and STAMP.read_text().strip() == stamp and python.exists():
            return python
        log(f"creating the docs virtualenv {VENV} (about half a minute)")
        shutil.rmtree(VENV, ignore_errors=True)
        probe = subprocess.run([PYTHON, "-c", "import ensurepip, venv"], capture_output=True)
        if probe.returncode != 0:
            raise VenvError(f"{PYTHON} cannot create virtualenvs: apt-get install python3-venv")
        _run([PYTHON, "-m", "venv", str(VENV)], "creating the virtualenv")
        pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
        # Exactly the pinned packages (--no-deps); pip check then proves the list complete.
        _run(
            [*pip, "install", "-q", "--no-deps", "-r", str(REQUIREMENTS)],
            f"installing {REQUIREMENTS.relative_to(paths.REPO)}",
        )
        _run([*pip, "check"], f"checking {REQUIREMENTS.relative_to(paths.REPO)} is complete")
        STAMP.write_text(stamp + "\n")
    return python


SOURCE = paths.REPO / "docs" / "source"
OUT = paths.REPO / "docs" / "_build" / "html"


def sphinx_command(python: Path, out: Path) -> list[str]:
    """sphinx-build with every warning an error (zuul-sphinx reads zuul.d/ and roles/)."""
    return [str(python), "-m", "sphinx", "-W", "--keep-going", "-b", "html", str(SOURCE), str(out)]


def main(args) -> int:
    out = Path(args.out).resolve() if args.out else OUT
    try:
        python = ensure(log=lambda msg: print(f"shard docs: {msg}", file=sys.stderr))
    except VenvError as exc:
        print(f"shard docs: {exc}", file=sys.stderr)
        return 1
    proc = subprocess.run(sphinx_command(python, out), cwd=paths.REPO)
    if proc.returncode == 0:
        print(f"shard docs: {out / 'index.html'}")
    return proc.returncode


if __name__ == "__main__":
    try:
        print(ensure(log=lambda msg: print(msg, file=sys.stderr)))
    except VenvError as exc:
        sys.exit(str(exc))
