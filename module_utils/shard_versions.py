# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""A service's version as its source states it: the one home of the rule.

nova's conductor refuses a compute older than the oldest compute the
deployment runs (ServiceTooOld); a profile says where its project states that
number (service_version: path and pattern), and the operator states the
oldest the cloud accepts (minimum_service_versions in the credentials). Read
from a source tree (the change, by shard_guard) or from an installed
virtualenv (the upgrade's "from", by shard_guard with skew.yaml; the embedded
cloud's own compute, by shard_service_version), and compared with that
minimum here (skew_refusal). Standard library only.
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


def parse_minimum(minimum):
    """The operator's minimum as a number, or None when not stated (None or blank).

    ValueError when it is not a whole number."""
    if minimum is None or not str(minimum).strip():
        return None
    return int(str(minimum).strip())


def skew_refusal(service, minimum, version, what):
    """The one line that stops a service older than the cloud accepts, or "".

    service: the profile's service name; minimum: the oldest service version the
    cloud accepts (parse_minimum's, None: not stated); version: what
    service_version read (None: not found, no refusal: the cloud's own refusal
    comes within seconds of the deploy); what: what has that version."""
    if minimum is None or version is None or version >= minimum:
        return ""
    return (
        f"this cloud refuses {service} older than v{minimum} (minimum_service_versions in its "
        f"credentials): {what} has service version {version}"
    )
