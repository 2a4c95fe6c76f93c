# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""When nova's control plane can take a shard: the rule pre-flight checks on the
target cloud (shard_cloud_health) and the embedded cloud waits for before it
says it is ready (shard_embedded_cloud verify).

A shard's nova-compute needs the conductor (it reaches the database only
through it) and the scheduler (the exercise's boot). A service counts as up
when at least one of its records says so: a cloud runs several of each, and a
record of a retired host may stay down. Standard library only.
"""

# The binaries a nova-compute shard needs running in the cloud.
CONTROL_SERVICES = ("nova-conductor", "nova-scheduler")


def first_down(services, binaries=CONTROL_SERVICES):
    """The first of binaries with no record up, as one line, else None.

    services: (binary, state) pairs, as nova's os-services lists them.
    """
    services = list(services)
    for binary in binaries:
        states = [state for name, state in services if name == binary]
        if "up" not in states:
            return f"{binary} is down" if states else f"{binary} is not running"
    return None
