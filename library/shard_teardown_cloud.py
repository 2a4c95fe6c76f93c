# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: a run's whole teardown in the cloud, in one process and one connection."""

DOCUMENTATION = r"""
---
module: shard_teardown_cloud
short_description: Delete what carries a run's label, in order, then check that nothing is left
description:
  - The cloud side of a shard run's teardown as one step - wait until the APIs
    it needs answer, find what carries I(label), delete it kind by kind in
    I(order) (stopping the shard's service process where the order says so),
    then look again and fail when anything labelled is left.
  - "With C(queues) in I(order), also the shard host's queues on the cloud's
    message bus (the host is the label): the ones that would stay for ever,
    C(<topic>.<host>) for each RPC topic its service listens on
    (module_utils/shard_bus.py has the rule). Each is deleted with an AMQP
    queue delete, then a passive declare must answer NOT_FOUND. Queues of
    other hosts, and the shared and transient ones (which expire), are never
    touched."
  - Only the label decides what is deleted (see shard_labelled_resources for
    where each kind keeps it). Deletes of one kind are issued together and
    then waited for (servers).
  - Idempotent - a second run finds nothing, stops nothing and reports no change.
  - In check mode it finds and reports what it would delete; nothing is
    stopped or deleted.
options:
  label:
    description: The run's label (C(shard-) and 12 lowercase hex digits).
    type: str
    required: true
  order:
    description:
      - Kinds of resources to delete, in this order, C(service_process)
        where the shard's service must be stopped (after its servers, before
        its compute service record, which it would otherwise re-create), and
        C(queues) where the shard host's message bus queues are deleted
        (after the service stopped, which would declare them again; last, so
        that a message bus problem leaves nothing else behind).
    type: list
    elements: str
    required: true
  service:
    description:
      - The shard's service process, for the C(service_process) step - its
        C(pidfile), and C(stop_timeout) seconds before SIGKILL (default 30).
    type: dict
  wait_for:
    description:
      - Service types whose API must answer before anything is searched or
        deleted (an API being restarted delays teardown instead of leaving
        the run's resources), waited for up to I(timeout) seconds.
    type: list
    elements: str
    default: []
  leak_check:
    description:
      - Look again at the end and fail when anything still carries I(label)
        (with C(queues) in I(order), when a queue of the shard's host is still
        on the message bus).
    type: bool
    default: true
  transport_url:
    description:
      - The cloud's message bus, as the shard's service uses it (the
        credentials' C(transport_url); several hosts are tried in turn, a
        percent-encoded password is decoded). Required with C(queues) in I(order).
    type: str
  queue_services:
    description:
      - The services whose topics name the shard host's queues (C(nova-compute)).
        Every kind's when not given (the janitor, which does not know a
        label's kind; the queue of a kind a label never ran does not exist).
    type: list
    elements: str
notes:
  - Needs the rights teardown needs - deleting compute services, resource
    providers and traits is admin-only by default.
extends_documentation_fragment:
  - shard.openstack
  - shard.phase
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Tear a nova-compute shard down
  shard_teardown_cloud:
    cloud: target
    label: shard-3f2a9c01b7d4
    order: [servers, service_process, compute_services, resource_providers,
            aggregates, flavors, traits]
    service:
      pidfile: /home/zuul/.shard-jobs/builds/shard-3f2a9c01b7d4/run/nova-compute.pid
      stop_timeout: 30
    wait_for: [compute, placement]

- name: Tear a nova-compute shard down, its message bus queues too
  shard_teardown_cloud:
    cloud: target
    label: shard-3f2a9c01b7d4
    order: [servers, service_process, compute_services, resource_providers,
            aggregates, flavors, traits, queues]
    service:
      pidfile: /home/zuul/.shard-jobs/builds/shard-3f2a9c01b7d4/run/nova-compute.pid
    transport_url: "{{ shard_cloud.transport_url }}"
    queue_services: [nova-compute]
    wait_for: [compute, placement]
"""

