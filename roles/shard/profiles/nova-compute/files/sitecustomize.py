# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Lets nova load this directory's shard_* modules as nova.virt.shard_*.

nova imports compute drivers only from the nova.virt package; the shard's
service process has this directory on its PYTHONPATH, and Python imports
sitecustomize at start-up, so this finder makes compute_driver =
shard_fake_driver.PersistentFakeDriver work without touching the code under
test or its virtualenv.
"""

import importlib.abc
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_PREFIX = "nova.virt.shard_"


class _ShardDriverFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if not name.startswith(_PREFIX):
            return None
        location = os.path.join(_HERE, name[len("nova.virt.") :] + ".py")
        if not os.path.exists(location):
            return None
        # A load by path, the one this repository keeps: nova (the code under test)
        # needs its driver as a module of its own package, and shard-jobs' own code
        # never loads another file this way.
        return importlib.util.spec_from_file_location(name, location)


sys.meta_path.insert(0, _ShardDriverFinder())
