# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: everything in a cloud that carries a shard label (one run's, or any)."""

DOCUMENTATION = r"""
---
module: shard_labelled_resources
short_description: Find what carries a run's label across a cloud
description:
  - Lists, across all projects, the resources that carry a label matching
    I(label) or I(label_pattern), each with where the label was read and when
    the resource was created (when the cloud tells).
  - Only the label decides. A resource whose name looks like a label but that
    carries none is not returned.
  - Where each kind keeps the label
  - C(servers) - metadata C(shard_label), else a server tag that is a label.
  - C(flavors) - a description starting with C(shard-jobs label=<label>).
  - C(traits) - the name, C(CUSTOM_SHARD_<HEX>) of label C(shard-<hex>).
  - C(compute_services) - the host name, which is the label of a shard.
  - C(resource_providers) - the name (a shard's hypervisor host name).
  - C(aggregates) - metadata C(shard_label).
  - C(images) - property C(shard_label).
  - Read-only; reports C(changed=false) and runs in check mode.
options:
  label:
    description:
      - One label (C(shard-<hex>)).
      - Exactly one of I(label) and I(label_pattern) is required.
    type: str
  label_pattern:
    description:
      - Python regular expression searched in labels, e.g. C(^shard-) for all
        of them (a janitor). Only valid labels are considered.
    type: str
  older_than:
    description:
      - Keep only labels whose run is over and older than this many seconds
        (for a janitor). A label's age is that of its newest dated resource;
        a label whose compute service still reports up is never kept; one with
        nothing dated and no live service is kept (debris of a dead run).
    type: int
  kinds:
    description: Kinds of resources to look at.
    type: list
    elements: str
    choices: [servers, flavors, traits, compute_services, resource_providers, aggregates, images]
    default: [servers, flavors, traits, compute_services, resource_providers, aggregates, images]
notes:
  - Connection options (I(cloud), I(region_name), I(interface), I(timeout)) as
    in the other shard-jobs modules; I(cloud) names a clouds.yaml entry or is a
    dict of one.
  - Needs admin rights to see every project's servers, private flavors,
    services and placement.
  - A kind whose service is not in the catalog is left out and reported in I(unsearched).
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Find what a run left
  shard_labelled_resources:
    cloud: my-cloud
    label: shard-3f2a9c01
  register: found

- name: Janitor - every labelled resource
  shard_labelled_resources:
    cloud: my-cloud
    label_pattern: "^shard-"
  register: all_labelled
"""

RETURN = r"""
expired:
  description:
    - With I(older_than), each label kept and why (C(newest) epoch seconds or
      null, C(reason)).
  returned: always
  type: dict
resources:
  description:
    - Kind -> list of resources, every kind of I(kinds) present (maybe empty).
    - Every entry has C(id), C(name), C(label), C(source) (where the label was
      read) and C(created) (epoch seconds, or null when the cloud does not tell),
      plus the fields of its kind.
    - C(servers) add C(status), C(project_id), C(compute_host).
    - C(flavors) add C(description), C(extra_specs), C(is_public).
    - C(traits) add C(providers) (names of the providers that have the trait).
    - C(compute_services) add C(host), C(binary), C(state), C(status), C(forced_down).
    - C(resource_providers) add C(uuid), C(generation), C(allocations) (number of consumers).
    - C(aggregates) add C(hosts), C(metadata).
    - C(images) add C(status), C(visibility), C(owner).
  returned: always
  type: dict
  sample:
    servers:
      - id: 327e48d1-2903-4a17-a8db-fc1da8c9fe2d
        name: shard-3f2a9c01-server
        label: shard-3f2a9c01
        source: metadata:shard_label
        created: 1795615164
        status: ACTIVE
        project_id: bf805a4cbd53468493aeb78f9d6d1927
        compute_host: shard-3f2a9c01
    traits:
      - id: CUSTOM_SHARD_3F2A9C01
        name: CUSTOM_SHARD_3F2A9C01
        label: shard-3f2a9c01
        source: name
        created: null
        providers: [shard-3f2a9c01]
labels:
  description: The labels found, sorted.
  returned: always
  type: list
  elements: str
count:
  description: Number of resources found.
  returned: always
  type: int
unsearched:
  description: Kinds that could not be searched (service not in the catalog), with the reason.
  returned: always
  type: dict
"""

