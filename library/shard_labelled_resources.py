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
      - Mutually exclusive with I(label_pattern); without either, every shard label.
    type: str
  label_pattern:
    description:
      - Python regular expression searched in labels (a janitor's narrower
        choice). Only valid labels are considered.
      - Without it (and without I(label)), every shard label.
    type: str
  older_than:
    description:
      - Keep only labels whose run is over and older than this (for a
        janitor) - a duration such as C(3h), C(90m), C(2d). A label's age is
        that of its newest dated resource; a label whose compute service
        still reports up is never kept; one with nothing dated and no live
        service is kept (debris of a dead run).
      - Below the minimum age (the longest shard job's timeout plus its
        post-run time) only with I(force).
      - When every nova-compute of the cloud reports down (a message-bus
        outage makes live runs look over), the module fails and keeps nothing
        (unless I(force)).
    type: str
  force:
    description:
      - Accept an I(older_than) below the minimum age, and a cloud whose
        computes all report down (tests, on a cloud of their own).
    type: bool
    default: false
  kinds:
    description: Kinds of resources to look at.
    type: list
    elements: str
    choices: [servers, flavors, traits, compute_services, resource_providers, aggregates, images]
    default: [servers, flavors, traits, compute_services, resource_providers, aggregates, images]
notes:
  - Needs admin rights to see every project's servers, private flavors,
    services and placement.
  - A kind whose service is not in the catalog is left out and reported in I(unsearched).
extends_documentation_fragment:
  - shard.openstack
  - shard.phase
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Find what a run left
  shard_labelled_resources:
    cloud: my-cloud
    label: shard-3f2a9c01b7d4
  register: found

- name: Janitor - every labelled resource
  shard_labelled_resources:
    cloud: my-cloud
  register: all_labelled

- name: Janitor - the labels of one site's runs only
  shard_labelled_resources:
    cloud: my-cloud
    label_pattern: "^shard-0[0-7]"
  register: some_labelled
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
        name: shard-3f2a9c01b7d4-server
        label: shard-3f2a9c01b7d4
        source: metadata:shard_label
        created: 1795615164
        status: ACTIVE
        project_id: bf805a4cbd53468493aeb78f9d6d1927
        compute_host: shard-3f2a9c01b7d4
    traits:
      - id: CUSTOM_SHARD_3F2A9C01B7D4
        name: CUSTOM_SHARD_3F2A9C01B7D4
        label: shard-3f2a9c01b7d4
        source: name
        created: null
        providers: [shard-3f2a9c01b7d4]
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
foreign:
  description:
    - Kind -> labelled servers and images of other projects than the account's.
    - Any tenant can write a label; these are reported only, never in I(resources).
  returned: always
  type: dict
"""

import re
import time

from ansible.module_utils.shard_janitor_rules import age_error, duration_seconds
from ansible.module_utils.shard_labels import ALL_LABELS_PATTERN
from ansible.module_utils.shard_openstack import ShardModule
from ansible.module_utils.shard_resources import KINDS, expired_labels, find, split_foreign


class LabelledResourcesModule(ShardModule):
    argument_spec = dict(
        label=dict(type="str"),
        label_pattern=dict(type="str"),
        kinds=dict(type="list", elements="str", choices=KINDS, default=list(KINDS)),
        older_than=dict(type="str"),
        force=dict(type="bool", default=False),
    )
    module_kwargs = dict(
        supports_check_mode=True,
        mutually_exclusive=[("label", "label_pattern")],
    )

    def run(self):
        label = self.require_label()
        pattern = None
        if label is None:
            try:
                # No pattern: the one that matches every label (shard_labels).
                pattern = re.compile(self.params["label_pattern"] or ALL_LABELS_PATTERN)
            except re.error as exc:
                self.fail_json(msg=f"label_pattern is not a valid regular expression: {exc}")

        def wanted(candidate):
            """Whether a valid label is one of those asked for."""
            return candidate == label if pattern is None else bool(pattern.search(candidate))

        older_than = self.params["older_than"]
        if older_than is not None:
            error = age_error(older_than, self.params["force"])
            if error:
                self.fail_json(msg=error)

        resources, unsearched = find(self.conn, self.params["kinds"], wanted)
        resources, foreign = split_foreign(self.conn, resources)

        ages = {}
        if older_than is not None:
            if not self.params["force"]:
                self._refuse_when_every_compute_is_down()
            ages = expired_labels(resources, duration_seconds(older_than), time.time())
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
            foreign=foreign,
        )

    def _refuse_when_every_compute_is_down(self):
        """A message-bus outage makes every compute report down at once, and so every
        live run look over: then nothing is judged expired."""
        computes = [s for s in self.conn.compute.services() if s.binary == "nova-compute"]
        if len(computes) > 1 and all(s.state == "down" for s in computes):
            self.fail_json(
                msg=f"every nova-compute of the cloud ({len(computes)}) reports down, as in a "
                "message-bus outage: no run is judged over until they report again"
            )


def main():
    LabelledResourcesModule()()


if __name__ == "__main__":
    main()
