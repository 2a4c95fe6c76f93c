# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: make a nova-compute shard targetable (its trait, a flavor requiring it)."""

DOCUMENTATION = r"""
---
module: shard_compute_label
short_description: Make a nova-compute shard targetable by a flavor that requires its trait
description:
  - The label step of the C(nova-compute) profile in one connection. With
    I(state=present) it makes sure that
  - (1) the flavor C(<label>-flavor) exists with the size of I(flavor), private
    to the account's project (no other project can boot it), and a
    description C(shard-jobs label=<label> created=<UTC time>), which is how
    teardown and the janitor find and date it; an existing flavor keeps its
    description, so its creation time survives a re-run; one of another size
    is deleted and created again with the same description;
  - (2) its extra spec C(trait:CUSTOM_SHARD_<HEX>) is C(required), set when
    missing or different (other extra specs are left alone);
  - (3) the placement trait C(CUSTOM_SHARD_<HEX>) of the label exists;
  - (4) the resource provider I(provider) has that trait, keeping its other
    traits (those nova-compute reports). The whole list is written with the
    provider generation read with it; when nova-compute updated the provider
    meanwhile placement answers 409, and the module reads again and retries.
  - Only this shard can then take servers of that flavor.
  - With I(probe_image), (5) proves that the cloud isolates the shard; a
    server of a flavor without the trait (C(<label>-probe), private), asked
    for on the shard's host (microversion 2.74), must not be placed (nova
    answers C(No valid host)); it and its flavor are deleted at once. A cloud
    whose scheduler does not filter isolated aggregates (nova's
    C([scheduler] enable_isolated_aggregate_filtering)) would let any
    tenant's server land on the shard, and the task fails, saying so.
  - The flavor comes first, so that a janitor finding the trait of a dead run
    can date it by the flavor.
  - With I(state=absent), the reverse, only for what carries this label. The
    trait is taken off I(provider) (when it exists), the flavor
    C(<label>-flavor) is deleted when its description carries the label (a
    flavor of that name without it is left alone), then the trait.
  - openstacksdk has no calls for provider traits; those use the placement
    REST API (microversion 1.6).
options:
  label:
    description:
      - Label of the run, C(shard-<hex>), derived from the Zuul build id.
      - Anything else fails the task, in one line, before any API call.
    type: str
    required: true
  provider:
    description: Name or UUID of the shard's resource provider (its host name).
    type: str
    required: true
  flavor:
    description:
      - Size of the flavor C(<label>-flavor).
      - Required with I(state=present).
    type: dict
    suboptions:
      ram:
        description: Memory in MiB.
        type: int
        required: true
      vcpus:
        description: Number of vCPUs.
        type: int
        required: true
      disk:
        description: Root disk in GiB.
        type: int
        default: 0
  probe_image:
    description:
      - Name or id of an image to boot the isolation probe with (see above); no
        probe when empty. Only used with I(state=present).
    type: str
    default: ""
  timeout:
    description: Seconds to wait for the probe to be placed or refused, and deleted.
    type: int
    default: 120
  state:
    description:
      - C(present) creates what is missing and sets what differs (see above).
      - C(absent) removes what carries this label (see above).
    type: str
    choices: [present, absent]
    default: present
notes:
  - Needs admin rights (flavors, placement).
  - In check mode nothing is changed; the result tells what would be.
extends_documentation_fragment:
  - shard.openstack
  - shard.phase
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Make the shard targetable
  shard_compute_label:
    cloud: my-cloud
    label: shard-3f2a9c01b4e5
    provider: shard-3f2a9c01b4e5
    flavor:
      ram: 128
      vcpus: 1
      disk: 0
  register: labelled

- name: Boot on the shard
  openstack.cloud.server:
    cloud: my-cloud
    name: shard-3f2a9c01b4e5-server
    flavor: "{{ labelled.flavor.id }}"
    image: cirros

- name: Remove the label's flavor and trait
  shard_compute_label:
    cloud: my-cloud
    label: shard-3f2a9c01b4e5
    provider: shard-3f2a9c01b4e5
    state: absent
"""

