# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""A service's version as its source states it: the one home of the rule.

nova's conductor refuses a compute older than the oldest compute the
deployment runs (ServiceTooOld); a profile says where its project states that
number (service_version: path and pattern). Read from a source tree (the
change, by shard_migrations in the guard) or from an installed virtualenv (the
upgrade's "from", by shard_service_version). Standard library only.
"""

import glob
import os
import re


def service_version(root, path, pattern):
    """The number (first group of pattern, multi-line) in root/path, or None.

    root is a source tree, or a virtualenv whose site-packages hold path.
    """
    candidates = [os.path.join(root, path)]
    candidates += sorted(glob.glob(os.path.join(root, "lib", "python3*", "site-packages", path)))
    for candidate in candidates:
        try:
            with open(candidate) as f:
                match = re.search(pattern, f.read(), re.MULTILINE)
        except OSError:
            continue
        return int(match.group(1)) if match else None
    return None
