# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Whether the project's compute quota leaves room for the servers a job boots.

The one home of the rule, used by shard_cloud_health (the whole pre-flight in
one module run, the profile's needs).
"""

# limit name: (attribute of the maximum, attribute of what is used, unit)
LIMITS = {
    "instances": ("instances", "instances_used", "servers"),
    "cores": ("total_cores", "total_cores_used", "cores"),
    "ram": ("total_ram", "total_ram_used", "MB"),
}


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def quota_room(conn, servers=1, vcpus=1, ram=0):
    """(limits, problem): each limit's max (-1 unlimited), used and needed, and
    None when the servers fit, else the one-line reason naming each short limit."""
    needed = {"instances": servers, "cores": servers * vcpus, "ram": servers * ram}
    absolute = conn.compute.get_limits().absolute
    limits, short = {}, []
    for name, (max_attr, used_attr, unit) in LIMITS.items():
        maximum = _int(getattr(absolute, max_attr, None))
        used = _int(getattr(absolute, used_attr, None)) or 0
        limits[name] = {"max": maximum, "used": used, "needed": needed[name]}
        if maximum is None or maximum < 0 or not needed[name]:
            continue
        if used + needed[name] > maximum:
            short.append(f"{name} {used} of {maximum} {unit} used, {needed[name]} more needed")
    if not short:
        return limits, None
    project = getattr(conn, "current_project_id", None) or "?"
    return limits, (
        f"target cloud has no room: the quota of project {project} is exhausted: "
        + "; ".join(short)
    )