RETURN = r"""
flavor:
  description:
    - The flavor C(<label>-flavor) after the task (in check mode, as it would be;
      its I(id) is null when it would be created).
    - With I(state=absent), the flavor deleted, or null when there was none of this label.
  returned: always
  type: dict
  contains:
    id:
      description: Flavor id.
      type: str
    name:
      description: Flavor name.
      type: str
      sample: shard-3f2a9c01b4e5-flavor
    extra_specs:
      description: Extra specs of the flavor.
      type: dict
      sample: {"trait:CUSTOM_SHARD_3F2A9C01B4E5": "required"}
    description:
      description: Description, with the label and the creation time.
      type: str
      sample: shard-jobs label=shard-3f2a9c01b4e5 created=2026-12-02T09:14:03Z
    ram:
      description: Memory in MiB.
      type: int
    vcpus:
      description: Number of vCPUs.
      type: int
    disk:
      description: Root disk in GiB.
      type: int
trait:
  description: The placement trait of the label.
  returned: always
  type: str
  sample: CUSTOM_SHARD_3F2A9C01B4E5
provider:
  description: The resource provider, or null when I(state=absent) and it does not exist.
  returned: always
  type: dict
  contains:
    uuid:
      description: Provider UUID.
      type: str
    name:
      description: Provider name.
      type: str
    traits:
      description: All traits of the provider after the task (in check mode, as they would be).
      type: list
      elements: str
      sample: [COMPUTE_NODE, CUSTOM_SHARD_3F2A9C01B4E5]
"""

import contextlib
import time
from urllib.parse import quote

from ansible.module_utils.shard_labels import (
    LABEL_METADATA_KEY,
    flavor_name_for,
    name_for,
    trait_requirement,
)
from ansible.module_utils.shard_openstack import (
    ProviderTraitsError,
    ShardModule,
    api_error,
    change_provider_traits,
    description_for,
    find_resource_provider,
    label_of_description,
    missing_traits,
    placement,
    trait_for,
)
from ansible.module_utils.shard_resources import TeardownError, wait_server_gone
from ansible.module_utils.shard_waits import wait_until

# The fault of a server the scheduler found no host for.
NO_VALID_HOST = "No valid host"

try:
    from openstack import exceptions as sdk_exceptions
except ImportError:  # pragma: no cover - reported by ShardModule.connect
    sdk_exceptions = None


