"""Virtualenvs made once for what they are made of: a hash of their inputs (the
interpreter, requirement and constraint files) is stamped inside, and a
virtualenv is built again when the hash changes. build_once is the one builder
of every virtualenv the controller makes: ./shard's own .venv (its bootstrap
imports this module, so it stays standard library only), the tool virtualenvs
below and the bench floor's dependency virtualenv. (A job's virtualenvs on its
node are the shard_virtualenv module's: see there.)

Tool virtualenvs hold pinned tools (Zuul for the layout and zuul tiers, Sphinx for the
docs). Each lives in ~/.shard-jobs/venvs/<name> (SHARD_HOME moves ~/.shard-jobs; an
environment variable per tool moves the virtualenv itself), is built with Debian's
/usr/bin/python3 (another variable overrides it), and is created on first use.
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from shard_jobs import paths

STAMP = ".shard-stamp"


class VenvError(Exception):
    pass


def fingerprint(files: Iterable[Path], python_version: str, words: Iterable[str] = ()) -> str:
    """The hash of what a virtualenv is made of: the contents of its requirement and
    constraint files, its interpreter's sys.version and words (package names)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    # In this order, so that the tool virtualenvs built before keep their stamps.
    digest.update(python_version.encode())
    for word in words:
        digest.update(word.encode() + b"\0")
    return digest.hexdigest()


def build_once(venv: Path, key: str, make: Callable[[Path], None], in_place: bool = False) -> Path:
    """VENV, made by make(VENV) unless its stamp already holds KEY: from nothing,
    or IN_PLACE over what is there.

    Under a lock beside it: concurrent users wait for one builder. The stamp is
    written last, so a build that failed is started again by the next user."""
    stamp = venv / STAMP
    # Stamped already: no lock, nothing written (a virtualenv may be read-only).
    if _stamped(stamp, key):
        return venv
    # Updated in place (./shard's own .venv), it holds its lock, and nothing is
    # written beside it (its parent may be the user's, or read-only); made
    # from nothing, it is removed first, so the lock is its parent's.
    if in_place:
        venv.mkdir(parents=True, exist_ok=True)
        lock_path = venv / ".shard-build.lock"
    else:
        venv.parent.mkdir(parents=True, exist_ok=True)
        lock_path = venv.parent / f".{venv.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _stamped(stamp, key):
            return venv
        if in_place:
            stamp.unlink(missing_ok=True)
        else:
            shutil.rmtree(venv, ignore_errors=True)
        make(venv)
        stamp.write_text(key + "\n")
    return venv


def _stamped(stamp: Path, key: str) -> bool:
    try:
        return stamp.read_text().strip() == key
    except OSError:
        return False


@dataclass(frozen=True)
class ToolVenv:
    name: str  # "zuul", "docs": the directory and what the log says
    requirements: Path
    constraints: Path | None = None
    # Exactly the pinned packages (--no-deps); `pip check` then proves the list complete.
    no_deps: bool = False
    about: str = "about a minute"

    @property
    def venv(self) -> Path:
        moved = os.environ.get(f"SHARD_{self.name.upper()}_VENV")
        return Path(moved) if moved else paths.HOME / "venvs" / self.name

    @property
    def base_python(self) -> str:
        return os.environ.get(f"SHARD_{self.name.upper()}_PYTHON") or "/usr/bin/python3"

    def wanted_stamp(self) -> str:
        version = subprocess.run(
            [self.base_python, "-c", "import sys; print(sys.version)"],
            capture_output=True,
            text=True,
        )
        return fingerprint(filter(None, (self.requirements, self.constraints)), version.stdout)

    def ensure(self, log=print) -> Path:
        """The python of the virtualenv, created or rebuilt when needed."""
        base = self.base_python
        if not Path(base).exists():
            variable = f"SHARD_{self.name.upper()}_PYTHON"
            raise VenvError(f"{base} not found: set {variable} to a Python 3.11+")
        venv = build_once(self.venv, self.wanted_stamp(), lambda venv: self._make(venv, log))
        return venv / "bin" / "python"

    def _make(self, venv: Path, log) -> None:
        base = self.base_python
        log(f"creating the {self.name} virtualenv {venv} ({self.about})")
        probe = subprocess.run([base, "-c", "import ensurepip, venv"], capture_output=True)
        if probe.returncode != 0:
            raise VenvError(f"{base} cannot create virtualenvs: apt-get install python3-venv")
        _run([base, "-m", "venv", str(venv)], "creating the virtualenv")
        python = venv / "bin" / "python"
        pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
        install = [*pip, "install", "-q"]
        if self.no_deps:
            install.append("--no-deps")
        if self.constraints:
            install += ["-c", str(self.constraints)]
        what = self.requirements.relative_to(paths.REPO)
        _run([*install, "-r", str(self.requirements)], f"installing {what}")
        if self.no_deps:
            _run([*pip, "check"], f"checking {what} is complete")


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise VenvError(f"{what} failed (rc {proc.returncode}): {' '.join(cmd)}\n{tail}")