RETURN = r"""
found:
  description:
    - Kind -> what carried the label before teardown (as shard_labelled_resources lists it);
      C(queues) -> the shard host's queues found on the message bus (id and name, both its name).
  returned: always
  type: dict
  sample:
    servers: [{id: 5f1c..., name: shard-3f2a9c01b7d4-server}]
    queues: [{id: compute.shard-3f2a9c01b7d4, name: compute.shard-3f2a9c01b7d4}]
deleted:
  description:
    - What was deleted (or in check mode would be), as C(kind:id) strings
      (C(queue:<name>) for a queue).
  returned: always
  type: list
  elements: str
  sample: ["server:5f1c...", "queue:compute.shard-3f2a9c01b7d4"]
stopped:
  description: Whether the service process was running and was stopped.
  returned: always
  type: bool
left:
  description:
    - Kind -> what still carries the label afterwards (empty without I(leak_check));
      C(queues) -> the shard host's queues still on the message bus.
  returned: always
  type: dict
foreign:
  description:
    - Kind -> servers and images of other projects that carry the label (any tenant can
      write one); never deleted, never a leak.
  returned: always
  type: dict
steps:
  description: Each step with its seconds, in the order run.
  returned: always
  type: list
  elements: dict
"""

import signal
import time

from ansible.module_utils import shard_bus
from ansible.module_utils.shard_openstack import ShardModule, endpoint_problem, short_error
from ansible.module_utils.shard_processes import stop_recorded
from ansible.module_utils.shard_resources import (
    KINDS,
    TeardownError,
    delete_kind,
    disable_accounts,
    find,
    split_foreign,
)
from ansible.module_utils.shard_waits import wait_until

SERVICE_PROCESS = "service_process"
QUEUES = "queues"
STEPS = (SERVICE_PROCESS, QUEUES)


