# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: what placement holds about one resource provider."""

DOCUMENTATION = r"""
---
module: shard_resource_provider_info
short_description: Read a resource provider's inventories, traits, usages and allocations
description:
  - Read-only; for comparing a shard's placement records before and after an
    upgrade, or after any change that must not disturb them.
  - The openstack.cloud collection has no placement info module; the
    openstacksdk placement proxy lacks traits and allocations, so this reads
    the placement API directly (microversion 1.6 or later).
options:
  provider:
    description: Name or UUID of the resource provider.
    type: str
    required: true
  consumers:
    description: Consumers (for nova, server ids) whose allocations to return.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - shard.openstack
  - shard.phase
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Record the shard's placement state
  shard_resource_provider_info:
    cloud: target
    provider: shard-0123456789ab
    consumers: ["{{ server.id }}"]
  register: before
"""

RETURN = r"""
resource_provider:
  description: The provider.
  returned: always
  type: dict
  contains:
    uuid:
      description: Its UUID.
      type: str
    name:
      description: Its name.
      type: str
    generation:
      description: Its generation (changes with every update).
      type: int
inventories:
  description: Inventory per resource class (total, reserved, allocation_ratio, ...).
  returned: always
  type: dict
traits:
  description: Its traits, sorted.
  returned: always
  type: list
  elements: str
usages:
  description: Usage per resource class.
  returned: always
  type: dict
allocations:
  description: For each consumer asked for, its allocations against this provider.
  returned: always
  type: dict
"""

from ansible.module_utils.shard_openstack import ShardModule

MICROVERSION = "1.28"


class ResourceProviderInfoModule(ShardModule):
    argument_spec = dict(
        provider=dict(type="str", required=True),
        consumers=dict(type="list", elements="str", default=[]),
    )
    module_kwargs = dict(supports_check_mode=True)

    def get(self, url):
        resp = self.conn.placement.get(url, microversion=MICROVERSION, raise_exc=False)
        if resp.status_code == 404:
            return None
        if resp.status_code >= 400:
            self.fail_json(msg=f"placement GET {url} answered HTTP {resp.status_code}")
        return resp.json()

    def run(self):
        wanted = self.params["provider"]
        found = self.get(f"/resource_providers?name={wanted}")["resource_providers"]
        if not found:
            found = [rp for rp in [self.get(f"/resource_providers/{wanted}")] if rp]
        if not found:
            self.fail_json(msg=f"no resource provider named {wanted}")
        rp = found[0]
        uuid = rp["uuid"]
        inventories = self.get(f"/resource_providers/{uuid}/inventories")["inventories"]
        traits = sorted(self.get(f"/resource_providers/{uuid}/traits")["traits"])
        usages = self.get(f"/resource_providers/{uuid}/usages")["usages"]
        allocations = {}
        for consumer in self.params["consumers"]:
            data = self.get(f"/allocations/{consumer}") or {"allocations": {}}
            allocations[consumer] = data["allocations"].get(uuid, {}).get("resources", {})
        self.exit_json(
            changed=False,
            resource_provider={"uuid": uuid, "name": rp["name"], "generation": rp["generation"]},
            inventories=inventories,
            traits=traits,
            usages=usages,
            allocations=allocations,
        )


def main():
    ResourceProviderInfoModule()()


if __name__ == "__main__":
    main()
