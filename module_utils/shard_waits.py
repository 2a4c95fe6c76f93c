# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""The one wait loop: look, and look again every interval until something holds or time runs out.

For the modules (as ``ansible.module_utils.shard_waits``), the rest of
module_utils, the CLI and the tests (``shard_jobs.rules.waits``).

Not openstacksdk's ``iterate_timeout``, which the cloud waits once used:
shard_cloud_services runs on a node's plain python3 before any virtualenv has
openstacksdk, and the CLI's and tests' waits are not about a cloud. Waits on a
server's status alone still use sdk's ``wait_for_server`` where they fit
(bench_floor); ours need more than the status (see shard_server).

Standard library only. ``time`` is looked up at call time, through this
module's global, so a test's fake clock can stand in for it.
"""

import time

# Seconds between two looks: the harness polls at 0.5 s at most, so a wait
# ends at most half a second after what it waits for.
POLL_INTERVAL = 0.5


class WaitTimeout(Exception):
    """A wait ran out of time; the message says what was waited for."""


def wait_until(
    probe,
    timeout=None,
    *,
    deadline=None,
    what=None,
    on_timeout=None,
    interval=POLL_INTERVAL,
    error=WaitTimeout,
):
    """probe() now, then every interval seconds, until it returns something truthy: returned.

    The wait ends at deadline (a time.monotonic() value) or timeout seconds from
    now. Past it: error(message), the message on_timeout() (called then, so it
    can tell the last state seen) or "timed out after <timeout>s waiting for
    <what>". error lets a caller raise its own kind (TeardownError, a test's
    AssertionError) without a wrapper. A probe stops the wait early by raising.
    """
    if deadline is None:
        if timeout is None:
            raise ValueError("wait_until needs a timeout or a deadline")
        deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            if on_timeout is not None:
                raise error(on_timeout())
            within = f" after {timeout}s" if timeout is not None else ""
            raise error(f"timed out{within} waiting for {what or 'a condition'}")
        time.sleep(interval)
