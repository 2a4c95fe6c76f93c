# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""The label of a nova-compute shard: what makes it targetable, and the proof that it is isolated.

The one home of that rule (library/shard_compute_service.py runs it, with its
``label_step`` option, once the cloud sees the shard, on the connection it
waited with). Given a label and the shard's resource provider, ComputeLabel
makes sure that

1. the flavor ``<label>-flavor`` exists with the wanted size, private to the
   account's project, with the description ``shard-jobs label=<label>
   created=<UTC time>`` (teardown and the janitor find and date it by it); an
   existing flavor keeps its description, so its creation time survives a
   re-run; one of another size, or public, is deleted and created again with
   the same description. It comes first, so that a janitor finding the trait
   of a dead run can date it by the flavor;
2. its extra spec ``trait:CUSTOM_SHARD_<HEX>`` is ``required`` (other extra
   specs are left alone);
3. the placement trait ``CUSTOM_SHARD_<HEX>`` exists;
4. the provider has that trait, keeping its other traits (written with the
   generation read with them, read again and retried on 409:
   shard_openstack.change_provider_traits);
5. with a probe image, the cloud isolates the shard: a server of a private
   flavor without the trait (``<label>-probe``), asked for on the shard's host
   (microversion 2.74), must be refused (``No valid host``); it and its
   flavor are deleted at once.

Failures raise LabelError, whose message is one line for fail_json.
"""

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

try:
    from openstack import exceptions as sdk_exceptions
except ImportError:  # pragma: no cover - reported by ShardModule.connect
    sdk_exceptions = None

# The fault of a server the scheduler found no host for.
NO_VALID_HOST = "No valid host"


class LabelError(Exception):
    """The shard could not be labelled, or is not isolated; the message is one line."""


class ComputeLabel:
    """The label step of a nova-compute shard on one connection (see the module's docstring)."""

    def __init__(self, conn, label, check_mode=False):
        self.conn = conn
        self.label = label
        self.check_mode = check_mode
        self.trait = trait_for(label)
        self.flavor_name = flavor_name_for(label)
        # The one extra spec that requires the trait ({trait:<TRAIT>: required}).
        self.requirement = trait_requirement(label)
        self.changed = False

    def present(self, provider_name, size, probe_image="", timeout=120):
        """Label the shard whose resource provider is I(provider_name); with I(probe_image),
        prove that the cloud isolates it. dict(changed, flavor, trait, provider, probe),
        as they are after (in check mode, as they would be; no probe)."""
        self.changed = False
        # Everything is looked up before anything is written.
        provider = find_resource_provider(self.conn, provider_name)
        if provider is None:
            raise LabelError(
                f"resource provider {provider_name} not found in placement; "
                "has the shard's nova-compute reported to placement?"
            )
        flavor = self._find_flavor()
        if flavor is not None and label_of_description(flavor.description) != self.label:
            raise LabelError(
                f"flavor {self.flavor_name} ({flavor.id}) exists but its description "
                f"{flavor.description!r} does not carry label {self.label}: it is not this "
                "run's, and is left alone"
            )
        trait_exists = not missing_traits(self.conn, [self.trait])

        wanted = (size["ram"], size["vcpus"], size.get("disk") or 0)
        flavor = self._present_flavor(flavor, wanted)
        if not trait_exists:
            self.changed = True
            if not self.check_mode:
                placement(self.conn, "put", "/traits/" + quote(self.trait, safe=""))
        traits = self._add_trait(provider)
        probe = None
        if probe_image and not self.check_mode:
            deadline = time.monotonic() + timeout
            # A provider without its inventory yet refuses every server:
            # the probe's refusal would then prove nothing.
            self._wait_for_inventory(provider, wanted, deadline)
            probe = self._probe_isolation(
                provider["name"], probe_image, wanted, max(deadline - time.monotonic(), 1)
            )
        return dict(
            changed=self.changed,
            flavor=flavor,
            trait=self.trait,
            provider=dict(uuid=provider["uuid"], name=provider["name"], traits=traits),
            probe=probe,
        )

    # -- the flavor and the trait ----------------------------------------

    def _find_flavor(self):
        return self.conn.compute.find_flavor(
            self.flavor_name, ignore_missing=True, get_extra_specs=True
        )

    def _present_flavor(self, flavor, wanted):
        """The flavor as a dict, with the wanted size and extra spec (created or fixed if need)."""
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
            flavor = self._private_flavor(self.flavor_name, wanted, description)
        elif flavor is None:
            description = description_for(self.label)
            self.changed = True
            if self.check_mode:
                return _flavor(None, self.flavor_name, description, wanted, dict(self.requirement))
            flavor = self._private_flavor(self.flavor_name, wanted, description)

        specs = dict(flavor.extra_specs or {})
        if any(specs.get(k) != v for k, v in self.requirement.items()):
            self.changed = True
            specs.update(self.requirement)
            if not self.check_mode:
                # (nova answers with the specs written, not all of them)
                self.conn.compute.create_flavor_extra_specs(flavor, self.requirement)
        return _flavor(flavor.id, flavor.name, flavor.description, wanted, specs)

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

    def _add_trait(self, provider):
        """The provider's traits once it has the label's (retried on 409); sets changed."""
        try:
            state = change_provider_traits(
                self.conn, provider, add=[self.trait], check_mode=self.check_mode
            )
        except ProviderTraitsError as exc:
            raise LabelError(str(exc)) from exc
        self.changed = self.changed or state["changed"]
        return state["traits"]

    # -- the isolation probe ---------------------------------------------

    def _wait_for_inventory(self, provider, size, deadline):
        """Until the provider's inventory could hold the probe (ram, vcpus)."""
        ram, vcpus = size[0], size[1]
        url = f"/resource_providers/{provider['uuid']}/inventories"

        def ready():
            inventories = (placement(self.conn, "get", url) or {}).get("inventories") or {}
            return (inventories.get("VCPU") or {}).get("total", 0) >= vcpus and (
                inventories.get("MEMORY_MB") or {}
            ).get("total", 0) >= ram

        wait_until(
            ready,
            deadline=deadline,
            on_timeout=lambda: (
                f"resource provider {provider['name']} reported no inventory for a server of "
                f"{vcpus} vCPU and {ram} MiB, so the isolation probe would prove nothing"
            ),
            error=LabelError,
        )

    def _probe_isolation(self, host, image_name, size, timeout):
        """A server of a flavor without the trait, asked for on the shard: nova must refuse it."""
        deadline = time.monotonic() + timeout
        image = self.conn.image.find_image(image_name, ignore_missing=True)
        if image is None:
            raise LabelError(f"image {image_name} for the isolation probe not found")
        name = name_for(self.label, "probe")
        flavor = self.conn.compute.find_flavor(name, ignore_missing=True)
        if flavor is None:
            flavor = self._private_flavor(name, size)
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
                    f"the isolation probe {name} was neither placed nor refused within {timeout}s"
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
            raise LabelError("; ".join(filter(None, [problem, left])))
        fault = (server.fault or {}).get("message", "") if server.status == "ERROR" else ""
        if server.compute_host:
            raise LabelError(
                f"this cloud does not isolate shards: a server whose flavor does not require "
                f"{self.trait} was placed on the shard {server.compute_host}; its operator enables "
                "nova's [scheduler] enable_isolated_aggregate_filtering"
            )
        if NO_VALID_HOST not in fault:
            raise LabelError(
                f"the isolation probe failed for another reason than isolation: {fault}"
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
