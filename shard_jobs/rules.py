"""The repository's shared code, for the CLI, the bench and the tests: one declared path.

module_utils/ is where Ansible finds the shared rules for the modules it ships
to a node; everything outside Ansible imports them from there, through this
module, under the names below. Only modules of module_utils/ that import no
other module_utils file are importable this way (the modules' own
``ansible.module_utils.<name>`` names do not exist outside Ansible).

The embedded cloud's helper (roles/embedded_cloud/files/embedded_cloud.py,
which the role runs on the cloud's host) is imported the same way, for the
repairs ./shard cloud up does without Ansible.
"""

import sys

from shard_jobs import paths

for _directory in (paths.REPO / "module_utils", paths.ROLES / "embedded_cloud" / "files"):
    if str(_directory) not in sys.path:
        sys.path.append(str(_directory))

import embedded_cloud as cloud_helper  # noqa: E402
import shard_janitor_rules as janitor  # noqa: E402
import shard_labels as labels  # noqa: E402
import shard_processes as processes  # noqa: E402
import shard_secrets as secrets  # noqa: E402

__all__ = ["cloud_helper", "janitor", "labels", "processes", "secrets"]
