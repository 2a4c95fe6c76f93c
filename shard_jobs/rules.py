"""The repository's shared code, for the CLI, the bench and the tests: one declared path.

module_utils/ is where Ansible finds the shared rules for the modules it ships
to a node, as modules of the ``ansible.module_utils`` package. Here module_utils/
joins that package's path the same way, so that every file of it imports under
the one name it has everywhere (and may import another one, as on a node);
everything outside Ansible imports them through this module, under the names below.
"""

import ansible.module_utils

from shard_jobs import paths

_MODULE_UTILS = str(paths.REPO / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)

from ansible.module_utils import shard_auth as auth  # noqa: E402
from ansible.module_utils import shard_bus as bus  # noqa: E402
from ansible.module_utils import shard_cloud_services as cloud_services  # noqa: E402
from ansible.module_utils import shard_janitor_rules as janitor  # noqa: E402
from ansible.module_utils import shard_jsonl as jsonl  # noqa: E402
from ansible.module_utils import shard_labels as labels  # noqa: E402
from ansible.module_utils import shard_migrations as migrations  # noqa: E402
from ansible.module_utils import shard_phases as phases  # noqa: E402
from ansible.module_utils import shard_processes as processes  # noqa: E402
from ansible.module_utils import shard_profiles as profiles  # noqa: E402
from ansible.module_utils import shard_rolling as rolling  # noqa: E402
from ansible.module_utils import shard_secrets as secrets  # noqa: E402
from ansible.module_utils import shard_tempest as tempest  # noqa: E402
from ansible.module_utils import shard_waits as waits  # noqa: E402

__all__ = [
    "auth",
    "bus",
    "cloud_services",
    "janitor",
    "jsonl",
    "labels",
    "migrations",
    "phases",
    "processes",
    "profiles",
    "rolling",
    "secrets",
    "tempest",
    "waits",
]
