# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: add or remove traits of a placement resource provider, keeping the others."""

DOCUMENTATION = r"""
---
module: shard_provider_traits
short_description: Add traits to a placement resource provider, or remove them, keeping the others
description:
  - Adds (I(state=present)) or removes (I(state=absent)) the given traits of a
    resource provider and leaves its other traits alone, such as the
    C(COMPUTE_*) traits nova-compute reports.
  - Writes the whole list with the provider generation read with it; when the
    provider changed meanwhile (nova-compute updates it periodically) placement
    answers 409 and the module reads it again and retries.
  - With I(state=present) every trait must exist already (the
    C(openstack.cloud.trait) module creates custom traits); with
    I(state=absent) a trait that does not exist counts as absent.
  - openstacksdk has no calls for provider traits; this module uses the
    placement REST API (microversion 1.6).
options:
  provider:
    description: Name or UUID of the resource provider.
    type: str
    required: true
  traits:
    description: Traits to add or remove.
    type: list
    elements: str
    required: true
  state:
    description:
      - C(present) adds I(traits) to those of the provider.
      - C(absent) removes I(traits) from them.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Connection options (I(cloud), I(region_name), I(interface), I(timeout)) as
    in the other shard-jobs modules; I(cloud) names a clouds.yaml entry or is a
    dict of one.
  - Needs admin rights (placement).
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Create the shard's trait
  openstack.cloud.trait:
    cloud: my-cloud
    id: CUSTOM_SHARD_3F2A9C01B7D4

- name: Put it on the shard's compute node
  shard_provider_traits:
    cloud: my-cloud
    provider: shard-3f2a9c01b7d4
    traits: [CUSTOM_SHARD_3F2A9C01B7D4]

- name: Take it off again
  shard_provider_traits:
    cloud: my-cloud
    provider: shard-3f2a9c01b7d4
    traits: [CUSTOM_SHARD_3F2A9C01B7D4]
    state: absent
"""

RETURN = r"""
traits:
  description: All traits of the provider after the task (in check mode, as they would be), sorted.
  returned: always
  type: list
  elements: str
  sample: [COMPUTE_NODE, CUSTOM_SHARD_3F2A9C01B7D4]
provider:
  description: The resource provider.
  returned: always
  type: dict
  contains:
    uuid:
      description: Provider UUID.
      type: str
    name:
      description: Provider name.
      type: str
    generation:
      description: Provider generation after the task.
      type: int
"""

from ansible.module_utils.shard_openstack import (
    ProviderTraitsError,
    ShardModule,
    change_provider_traits,
    find_resource_provider,
    missing_traits,
)


class ProviderTraitsModule(ShardModule):
    argument_spec = dict(
        provider=dict(type="str", required=True),
        traits=dict(type="list", elements="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        wanted = sorted(set(self.params["traits"]))
        present = self.params["state"] == "present"
        name = self.params["provider"]

        provider = find_resource_provider(self.conn, name)
        if provider is None:
            self.fail_json(msg=f"resource provider {name} not found in placement")

        missing = missing_traits(self.conn, wanted)
        if present and missing:
            self.fail_json(
                msg=f"trait(s) not defined in placement: {', '.join(missing)} "
                "(create them first, e.g. with openstack.cloud.trait)"
            )
        if not present:
            wanted = [t for t in wanted if t not in missing]

        try:
            state = change_provider_traits(
                self.conn,
                provider,
                add=wanted if present else (),
                remove=() if present else wanted,
                check_mode=self.check_mode,
            )
        except ProviderTraitsError as exc:
            self.fail_json(msg=str(exc))

        self.exit_json(
            changed=state["changed"],
            traits=state["traits"],
            provider=dict(
                uuid=provider["uuid"], name=provider["name"], generation=state["generation"]
            ),
        )


def main():
    ProviderTraitsModule()()


if __name__ == "__main__":
    main()
