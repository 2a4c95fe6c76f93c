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
    id: CUSTOM_SHARD_3F2A9C01

- name: Put it on the shard's compute node
  shard_provider_traits:
    cloud: my-cloud
    provider: shard-3f2a9c01
    traits: [CUSTOM_SHARD_3F2A9C01]

- name: Take it off again
  shard_provider_traits:
    cloud: my-cloud
    provider: shard-3f2a9c01
    traits: [CUSTOM_SHARD_3F2A9C01]
    state: absent
"""

RETURN = r"""
traits:
  description: All traits of the provider after the task (in check mode, as they would be), sorted.
  returned: always
  type: list
  elements: str
  sample: [COMPUTE_NODE, CUSTOM_SHARD_3F2A9C01]
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

from urllib.parse import quote

from ansible.module_utils.shard_openstack import (
    ShardModule,
    api_error,
    find_resource_provider,
    placement,
    retry_on_conflict,
)

try:
    from openstack import exceptions as sdk_exceptions
except ImportError:  # pragma: no cover - reported by ShardModule.connect
    sdk_exceptions = None

# Writes tried before giving up on a provider that keeps changing.
ATTEMPTS = 10


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
        uuid = provider["uuid"]

        missing = self._missing_traits(wanted)
        if present and missing:
            self.fail_json(
                msg=f"trait(s) not defined in placement: {', '.join(missing)} "
                "(create them first, e.g. with openstack.cloud.trait)"
            )
        if not present:
            wanted = [t for t in wanted if t not in missing]

        state = {"changed": False}

        def apply():
            current = placement(self.conn, "get", f"/resource_providers/{uuid}/traits")
            generation = current["resource_provider_generation"]
            have = set(current["traits"])
            want = have | set(wanted) if present else have - set(wanted)
            state.update(traits=sorted(want), generation=generation)
            if want == have or self.check_mode:
                state["changed"] = want != have
                return
            answer = placement(
                self.conn,
                "put",
                f"/resource_providers/{uuid}/traits",
                body={"traits": sorted(want), "resource_provider_generation": generation},
            )
            state.update(
                changed=True,
                traits=sorted(answer["traits"]),
                generation=answer["resource_provider_generation"],
            )

        try:
            retry_on_conflict(apply, attempts=ATTEMPTS)
        except sdk_exceptions.ConflictException as exc:
            self.fail_json(
                msg=f"cannot update traits of resource provider {provider['name']}: it kept "
                f"changing during {ATTEMPTS} attempts ({api_error(exc)})"
            )
        except sdk_exceptions.NotFoundException:
            self.fail_json(msg=f"resource provider {name} disappeared from placement")

        self.exit_json(
            changed=state["changed"],
            traits=state["traits"],
            provider=dict(uuid=uuid, name=provider["name"], generation=state["generation"]),
        )

    def _missing_traits(self, wanted):
        if not wanted:
            return []
        query = quote("in:" + ",".join(wanted), safe=":,")
        known = set(placement(self.conn, "get", f"/traits?name={query}")["traits"])
        return [t for t in wanted if t not in known]


def main():
    ProviderTraitsModule()()


if __name__ == "__main__":
    main()
