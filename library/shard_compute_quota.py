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
from ansible.module_utils.shard_quota import quota_room


class ComputeQuotaModule(ShardModule):
    argument_spec = dict(
        servers=dict(type="int", default=1),
        vcpus=dict(type="int", default=1),
        ram=dict(type="int", default=0),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        p = self.params
        limits, problem = quota_room(self.conn, p["servers"], p["vcpus"], p["ram"])
        if problem:
            self.fail_json(msg=problem, limits=limits)
        self.exit_json(changed=False, limits=limits)


def main():
    ComputeQuotaModule()()


if __name__ == "__main__":
    main()