class TeardownCloudModule(ShardModule):
    argument_spec = dict(
        label=dict(type="str", required=True),
        order=dict(type="list", elements="str", required=True),
        service=dict(type="dict"),
        wait_for=dict(type="list", elements="str", default=[]),
        leak_check=dict(type="bool", default=True),
        transport_url=dict(type="str", no_log=True),
        queue_services=dict(type="list", elements="str"),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        self.label = self.require_label()
        order = self.params["order"]
        unknown = [k for k in order if k not in KINDS and k not in STEPS]
        if unknown:
            self.fail_json(msg=f"unknown kinds in order: {', '.join(unknown)}")
        if SERVICE_PROCESS in order and not (self.params["service"] or {}).get("pidfile"):
            self.fail_json(msg="order has service_process: service.pidfile is required")
        if QUEUES in order and not self.params["transport_url"]:
            self.fail_json(msg="order has queues: transport_url is required")
        # Only a profile whose order has queues names services that must listen on
        # the bus (a glance-api shard passes its service too, and has none).
        unknown = sorted(set(self.params["queue_services"] or ()) - set(shard_bus.TOPICS))
        if QUEUES in order and unknown:
            known = ", ".join(sorted(shard_bus.TOPICS))
            self.fail_json(msg=f"unknown queue_services: {', '.join(unknown)} (known: {known})")
        self.deadline_for = lambda: time.monotonic() + self.params["timeout"]
        self.steps, self.deleted, self.stopped = [], [], False
        self.found, self.left, self.foreign = {}, {}, {}
        kinds = [k for k in order if k not in STEPS]

        try:
            self._step("wait for the APIs", self._wait_for_apis)
            if {"users", "projects"} & set(kinds):
                self._step("disable the run's accounts", self._disable_accounts)
            self.found = self._step("find", lambda: self._find(kinds))
            for kind in order:
                if kind == SERVICE_PROCESS:
                    self._step(kind, self._stop_service)
                elif kind == QUEUES:
                    self._step(kind, self._delete_queues)
                elif self.found.get(kind):
                    self._step(kind, lambda kind=kind: self._delete(kind))
            if self.params["leak_check"] and not self.check_mode:
                self.left = self._step("leak check", lambda: self._find(kinds))
                if QUEUES in order:
                    self.left[QUEUES] = self._step("queues leak check", self._queues_left)
        except TeardownError as exc:
            # Whatever failed, the service must not outlive the run.
            if SERVICE_PROCESS in order and not self.check_mode:
                self._stop_service()
            self.fail_json(msg=str(exc), **self._report())
        count = sum(len(v) for v in self.left.values())
        if count:
            kinds_left = ", ".join(k for k, v in self.left.items() if v)
            self.fail_json(
                msg=f"leak: {count} resource(s) still carry label {self.label}: {kinds_left}",
                **self._report(),
            )
        self.exit_json(changed=bool(self.deleted) or self.stopped, **self._report())

    def _report(self):
        return dict(
            found=self.found,
            deleted=self.deleted,
            stopped=self.stopped,
            left=self.left,
            foreign=self.foreign,
            steps=self.steps,
        )

    def _step(self, name, action):
        start = time.monotonic()
        try:
            return action()
        finally:
            self.steps.append({"step": name, "seconds": round(time.monotonic() - start, 2)})

    def _wait_for_apis(self):
        services = self.params["wait_for"]
        if not services:
            return
        problems = []

        def answering():
            problems[:] = []
            try:
                self.conn.authorize()
            except Exception as exc:  # keystoneauth errors, wrapped by openstacksdk
                problems.append(f"identity: {short_error(exc)}")
                return False
            for service_type in services:
                problem = endpoint_problem(
                    self.conn, service_type, self.params["interface"], self.params["region_name"]
                )
                if problem:
                    problems.append(problem)
            return not problems

        wait_until(
            answering,
            deadline=self.deadline_for(),
            on_timeout=lambda: (
                f"the cloud's APIs did not answer within {self.params['timeout']}s: "
                + "; ".join(problems)
            ),
            interval=1.0,
            error=TeardownError,
        )

    def _find(self, kinds):
        resources, unsearched = find(self.conn, kinds, lambda label: label == self.label)
        if unsearched:
            # A kind teardown must delete but cannot see: never report it clean.
            details = "; ".join(f"{k}: {why}" for k, why in unsearched.items())
            raise TeardownError(f"cannot search the cloud for label {self.label}: {details}")
        resources, foreign = split_foreign(self.conn, resources)
        for kind, entries in foreign.items():
            self.foreign.setdefault(kind, [])
            known = {e["id"] for e in self.foreign[kind]}
            self.foreign[kind] += [e for e in entries if e["id"] not in known]
        return resources

    def _disable_accounts(self):
        # (Not a deletion: the accounts go in their place in the order.)
        disable_accounts(self.conn, lambda label: label == self.label, self.check_mode)

    def _stop_service(self):
        service = self.params["service"]
        if self.check_mode:
            return
        timeout = int(service.get("stop_timeout") or 30)
        if stop_recorded(service["pidfile"], signal.SIGTERM, timeout):
            self.stopped = True

    def _queues(self):
        # The host is the label (roles/shard/vars): only its own queues are named.
        return shard_bus.host_queues(self.label, self.params["queue_services"])

    def _on_bus(self, action):
        """action(connection), in a connection of its own; a bus problem is a TeardownError."""
        try:
            conn = shard_bus.connect(self.params["transport_url"], self.params["timeout"])
        except shard_bus.BusError as exc:
            raise TeardownError(f"cannot reach the message bus: {exc}") from None
        try:
            return action(conn)
        except shard_bus.BusError as exc:
            raise TeardownError(f"message bus: {exc}") from None
        finally:
            shard_bus.close(conn)

    def _delete_queues(self):
        def delete(conn):
            # delete_queues looks for each queue itself: what it deleted is what was there.
            if self.check_mode:
                names = shard_bus.existing(conn, self._queues())
            else:
                names = shard_bus.delete_queues(conn, self._queues())
            # As the other kinds are listed (the efficiency report reads them).
            self.found[QUEUES] = [{"id": name, "name": name} for name in names]
            return names

        self.deleted += [f"queue:{name}" for name in self._on_bus(delete)]

    def _queues_left(self):
        # Deleted, then asked again: a passive declare answers NOT_FOUND for each.
        names = self._on_bus(lambda conn: shard_bus.existing(conn, self._queues()))
        return [{"id": name, "name": name} for name in names]

    def _delete(self, kind):
        entries = self.found[kind]
        if self.check_mode:
            self.deleted += [f"{kind[:-1]}:{e['id']}" for e in entries]
            return
        self.deleted += delete_kind(self.conn, kind, entries, self.deadline_for())


def main():
    TeardownCloudModule()()


if __name__ == "__main__":
    main()
