"""The repository's shared rules (module_utils/), for the CLI, the bench and the tests.

module_utils/ is where Ansible finds them for the modules it ships to a node;
everything outside Ansible imports them from there, through this one declared
import path, under the names below. Only modules of module_utils/ that import
no other module_utils file are importable this way (the modules' own
``ansible.module_utils.<name>`` names do not exist outside Ansible).
"""

import sys

from shard_jobs import paths

_MODULE_UTILS = str(paths.REPO / "module_utils")
if _MODULE_UTILS not in sys.path:
    sys.path.append(_MODULE_UTILS)

import shard_labels as labels  # noqa: E402

__all__ = ["labels"]
