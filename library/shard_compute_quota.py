# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: does the project's compute quota leave room for the servers a job boots?"""

DOCUMENTATION = r"""
---
module: shard_compute_quota
short_description: Check that the project's compute quota leaves room for the servers a job boots
description:
  - Reads the compute limits of the project the credentials are scoped to
    (instances, cores, RAM, and what is used of them) and fails when booting
    I(servers) more servers of I(vcpus) cores and I(ram) MB would exceed one.
  - "Fails with C(target cloud has no room: the quota of project <id> is
    exhausted: ...) naming each limit that is short, so that a job stops in
    pre-run, before it creates anything, rather than failing its exercise."
  - A limit of -1 is unlimited.
  - Read-only; reports C(changed=false) and runs in check mode.
options:
  servers:
    description: Number of servers the job will boot at once.
    type: int
    default: 1
  vcpus:
    description: Cores of each server (its flavor's vcpus).
    type: int
    default: 1
  ram:
    description: RAM of each server in MB (its flavor's ram).
    type: int
    default: 0
notes:
  - Connection options (I(cloud), I(region_name), I(interface), I(timeout)) as
    in the other shard-jobs modules; I(cloud) names a clouds.yaml entry or is a
    dict of one.
  - The limits are those nova reports to the project itself (C(GET /limits));
    no admin rights needed.
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Check that the exercise's server fits in the project's quota
  shard_compute_quota:
    cloud: my-cloud
    servers: 1
    vcpus: 1
    ram: 128
"""

RETURN = r"""
limits:
  description: Each limit checked, its maximum (-1 unlimited), what is used and what the job needs.
  returned: always
  type: dict
  sample:
    instances: {max: 10, used: 3, needed: 1}
    cores: {max: 20, used: 3, needed: 1}
    ram: {max: 51200, used: 384, needed: 128}
"""

from ansible.module_utils.shard_openstack import ShardModule

# limit name: (attribute of the maximum, attribute of what is used, unit)
LIMITS = {
    "instances": ("instances", "instances_used", "servers"),
    "cores": ("total_cores", "total_cores_used", "cores"),
    "ram": ("total_ram", "total_ram_used", "MB"),
}


class ComputeQuotaModule(ShardModule):
    argument_spec = dict(
        servers=dict(type="int", default=1),
        vcpus=dict(type="int", default=1),
        ram=dict(type="int", default=0),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        p = self.params
        needed = {
            "instances": p["servers"],
            "cores": p["servers"] * p["vcpus"],
            "ram": p["servers"] * p["ram"],
        }
        absolute = self.conn.compute.get_limits().absolute
        limits, short = {}, []
        for name, (max_attr, used_attr, unit) in LIMITS.items():
            maximum = _int(getattr(absolute, max_attr, None))
            used = _int(getattr(absolute, used_attr, None)) or 0
            limits[name] = {"max": maximum, "used": used, "needed": needed[name]}
            if maximum is None or maximum < 0 or not needed[name]:
                continue
            if used + needed[name] > maximum:
                short.append(f"{name} {used} of {maximum} {unit} used, {needed[name]} more needed")
        if short:
            project = getattr(self.conn, "current_project_id", None) or "?"
            self.fail_json(
                msg=f"target cloud has no room: the quota of project {project} is exhausted: "
                + "; ".join(short),
                limits=limits,
            )
        self.exit_json(changed=False, limits=limits)


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def main():
    ComputeQuotaModule()()


if __name__ == "__main__":
    main()