import re
import time
from urllib.parse import quote

from ansible.module_utils.shard_openstack import (
    TRAIT_PREFIX,
    ShardModule,
    api_error,
    created_of_description,
    is_label,
    label_of_description,
    label_of_metadata,
    label_of_server,
    label_of_trait,
    parse_timestamp,
    placement,
)

try:
    from keystoneauth1 import exceptions as ksa_exceptions
    from openstack import exceptions as sdk_exceptions

    # A service missing from the catalog: its kinds are skipped.
    NO_SERVICE = (
        sdk_exceptions.EndpointNotFound,
        sdk_exceptions.ServiceDisabledException,
        sdk_exceptions.ServiceDiscoveryException,
        ksa_exceptions.EndpointNotFound,
    )
except ImportError:  # pragma: no cover - reported by ShardModule.connect
    NO_SERVICE = ()

KINDS = [
    "servers",
    "flavors",
    "traits",
    "compute_services",
    "resource_providers",
    "aggregates",
    "images",
]
# Placement microversion that filters providers by required trait.
REQUIRED_TRAIT_MICROVERSION = "1.18"


class LabelledResourcesModule(ShardModule):
    argument_spec = dict(
        label=dict(type="str"),
        label_pattern=dict(type="str"),
        kinds=dict(type="list", elements="str", choices=KINDS, default=list(KINDS)),
        older_than=dict(type="int"),
    )
    module_kwargs = dict(
        supports_check_mode=True,
        mutually_exclusive=[("label", "label_pattern")],
        required_one_of=[("label", "label_pattern")],
    )

    def run(self):
        label = self.require_label()
        if label is not None:
            self.wanted = lambda candidate: candidate == label
        else:
            try:
                pattern = re.compile(self.params["label_pattern"])
            except re.error as exc:
                self.fail_json(msg=f"label_pattern is not a valid regular expression: {exc}")
            self.wanted = lambda candidate: bool(pattern.search(candidate))

        resources, unsearched = {}, {}
        for kind in KINDS:
            if kind not in self.params["kinds"]:
                continue
            try:
                resources[kind] = getattr(self, "_" + kind)()
            except NO_SERVICE as exc:
                resources[kind] = []
                unsearched[kind] = api_error(exc)

        ages = {}
        if self.params["older_than"] is not None:
            ages = expired_labels(resources, self.params["older_than"], time.time())
            resources = {
                kind: [r for r in found if r["label"] in ages] for kind, found in resources.items()
            }
        labels = sorted({r["label"] for found in resources.values() for r in found})
        count = sum(len(found) for found in resources.values())
        self.exit_json(
            changed=False,
            resources=resources,
            labels=labels,
            count=count,
            unsearched=unsearched,
            expired=ages,
        )

    def _match(self, candidate):
        """Whether candidate is a label and one of those asked for."""
        return is_label(candidate) and self.wanted(candidate)

    # -- kinds -----------------------------------------------------------

    def _servers(self):
        found = []
        for server in self.conn.compute.servers(details=True, all_projects=True):
            label, source = label_of_server(
                {"metadata": server.metadata or {}, "tags": server.tags or []}
            )
            if not self._match(label):
                # A server may carry a matching tag besides another metadata label.
                tags = [t for t in server.tags or [] if self._match(t)]
                if not tags:
                    continue
                label, source = tags[0], "tag"
            found.append(
                _entry(
                    server.id,
                    server.name,
                    label,
                    source,
                    parse_timestamp(server.created_at),
                    status=server.status,
                    project_id=server.project_id,
                    compute_host=server.compute_host,
                )
            )
        return found

    def _flavors(self):
        found = []
        # is_public=None lists public and private flavors (admin).
        for flavor in self.conn.compute.flavors(details=True, is_public="None"):
            label = label_of_description(flavor.description)
            if not self._match(label):
                continue
            found.append(
                _entry(
                    flavor.id,
                    flavor.name,
                    label,
                    "description",
                    created_of_description(flavor.description),
                    description=flavor.description,
                    extra_specs=dict(flavor.extra_specs or {}),
                    is_public=flavor.is_public,
                )
            )
        return found

    def _traits(self):
        found = []
        query = quote("startswith:" + TRAIT_PREFIX, safe=":")
        for name in placement(self.conn, "get", f"/traits?name={query}")["traits"]:
            label = label_of_trait(name)
            if not self._match(label):
                continue
            providers = placement(
                self.conn,
                "get",
                f"/resource_providers?required={quote(name)}",
                microversion=REQUIRED_TRAIT_MICROVERSION,
            )["resource_providers"]
            found.append(
                _entry(
                    name, name, label, "name", None, providers=sorted(p["name"] for p in providers)
                )
            )
        return found

    def _compute_services(self):
        found = []
        for service in self.conn.compute.services():
            if not self._match(service.host):
                continue
            found.append(
                _entry(
                    service.id,
                    service.host,
                    service.host,
                    "host",
                    None,
                    host=service.host,
                    binary=service.binary,
                    state=service.state,
                    status=service.status,
                    forced_down=bool(service.is_forced_down),
                )
            )
        return found

    def _resource_providers(self):
        found = []
        for provider in placement(self.conn, "get", "/resource_providers")["resource_providers"]:
            if not self._match(provider["name"]):
                continue
            allocations = placement(
                self.conn, "get", f"/resource_providers/{provider['uuid']}/allocations"
            )["allocations"]
            found.append(
                _entry(
                    provider["uuid"],
                    provider["name"],
                    provider["name"],
                    "name",
                    None,
                    uuid=provider["uuid"],
                    generation=provider["generation"],
                    allocations=len(allocations),
                )
            )
        return found

    def _aggregates(self):
        found = []
        for aggregate in self.conn.compute.aggregates():
            label = label_of_metadata(aggregate.metadata)
            if not self._match(label):
                continue
            found.append(
                _entry(
                    aggregate.id,
                    aggregate.name,
                    label,
                    "metadata:shard_label",
                    parse_timestamp(aggregate.created_at),
                    hosts=list(aggregate.hosts or []),
                    metadata=dict(aggregate.metadata or {}),
                )
            )
        return found

    def _images(self):
        found, seen = [], set()
        # Hidden images (os_hidden) are only listed when asked for.
        images = list(self.conn.image.images()) + list(self.conn.image.images(is_hidden=True))
        for image in images:
            if image.id in seen:
                continue
            seen.add(image.id)
            properties = dict(image.properties or {})
            label = label_of_metadata(properties)
            if not self._match(label):
                continue
            found.append(
                _entry(
                    image.id,
                    image.name,
                    label,
                    "property:shard_label",
                    parse_timestamp(image.created_at),
                    status=image.status,
                    visibility=image.visibility,
                    owner=image.owner,
                )
            )
        return found


