# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""A service's version as its source states it: the one home of the rule.

nova's conductor refuses a compute older than the oldest compute the
deployment runs (ServiceTooOld), and nova does not support a compute newer
than its control plane; a profile says where its project states that number
(service_version: path and pattern), and the operator states the oldest and
the newest the cloud accepts (minimum_service_versions and
maximum_service_versions in the credentials). Read from a source tree (the
change, by shard_guard) or from an installed virtualenv (the upgrade's
"from", by shard_guard with skew.yaml; the embedded cloud's own compute, by
shard_service_version), and compared with those bounds here (skew_refusal).
Standard library only.
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


def parse_bound(bound):
    """The operator's minimum or maximum as a number, or None when not stated (None or blank).

    ValueError when it is not a whole number."""
    if bound is None or not str(bound).strip():
        return None
    return int(str(bound).strip())


def skew_refusal(service, minimum, version, what, maximum=None, project=""):
    """The one line that stops a service older or newer than the cloud accepts, or "".

    service: the profile's service name; minimum, maximum: the oldest and the newest
    service version the cloud accepts (parse_bound's, None: not stated); version: what
    service_version read (None: not found, no refusal: the cloud's own refusal comes
    within seconds of the deploy); what: what has that version; project: whose
    newer version needs a newer cloud (the service's name when empty)."""
    if version is None:
        return ""
    if minimum is not None and version < minimum:
        return (
            f"this cloud refuses {service} older than v{minimum} (minimum_service_versions in "
            f"its credentials): {what} has service version {version}; it needs a cloud that "
            f"still accepts that version (one at the change's release, not upgraded past it)"
        )
    if maximum is not None and version > maximum:
        # The newer side: no older cloud can take it, only one upgraded past it.
        return (
            f"this cloud accepts {service} up to v{maximum} (maximum_service_versions in its "
            f"credentials): {what} has service version {version}; it needs a cloud whose "
            f"{project or service} is at least that new (one that follows the branch, upgraded)"
        )
    return ""
