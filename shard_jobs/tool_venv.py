"""Virtualenvs of pinned tools (Zuul for the layout and zuul tiers, Sphinx for the docs).

Each lives in ~/.shard-jobs/venvs/<name> (SHARD_HOME moves ~/.shard-jobs; an environment
variable per tool moves the virtualenv itself), is built with Debian's /usr/bin/python3
(another variable overrides it), and is rebuilt from scratch when its requirement files or
the interpreter change (their hash is stamped inside it). Created on first use, under a
lock so that concurrent users wait for one builder.
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shard_jobs import paths


class VenvError(Exception):
    pass


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

    @property
    def stamp_file(self) -> Path:
        return self.venv / ".shard-stamp"

    def wanted_stamp(self) -> str:
        digest = hashlib.sha256()
        for path in filter(None, (self.requirements, self.constraints)):
            digest.update(path.read_bytes())
        version = subprocess.run(
            [self.base_python, "-c", "import sys; print(sys.version)"],
            capture_output=True,
            text=True,
        )
        digest.update(version.stdout.encode())
        return digest.hexdigest()

    def ensure(self, log=print) -> Path:
        """The python of the virtualenv, created or rebuilt when needed."""
        base, venv = self.base_python, self.venv
        if not Path(base).exists():
            variable = f"SHARD_{self.name.upper()}_PYTHON"
            raise VenvError(f"{base} not found: set {variable} to a Python 3.11+")
        venv.parent.mkdir(parents=True, exist_ok=True)
        python = venv / "bin" / "python"
        stamp = self.wanted_stamp()
        with open(venv.parent / f".{venv.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time
            stamped = self.stamp_file.is_file() and self.stamp_file.read_text().strip()
            if stamped == stamp and python.exists():
                return python
            log(f"creating the {self.name} virtualenv {venv} ({self.about})")
            shutil.rmtree(venv, ignore_errors=True)
            probe = subprocess.run([base, "-c", "import ensurepip, venv"], capture_output=True)
            if probe.returncode != 0:
                raise VenvError(f"{base} cannot create virtualenvs: apt-get install python3-venv")
            _run([base, "-m", "venv", str(venv)], "creating the virtualenv")
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
            self.stamp_file.write_text(stamp + "\n")
        return python


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise VenvError(f"{what} failed (rc {proc.returncode}): {' '.join(cmd)}\n{tail}")