def expired_labels(resources, older_than, now):
    """Labels whose run is over and older than older_than seconds, with why.

    A label's age is that of its newest dated resource (servers, flavors,
    aggregates and images record when they were created). A label whose
    compute service still reports up belongs to a running shard and is never
    expired; one with nothing dated and no live service is debris of a run
    that died (a trait, a provider or a service record left behind).
    """
    by_label = {}
    for found in resources.values():
        for entry in found:
            by_label.setdefault(entry["label"], []).append(entry)
    expired = {}
    for label, entries in by_label.items():
        live = any(
            e.get("state") == "up" and not e.get("forced_down")
            for e in resources.get("compute_services", [])
            if e["label"] == label
        )
        dates = [e["created"] for e in entries if e.get("created")]
        newest = max(dates) if dates else None
        if live:
            continue
        if newest is None:
            expired[label] = {"newest": None, "reason": "nothing dated and no live service"}
        elif now - newest >= older_than:
            age = int(now - newest)
            expired[label] = {"newest": newest, "reason": f"newest resource {age}s old"}
    return expired


def _entry(id, name, label, source, created, **fields):
    entry = dict(id=id, name=name, label=label, source=source, created=created)
    entry.update(fields)
    return entry


def main():
    LabelledResourcesModule()()


if __name__ == "__main__":
    main()
