# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""When the janitor may call a run over: the one home of its age rules.

Used by the shard_labelled_resources module (the janitor's search), by
./shard janitor (shard_jobs.rules.janitor) and by the layout tier, which
checks MINIMUM_AGE against the jobs' timeouts. Standard library only, no
import of another module_utils file.
"""

import re

DURATION_RE = re.compile(r"([0-9]+)([smhd])")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# A run younger than this may still be running: the longest shard job's
# timeout (shard-nova-compute-upgrade, 5400 s) plus its post-run time. Zuul's
# post-timeout (1200 s) bounds each post-run playbook on its own, and that job
# has two (upgrade-post-run, cleanup); a third post-timeout is margin (a
# janitor that deletes a run still tearing down is the worse mistake). Below
# it only with force (tests on a cloud of their own).
MINIMUM_AGE = 5400 + (2 + 1) * 1200


def duration_seconds(text):
    """Seconds of '90m', '3h', '2d', ...; None when text is not such a duration."""
    match = DURATION_RE.fullmatch(str(text).strip()) if text is not None else None
    if not match:
        return None
    return int(match.group(1)) * UNITS[match.group(2)]


def age_error(text, force=False):
    """Why a janitor's --older-than cannot be used, on one line, or None."""
    seconds = duration_seconds(text)
    if seconds is None:
        return f"invalid older-than {str(text)[:30]!r}: a number with s, m, h or d (e.g. 3h)"
    if seconds < MINIMUM_AGE and not force:
        return (
            f"older-than {text} is below the minimum age of {MINIMUM_AGE // 60}m (the longest "
            "job's timeout plus its post-run time): a run that young may still be running; "
            "force goes below it, on a cloud of one's own"
        )
    return None
