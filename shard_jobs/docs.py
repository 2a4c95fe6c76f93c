"""./shard docs, and the docs tier's Sphinx: a virtualenv with requirements/docs.txt.

requirements/docs.txt pins every package (installed with --no-deps, then `pip check`
proves the list complete); shard_jobs/tool_venv.py builds it in ~/.shard-jobs/venvs/docs
(SHARD_DOCS_VENV and SHARD_DOCS_PYTHON move it), about half a minute the first time.

`./shard docs [--out DIR]` builds the site (docs/source) into docs/_build/html with
warnings as errors, as the docs tier does.
"""

import subprocess
import sys
from pathlib import Path

from shard_jobs import paths
from shard_jobs.tool_venv import ToolVenv, VenvError

DOCS = ToolVenv(
    "docs",
    requirements=paths.REPO / "requirements" / "docs.txt",
    no_deps=True,
    about="about half a minute",
)
ensure = DOCS.ensure
__all__ = ["VenvError", "ensure", "main", "sphinx_command"]

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
