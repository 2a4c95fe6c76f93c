# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Which shard profiles exist: the one home of the rule that finds a job's profile.

A profile is a directory holding a profile.yaml: roles/shard/profiles/<name>/,
or the job's shard_profile_dir. Used by the shard role (the
``shard_profile_error`` filter, roles/shard/filter_plugins/) and by ./shard run
(shard_jobs.rules.profiles), so that both refuse the same names with the same
line. Standard library only, no import of another module_utils file.
"""

import os
import re

# A profile's name: a directory name and nothing else (no path, no dots).
NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]*")
PROFILE_FILE = "profile.yaml"


def known_profiles(root):
    """The names of the profiles under root, sorted."""
    try:
        entries = os.listdir(root)
    except OSError:
        return []
    return sorted(e for e in entries if os.path.isfile(os.path.join(root, e, PROFILE_FILE)))


def profile_path(name, root, profile_dir=None):
    """The directory of the job's profile: profile_dir when the job gives one, else root/name."""
    return profile_dir or os.path.join(root, str(name))


def profile_error(name, root, profile_dir=None):
    """Why the job's profile cannot be loaded, on one line naming the known ones, or None."""
    named = profile_dir or (isinstance(name, str) and NAME_RE.fullmatch(name))
    if named and os.path.isfile(os.path.join(profile_path(name, root, profile_dir), PROFILE_FILE)):
        return None
    known = ", ".join(known_profiles(root))
    return f"unknown shard profile {str(name)[:60]!r}; known profiles: {known}"
