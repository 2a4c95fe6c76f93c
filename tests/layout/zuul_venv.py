"""The layout and zuul tiers' Zuul: a virtualenv with requirements/zuul.txt, created on demand.

Built under requirements/zuul-constraints.txt (shard_jobs/tool_venv.py: in
~/.shard-jobs/venvs/zuul, SHARD_ZUUL_VENV and SHARD_ZUUL_PYTHON move it). About a minute
the first time, nothing afterwards.
"""

import sys

from shard_jobs import paths
from shard_jobs.tool_venv import ToolVenv, VenvError

ZUUL = ToolVenv(
    "zuul",
    requirements=paths.REPO / "requirements" / "zuul.txt",
    constraints=paths.REPO / "requirements" / "zuul-constraints.txt",
)
VENV = ZUUL.venv
ensure = ZUUL.ensure
__all__ = ["VENV", "VenvError", "ensure"]


if __name__ == "__main__":
    try:
        print(ensure(log=lambda msg: print(msg, file=sys.stderr)))
    except VenvError as exc:
        sys.exit(str(exc))