class ComputeLabelModule(ShardModule):
    argument_spec = dict(
        label=dict(type="str", required=True),
        provider=dict(type="str", required=True),
        flavor=dict(
            type="dict",
            options=dict(
                ram=dict(type="int", required=True),
                vcpus=dict(type="int", required=True),
                disk=dict(type="int", default=0),
            ),
        ),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        probe_image=dict(type="str", default=""),
        timeout=dict(type="int", default=120),
    )
    module_kwargs = dict(supports_check_mode=True, required_if=[("state", "present", ["flavor"])])

    def run(self):
        self.label = self.require_label()
        self.trait = trait_for(self.label)
        self.flavor_name = flavor_name_for(self.label)
        # The one extra spec that requires the trait ({trait:<TRAIT>: required}).
        self.requirement = trait_requirement(self.label)
        self.changed = False
        if self.params["state"] == "present":
            self.present()
        else:
            self.absent()

    # -- present ---------------------------------------------------------

    def present(self):
        name = self.params["provider"]
        # Everything is looked up before anything is written.
        provider = find_resource_provider(self.conn, name)
        if provider is None:
            self.fail_json(
                msg=f"resource provider {name} not found in placement; "
                "has the shard's nova-compute reported to placement?"
            )
        flavor = self._find_flavor()
        if flavor is not None and label_of_description(flavor.description) != self.label:
            self.fail_json(
                msg=f"flavor {self.flavor_name} ({flavor.id}) exists but its description "
                f"{flavor.description!r} does not carry label {self.label}: it is not this "
                "run's, and is left alone"
            )
        trait_exists = not missing_traits(self.conn, [self.trait])

        flavor = self._present_flavor(flavor)
        if not trait_exists:
            self.changed = True
            if not self.check_mode:
                placement(self.conn, "put", "/traits/" + quote(self.trait, safe=""))
        traits = self._change_traits(provider, add=[self.trait])
        probe = None
        if self.params["probe_image"] and not self.check_mode:
            probe = self._probe_isolation(provider["name"])

        self.exit_json(
            changed=self.changed,
            flavor=flavor,
            trait=self.trait,
            provider=dict(uuid=provider["uuid"], name=provider["name"], traits=traits),
            probe=probe,
        )

    def _probe_isolation(self, host):
        """A server of a flavor without the trait, asked for on the shard: nova must refuse it."""
        deadline = time.monotonic() + self.params["timeout"]
        image = self.conn.image.find_image(self.params["probe_image"], ignore_missing=True)
        if image is None:
            self.fail_json(
                msg=f"image {self.params['probe_image']} for the isolation probe not found"
            )
        size = self.params["flavor"]
        name = name_for(self.label, "probe")
        flavor = self.conn.compute.find_flavor(name, ignore_missing=True)
        if flavor is None:
            flavor = self._private_flavor(name, (size["ram"], size["vcpus"], size["disk"]))
        server, problem = None, None
        try:
            # A requested host (microversion 2.74; openstacksdk negotiates up to
            # 2.100) goes through the scheduler's filters, unlike a forced one.
            server = self.conn.compute.create_server(
                name=name,
                flavor_id=flavor.id,
                image_id=image.id,
                networks="none",
                host=host,
                metadata={LABEL_METADATA_KEY: self.label},
            )
            server = wait_until(
                lambda: _settled(self.conn.compute.get_server(server.id)),
                deadline=deadline,
                on_timeout=lambda: (
                    f"the isolation probe {name} was neither placed nor refused "
                    f"within {self.params['timeout']}s"
                ),
                error=TeardownError,
            )
        except TeardownError as exc:
            problem = str(exc)
        except sdk_exceptions.SDKException as exc:
            problem = f"the isolation probe {name} failed: {api_error(exc)}"
        finally:
            left = self._remove_probe(server, flavor, deadline + 60)
        if problem or left:
            self.fail_json(msg="; ".join(filter(None, [problem, left])))
        fault = (server.fault or {}).get("message", "") if server.status == "ERROR" else ""
        if server.compute_host:
            self.fail_json(
                msg=f"this cloud does not isolate shards: a server whose flavor does not require "
                f"{self.trait} was placed on the shard {server.compute_host}; its operator enables "
                "nova's [scheduler] enable_isolated_aggregate_filtering"
            )
        if NO_VALID_HOST not in fault:
            self.fail_json(
                msg=f"the isolation probe failed for another reason than isolation: {fault}"
            )
        return dict(refused=True, fault=fault)

    def _remove_probe(self, server, flavor, deadline):
        """Delete the probe's server and flavor, each whatever became of the other; what
        could not be deleted (teardown finds it by its label), or None."""
        left = []
        if server is not None:
            try:
                self.conn.compute.delete_server(server.id, ignore_missing=True)
                wait_server_gone(self.conn, server.id, server.name, deadline)
            except (TeardownError, sdk_exceptions.SDKException) as exc:
                left.append(
                    f"its server: {exc if isinstance(exc, TeardownError) else api_error(exc)}"
                )
        try:
            self.conn.compute.delete_flavor(flavor.id, ignore_missing=True)
        except sdk_exceptions.SDKException as exc:
            left.append(f"its flavor: {api_error(exc)}")
        return f"the isolation probe was not removed ({'; '.join(left)})" if left else None

    def _private_flavor(self, name, size, description=None):
        """A flavor only the account's project can use."""
        ram, vcpus, disk = size
        flavor = self.conn.compute.create_flavor(
            name=name,
            ram=ram,
            vcpus=vcpus,
            disk=disk,
            is_public=False,
            description=description or description_for(self.label),
        )
        self.conn.compute.flavor_add_tenant_access(flavor, self.conn.current_project_id)
        return flavor

    def _present_flavor(self, flavor):
        """The flavor as a dict, with the wanted size and extra spec (created or fixed if need)."""
        size = self.params["flavor"]
        wanted = (size["ram"], size["vcpus"], size["disk"])
        if flavor is not None and (
            (flavor.ram, flavor.vcpus, flavor.disk) != wanted or flavor.is_public
        ):
            # Flavors cannot be resized nor made private: create it again,
            # keeping the creation time.
            description = flavor.description
            self.changed = True
            if self.check_mode:
                return _flavor(None, self.flavor_name, description, wanted, dict(self.requirement))
            self.conn.compute.delete_flavor(flavor, ignore_missing=True)
            flavor = self._create_flavor(wanted, description)
        elif flavor is None:
            description = description_for(self.label)
            self.changed = True
            if self.check_mode:
                return _flavor(None, self.flavor_name, description, wanted, dict(self.requirement))
            flavor = self._create_flavor(wanted, description)

        specs = dict(flavor.extra_specs or {})
        if any(specs.get(k) != v for k, v in self.requirement.items()):
            self.changed = True
            specs.update(self.requirement)
            if not self.check_mode:
                # (nova answers with the specs written, not all of them)
                self.conn.compute.create_flavor_extra_specs(flavor, self.requirement)
        return _flavor(flavor.id, flavor.name, flavor.description, wanted, specs)

    def _create_flavor(self, size, description):
        return self._private_flavor(self.flavor_name, size, description)

    # -- absent ----------------------------------------------------------

    def absent(self):
        provider = find_resource_provider(self.conn, self.params["provider"])
        trait_exists = not missing_traits(self.conn, [self.trait])

        provider_result = None
        if provider is not None:
            # (A trait that does not exist is on no provider.)
            traits = self._change_traits(provider, remove=[self.trait] if trait_exists else [])
            provider_result = dict(uuid=provider["uuid"], name=provider["name"], traits=traits)

        flavor_result = None
        flavor = self._find_flavor()
        if flavor is not None and label_of_description(flavor.description) == self.label:
            flavor_result = _flavor(
                flavor.id,
                flavor.name,
                flavor.description,
                (flavor.ram, flavor.vcpus, flavor.disk),
                dict(flavor.extra_specs or {}),
            )
            self.changed = True
            if not self.check_mode:
                self.conn.compute.delete_flavor(flavor, ignore_missing=True)

        if trait_exists:
            self.changed = True
            if not self.check_mode:
                with contextlib.suppress(sdk_exceptions.NotFoundException):  # gone meanwhile
                    placement(self.conn, "delete", "/traits/" + quote(self.trait, safe=""))

        self.exit_json(
            changed=self.changed, flavor=flavor_result, trait=self.trait, provider=provider_result
        )

    # -- shared ----------------------------------------------------------

    def _find_flavor(self):
        return self.conn.compute.find_flavor(
            self.flavor_name, ignore_missing=True, get_extra_specs=True
        )

    def _change_traits(self, provider, add=(), remove=()):
        """The provider's traits after adding/removing these (retried on 409); sets changed."""
        try:
            state = change_provider_traits(
                self.conn, provider, add=add, remove=remove, check_mode=self.check_mode
            )
        except ProviderTraitsError as exc:
            self.fail_json(msg=str(exc))
        self.changed = self.changed or state["changed"]
        return state["traits"]


def _settled(server):
    """The probe once nova placed or refused it, else None.

    nova's conductor saves the ERROR state first and records the fault just
    after: an ERROR without its fault is not settled yet.
    """
    if server.status == "ERROR":
        return server if server.fault else None
    return server if server.status == "ACTIVE" or server.compute_host else None


def _flavor(flavor_id, name, description, size, extra_specs):
    ram, vcpus, disk = size
    return dict(
        id=flavor_id,
        name=name,
        description=description,
        extra_specs=extra_specs,
        ram=ram,
        vcpus=vcpus,
        disk=disk,
    )


def main():
    ComputeLabelModule()()


if __name__ == "__main__":
    main()
