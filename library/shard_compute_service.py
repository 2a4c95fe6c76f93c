# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: a compute host joining or leaving the cloud, as nova and placement see it."""

DOCUMENTATION = r"""
---
module: shard_compute_service
short_description: Wait until a compute host is part of the cloud, or remove its records
description:
  - With I(state=present), waits until the cloud has taken in a compute host
    that was just started. That is, its service record reports C(up), its
    resource provider exists in placement and (I(binary=nova-compute)) the
    host is mapped to a cell, so that servers can be scheduled to it; with
    I(aggregate), the host is then added to that aggregate.
  - Host mapping is read with C(GET /os-hosts/{host}) at microversion 2.1,
    the one API that looks the host up by its mapping only. It answers 404
    until the scheduler (or an operator's C(nova-manage cell_v2
    discover_hosts)) mapped the host. The account needs the
    C(os_compute_api:os-hosts:show) policy, admin by default.
  - With I(state=absent), deletes the service records of the host (once the
    caller has stopped the process), which removes its resource provider,
    aggregate memberships and host mapping too; a resource provider left
    without allocations is deleted, one with allocations fails the task.
  - Only looks up the resource provider and the aggregate for
    I(binary=nova-compute); it assumes a driver whose node name is the host
    name (such as C(fake.FakeDriverWithoutFakeNodes) or libvirt).
  - With I(label_step), once the cloud sees the host, the same run (one
    process, one connection) labels the shard, so that only servers of the
    label's flavor land on it, and proves that nothing else can (see
    I(label_step)). The end of I(phase) is recorded when the host is part of
    the cloud, before the label, whose own phase is I(label_step.phase).
options:
  host:
    description: Host name of the compute service (its C([DEFAULT] host) option).
    type: str
    required: true
  binary:
    description: Binary of the service.
    type: str
    default: nova-compute
  state:
    description:
      - C(present) waits until the host is part of the cloud (see above).
      - C(absent) deletes its service records and its resource provider.
    type: str
    choices: [present, absent]
    default: present
  timeout:
    description:
      - Seconds to wait for the service, its resource provider and its host mapping
        (I(state=present)), or for its resource provider to go (I(state=absent)).
      - Also the timeout of each API call.
    type: int
    default: 300
  aggregate:
    description:
      - Name of a host aggregate to add the host to, once it is mapped.
      - Created before the wait, when missing (then I(label) is required), with
        metadata C(shard_label=<label>) and C(trait:CUSTOM_SHARD_<HEX>=required);
        with nova's C([scheduler] enable_isolated_aggregate_filtering) only
        servers whose flavor or image requires that trait can land on its hosts.
        An existing aggregate of that label gets the trait if it lacks it; any
        other existing aggregate is used as it is.
      - The host's resource provider joins the aggregate in placement as soon
        as it appears, before the host is mapped to a cell (nova's own add does
        that only once it is), so that no server can be scheduled to it before
        it is isolated; at the end the module checks that placement has it
        there, which is what the scheduler reads.
      - Only used with I(state=present).
    type: str
  label:
    description: Label of the run (C(shard-<hex>)), recorded on the aggregate it creates.
    type: str
  pidfile:
    description:
      - Pid file of the service's process, as the shard_process module records it.
      - With I(state=present), the wait fails as soon as that process is gone, or
        has logged to I(logfile) that its service failed to start (oslo.service
        then keeps the process running without a service; nova-compute refused
        with C(ServiceTooOld) by the conductor, for one), with the reason and the
        end of the log, instead of waiting for I(timeout).
      - The service counts as up only once this process has reported. A record
        it created counts once updated (its first heartbeat). A record that existed
        (an upgrade's previous release, still C(up) for nova's service_down_time)
        needs two updates from this process (nova saves the new version into it
        before the service runs; the heartbeat after that shows it running). An
        update is this process's when dated after the process started, or when it
        differs from the record as first seen (whatever the clocks say).
    type: path
  logfile:
    description: Log of the service's process (see I(pidfile)).
    type: path
  transport_url:
    description:
      - The cloud's message bus (an oslo.messaging transport URL), the one the
        service was given. With I(pidfile), a service record this process
        created also counts as up as soon as the process consumes from its
        host's RPC queue (C(compute.<host>)), since nova-compute starts listening
        right after it recorded its compute node, and sends its first
        heartbeat 5 s later (nova's C(INITIAL_REPORTING_DELAY)). A record
        that existed still needs the heartbeats above.
      - When the bus does not answer, the module warns and waits for the
        heartbeat.
    type: str
  label_step:
    description:
      - Label the shard once the cloud sees it (I(state=present),
        I(binary=nova-compute); requires I(label)). The rule lives in
        module_utils/shard_compute_label.py. It makes sure that the flavor
        C(<label>-flavor) exists with the size of I(label_step.flavor),
        private to the account's project, with a description
        C(shard-jobs label=<label> created=<UTC time>) (kept on a re-run, so
        the date stays true; a flavor of another size, or public, is created
        again with it; one of that name without the label fails the task and
        is left alone) and the extra spec C(trait:CUSTOM_SHARD_<HEX>=required);
        that the placement trait C(CUSTOM_SHARD_<HEX>) exists; and that the
        host's resource provider has it, keeping its other traits (written
        with the generation read with them; on 409 read again and retried).
        The flavor comes first, so that a janitor finding the trait of a dead
        run can date it by the flavor.
      - With I(label_step.probe_image), it then proves that the cloud isolates
        the shard; a server of a private flavor without the trait
        (C(<label>-probe)), asked for on the shard's host (microversion
        2.74), must not be placed (nova answers C(No valid host)); it and its
        flavor are deleted at once. A cloud whose scheduler does not filter
        isolated aggregates (nova's C([scheduler]
        enable_isolated_aggregate_filtering)) would let any tenant's server
        land on the shard, and the task fails, saying so, with
        C(label_failed=true) in its result. The probe waits up to I(timeout).
      - Omit it where the shard is already labelled (an upgrade's restart),
        so that nothing is probed again and no label phase is recorded.
      - In check mode, what would change, when the provider exists (no probe).
    type: dict
    suboptions:
      flavor:
        description: Size of the flavor C(<label>-flavor).
        type: dict
        required: true
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
        description: Name or id of an image to boot the isolation probe with; no probe when empty.
        type: str
        default: ""
      phase:
        description:
          - The label's phase, with the suboptions of I(phase). Its start is
            recorded before the label, its end once the label and the probe
            succeeded.
        type: dict
        suboptions:
          workspace:
            description: The build's workspace.
            type: path
            required: true
          name:
            description: The phase, C(label).
            type: str
            required: true
          start:
            description: Record the phase's start, before the label.
            type: bool
            default: false
          end:
            description: Record the phase's end, once the label succeeded.
            type: bool
            default: false
notes:
  - Needs admin rights (service records, placement).
  - In check mode nothing is waited for nor changed; the result tells what
    would change from what exists now.
extends_documentation_fragment:
  - shard.openstack
  - shard.phase
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Wait until the cloud sees the shard's compute host
  shard_compute_service:
    cloud: my-cloud
    host: shard-3f2a9c01b7d4
    aggregate: shard-3f2a9c01b7d4
    label: shard-3f2a9c01b7d4
    timeout: 300
    pidfile: /home/zuul/shard/run/nova-compute.pid
    logfile: /home/zuul/shard/logs/nova-compute.log
    transport_url: "{{ cloud_transport_url }}"
  register: compute

- name: Wait until the cloud sees the shard, then make it targetable by its flavor only
  shard_compute_service:
    cloud: my-cloud
    host: shard-3f2a9c01b7d4
    aggregate: shard-3f2a9c01b7d4
    label: shard-3f2a9c01b7d4
    pidfile: /home/zuul/shard/run/nova-compute.pid
    logfile: /home/zuul/shard/logs/nova-compute.log
    phase:
      workspace: /home/zuul/shard
      name: deploy
      end: true
    label_step:
      flavor:
        ram: 128
        vcpus: 1
        disk: 0
      probe_image: cirros
      phase:
        workspace: /home/zuul/shard
        name: label
        start: true
        end: true
  register: labelled

- name: Boot on the shard
  openstack.cloud.server:
    cloud: my-cloud
    name: shard-3f2a9c01b7d4-server
    flavor: "{{ labelled.label.flavor.id }}"
    image: cirros

- name: After stopping nova-compute, remove it from the cloud
  shard_compute_service:
    cloud: my-cloud
    host: shard-3f2a9c01b7d4
    state: absent
"""

RETURN = r"""
service:
  description: The service record (I(state=present)).
  returned: when I(state=present) and the record exists
  type: dict
  contains:
    id:
      description: Service id (a UUID).
      type: str
    host:
      description: Host name.
      type: str
    binary:
      description: Binary.
      type: str
    state:
      description: C(up) or C(down).
      type: str
    status:
      description: C(enabled) or C(disabled).
      type: str
    forced_down:
      description: Whether the service is forced down.
      type: bool
resource_provider:
  description: The resource provider of the host (I(state=present), I(binary=nova-compute)).
  returned: when I(state=present) and the provider exists
  type: dict
  contains:
    uuid:
      description: Provider UUID (the compute node's id).
      type: str
    name:
      description: Provider name (the hypervisor host name).
      type: str
    generation:
      description: Provider generation.
      type: int
aggregate:
  description: The aggregate the host was added to.
  returned: when I(aggregate) is given, I(state=present) and it exists
  type: dict
  contains:
    id:
      description: Aggregate id.
      type: int
    name:
      description: Aggregate name.
      type: str
    hosts:
      description: Hosts of the aggregate.
      type: list
      elements: str
mapped:
  description:
    - Whether the host is mapped to a cell (C(GET /os-hosts/{host}) found it).
    - Always false for other binaries than C(nova-compute), and with I(state=absent).
  returned: always
  type: bool
label:
  description:
    - What I(label_step) made (in check mode, would make) of the shard.
    - Null in check mode when the resource provider does not exist yet.
  returned: when I(label_step) is given and I(state=present)
  type: dict
  contains:
    flavor:
      description:
        - The flavor C(<label>-flavor) after the task (in check mode, as it
          would be; its I(id) is null when it would be created).
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
      type: str
      sample: CUSTOM_SHARD_3F2A9C01B4E5
    provider:
      description: The resource provider with its traits.
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
    probe:
      description: The isolation probe's outcome, or null without I(label_step.probe_image).
      type: dict
      contains:
        refused:
          description: Always true (a probe that was placed fails the task).
          type: bool
        fault:
          description: nova's fault for the refused probe.
          type: str
          sample: "No valid host was found. "
label_failed:
  description: Whether the task failed in I(label_step), once the cloud saw the host.
  returned: when the task failed in I(label_step)
  type: bool
deleted:
  description: What was (or in check mode would be) deleted, as C(kind:id) strings.
  returned: when I(state=absent)
  type: list
  elements: str
  sample: ["service:6b0e5f1c-0d7e-4c4e-9a0e-5b8f3c1d2e3f", "resource_provider:7c1d..."]
"""

import time
from urllib.parse import quote

from ansible.module_utils import shard_bus, shard_phases
from ansible.module_utils.shard_compute_label import ComputeLabel, LabelError
from ansible.module_utils.shard_labels import LABEL_METADATA_KEY, aggregate_metadata
from ansible.module_utils.shard_openstack import (
    ShardModule,
    api_error,
    find_resource_provider,
    parse_timestamp,
    placement,
    provider_allocations,
    retry_on_conflict,
)
from ansible.module_utils.shard_processes import (
    log_tail,
    raw_record,
    read_record,
    start_failure,
    started_at,
)
from ansible.module_utils.shard_resources import TeardownError, delete_compute_service
from ansible.module_utils.shard_waits import WaitTimeout, wait_until

try:
    from openstack import exceptions as sdk_exceptions
except ImportError:  # pragma: no cover - reported by ShardModule.connect
    sdk_exceptions = None

# GET /os-hosts/{host} exists up to 2.42.
OS_HOSTS_MICROVERSION = "2.1"
# A provider's aggregates with its generation (PUT needs it from 1.19 on).
PLACEMENT_AGGREGATES_MICROVERSION = "1.19"


class ComputeServiceModule(ShardModule):
    argument_spec = dict(
        host=dict(type="str", required=True),
        binary=dict(type="str", default="nova-compute"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        timeout=dict(type="int", default=300),
        aggregate=dict(type="str"),
        label=dict(type="str"),
        pidfile=dict(type="path"),
        logfile=dict(type="path"),
        transport_url=dict(type="str", no_log=True),
        label_step=dict(
            type="dict",
            options=dict(
                flavor=dict(
                    type="dict",
                    required=True,
                    options=dict(
                        ram=dict(type="int", required=True),
                        vcpus=dict(type="int", required=True),
                        disk=dict(type="int", default=0),
                    ),
                ),
                probe_image=dict(type="str", default=""),
                phase=shard_phases.PHASE_OPTION,
            ),
        ),
    )
    module_kwargs = dict(
        supports_check_mode=True,
        required_together=[("pidfile", "logfile")],
        required_by={"label_step": ("label",)},
    )

    def run(self):
        self.require_label()
        self.is_compute = self.params["binary"] == "nova-compute"
        for option in ("aggregate", "label_step"):
            if self.params[option] and not self.is_compute:
                self.fail_json(msg=f"{option} only applies to binary nova-compute")
        self.deadline = time.monotonic() + self.params["timeout"]
        self.process = None
        # (In check mode nothing was started: there is no process to watch.)
        if self.params["pidfile"] and self.params["state"] == "present" and not self.check_mode:
            self.process = read_record(self.params["pidfile"])
            if self.process is None:
                # A record of its start whose process is gone: it exited already (a
                # change that dies on import, before this step looks); none: never started.
                started = raw_record(self.params["pidfile"]) is not None
                self._fail_process("exited after it was started" if started else "is not running")
            self.process_started = started_at(self.process)
        # What each service record looked like when first seen (see _reported),
        # and whether the service list was looked at yet.
        self.first_seen = {}
        self.looked = False
        # The bus connection of _listening, and why it is not used (BusError).
        self.bus = None
        self.bus_problem = None
        if self.params["state"] == "present":
            self.present()
        else:
            self.absent()

    # -- lookups ---------------------------------------------------------

    def _services(self):
        host, binary = self.params["host"], self.params["binary"]
        return [
            s
            for s in self.conn.compute.services(host=host, binary=binary)
            if s.host == host and s.binary == binary
        ]

    def _find_aggregate(self, name):
        for aggregate in self.conn.compute.aggregates():
            if aggregate.name == name:
                return aggregate
        return None

    def fail_json(self, **kwargs):
        self._close_bus()
        super().fail_json(**kwargs)

    def _fail_process(self, what):
        name, logfile = self.params["binary"], self.params["logfile"]
        self.fail_json(
            msg=f"{name} {what}, before the cloud saw it; the end of its log is in log_tail",
            log_tail=log_tail(logfile, 20),
        )

    def _check_process(self):
        """Fail at once when the service's process is gone or its service failed to start."""
        if self.process is None:
            return
        failure = start_failure(self.params["logfile"], self.process["pid"])
        if failure:
            self._fail_process(f"failed to start its service: {failure}")
        if read_record(self.params["pidfile"]) is None:
            self._fail_process("exited after it was started")

    def _reported(self, service):
        """Whether the watched process has reported through this record (any, without one).

        A record this process created (absent at the first look, or never
        updated) counts once it is updated (its first heartbeat), or, with
        I(transport_url), once the process consumes its host's RPC queue. A record that
        existed (an upgrade's previous release, still "up" for a minute) needs
        two updates from this process: nova saves the new version into it as
        the service starts, before it listens on the bus, and only the
        heartbeat after that shows a running service. An update is this
        process's when it is dated after the process started, or, whatever the
        clocks say, when it differs from the record as first seen.
        """
        if self.process is None:
            return True
        updated = parse_timestamp(service.updated_at)
        first = self.first_seen.get(service.id)
        if first is None:
            first = self.first_seen[service.id] = dict(
                updated=updated, existed=self.looked is False and updated is not None, ours=set()
            )
        if updated is not None:
            started = self.process_started
            # (Timestamps are to the second, the start time exact to one.)
            if updated != first["updated"] or (started is not None and updated >= int(started) - 1):
                first["ours"].add(updated)
            if len(first["ours"]) >= (2 if first["existed"] else 1):
                return True
        # A record this process created, before its first heartbeat: it runs
        # once it listens on the bus. (An existing record's host queue may
        # still have the previous process's consumer: heartbeats only.)
        return not first["existed"] and self._listening()

    def _listening(self):
        """Whether the service's process consumes its host's RPC queue (I(transport_url))."""
        url = self.params["transport_url"]
        if not url or self.bus_problem:
            return False
        try:
            queue = shard_bus.server_queue(self.params["binary"], self.params["host"])
            if self.bus is None:
                self.bus = shard_bus.connect(url, min(10, self.params["timeout"]))
            return shard_bus.consumers(self.bus, queue) > 0
        except Exception as exc:  # noqa: BLE001 - any failure: the heartbeat still tells
            # (BusError and ValueError say what failed without the URL; for the
            # rest, such as a dropped connection or no py-amqp, the type only.)
            known = isinstance(exc, (shard_bus.BusError, ValueError))
            self.bus_problem = str(exc) if known else type(exc).__name__
            self._close_bus()
            self.ansible.warn(
                f"not watching the message bus ({self.bus_problem}): waiting for a heartbeat"
            )
            return False

    def _close_bus(self):
        if getattr(self, "bus", None) is not None:
            shard_bus.close(self.bus)
            self.bus = None

    def _wait(self, check, on_timeout):
        """check() until it returns something truthy; at the deadline fail with on_timeout().

        Also fails as soon as the service's process (pidfile) is gone or failed.
        """

        def probe():
            self._check_process()
            return check()

        try:
            return wait_until(probe, deadline=self.deadline, on_timeout=on_timeout)
        except WaitTimeout as exc:
            self.fail_json(msg=str(exc))

    # -- present ---------------------------------------------------------

    def present(self):
        host, timeout = self.params["host"], self.params["timeout"]
        name = self.params["aggregate"]
        result = dict(changed=False, mapped=False)

        if self.check_mode:
            services = self._services()
            if services:
                result["service"] = _service(services[0])
            if self.is_compute:
                provider = find_resource_provider(self.conn, host)
                if provider:
                    result["resource_provider"] = _provider(provider)
                result["mapped"] = self._host_mapped()
            if name:
                aggregate = self._find_aggregate(name)
                if aggregate is None:
                    self._check_can_create(name)
                else:
                    result["aggregate"] = _aggregate(aggregate)
                result["changed"] = aggregate is None or host not in (aggregate.hosts or [])
            if self.params["label_step"]:
                # (Before the host has a provider, the whole label would be created.)
                label, changed = self._label() if "resource_provider" in result else (None, True)
                result.update(label=label, changed=result["changed"] or changed)
            self.exit_json(**result)

        # The shard's aggregate first, isolating (module_utils/shard_labels.py
        # aggregate_metadata): its provider joins it in placement as soon as it
        # appears, before the host is mapped and so before any server can be
        # scheduled to it.
        aggregate = None
        if name:
            aggregate = self._find_aggregate(name)
            if aggregate is None:
                self._check_can_create(name)
                aggregate = self._create_aggregate(name)
                result["changed"] = True
            elif self._isolate(aggregate):
                result["changed"] = True

        seen, joined = {}, False

        def service_up():
            services = self._services()
            seen["service"] = services[0] if services else None
            # (Every record is looked at, so that the first look is what it was.)
            reported = {s.id: self._reported(s) for s in services}
            up = [s for s in services if s.state == "up" and reported[s.id]]
            self.looked = True
            return up[0] if up else None

        def service_timeout():
            last = seen.get("service")
            now = f"state {last.state}, status {last.status}" if last else "no service record"
            if last and last.state == "up" and not self._reported(last):
                now += f", last update {last.updated_at} not yet a heartbeat of this process"
            return (
                f"compute service for host {host} did not come up within {timeout}s ({now}); "
                "is the process running, and does it reach the message queue?"
            )

        service = self._wait(service_up, service_timeout)
        self._close_bus()
        result["service"] = _service(service)

        if self.is_compute:
            provider = self._wait(
                lambda: find_resource_provider(self.conn, host),
                lambda: (
                    f"resource provider {host} of compute service {host} did not appear in "
                    f"placement within {timeout}s; does the node name differ from the host name?"
                ),
            )
            result["resource_provider"] = _provider(provider)
            joined = aggregate is not None and self._join_in_placement(provider, aggregate)
            if joined:
                result["changed"] = True
            self._wait(
                self._host_mapped,
                lambda: (
                    f"host {host} was not mapped to a cell within {timeout}s "
                    f"(GET /os-hosts/{host} still answers 404); does nova-scheduler discover "
                    "hosts (discover_hosts_in_cells_interval), or does the operator run "
                    "nova-manage cell_v2 discover_hosts?"
                ),
            )
            result["mapped"] = True

        if aggregate is not None:
            if host not in (aggregate.hosts or []):
                # (nova answers the add at microversion 2.1: keep the uuid.)
                uuid = aggregate.uuid
                aggregate = self._add_host(aggregate)
                aggregate.uuid = aggregate.uuid or uuid
                result["changed"] = True
            result["aggregate"] = _aggregate(aggregate)
            if self.is_compute:
                # Servers found on a provider this run just isolated landed before
                # (an upgraded shard rejoining keeps its own: not checked then).
                self._check_in_placement(provider, aggregate, just_joined=joined)

        if self.params["label_step"]:
            # The cloud sees the shard: deploy ends here, the label starts.
            self.end_phase()
            label, changed = self._label()
            result.update(label=label, changed=result["changed"] or changed)
        self.exit_json(**result)

    def _label(self):
        """Run the label step (module_utils/shard_compute_label.py) between the start and the
        end of its own phase: (what it made, whether that changed anything)."""
        step = self.params["label_step"]
        shard_phases.option_event(step["phase"], "start", self.check_mode)
        try:
            label = ComputeLabel(self.conn, self.params["label"], self.check_mode).present(
                self.params["host"],
                step["flavor"],
                probe_image=step["probe_image"],
                timeout=self.params["timeout"],
            )
        except LabelError as exc:
            self.fail_json(msg=str(exc), label_failed=True)
        except sdk_exceptions.SDKException as exc:
            self.fail_json(msg=f"labelling the shard failed: {api_error(exc)}", label_failed=True)
        except Exception as exc:  # keystoneauth / requests errors: the label's, not the log's
            self.fail_json(msg=f"labelling the shard failed: {api_error(exc)}", label_failed=True)
        shard_phases.option_event(step["phase"], "end", self.check_mode)
        changed = label.pop("changed")
        return label, changed

    def _host_mapped(self):
        """Whether nova finds the host through its host mapping (GET /os-hosts/{host}, 2.1)."""
        host = self.params["host"]
        response = self.conn.compute.get(
            "/os-hosts/" + quote(host, safe=""), microversion=OS_HOSTS_MICROVERSION
        )
        if response.status_code == 404:
            return False
        if response.status_code == 403:
            self.fail_json(
                msg=f"cannot tell whether host {host} is mapped to a cell: GET /os-hosts/{host} "
                "is forbidden; the account needs the os_compute_api:os-hosts:show policy"
            )
        sdk_exceptions.raise_from_response(response)
        return True

    def _check_can_create(self, name):
        if not self.params["label"]:
            self.fail_json(msg=f"aggregate {name} does not exist; creating it requires label")

    def _create_aggregate(self, name):
        try:
            aggregate = self.conn.compute.create_aggregate(name=name)
        except sdk_exceptions.ConflictException:
            # Created meanwhile by someone else: use it as it is.
            aggregate = self._find_aggregate(name)
            if aggregate is None:
                raise
            return aggregate
        self.conn.compute.set_aggregate_metadata(
            aggregate, aggregate_metadata(self.params["label"])
        )
        # Read back: the metadata action answers at microversion 2.1, without
        # the uuid that placement knows the aggregate by.
        return self.conn.compute.get_aggregate(aggregate.id)

    def _isolate(self, aggregate):
        """Add the isolating trait to an aggregate of this label that lacks it (an older run's)."""
        label = self.params["label"]
        wanted = aggregate_metadata(label) if label else {}
        metadata = dict(aggregate.metadata or {})
        if metadata.get(LABEL_METADATA_KEY) != label or wanted.items() <= metadata.items():
            return False
        self.conn.compute.set_aggregate_metadata(aggregate, wanted)
        aggregate.metadata = {**metadata, **wanted}
        return True

    def _placement_aggregates(self, provider):
        return placement(
            self.conn,
            "get",
            f"/resource_providers/{provider['uuid']}/aggregates",
            microversion=PLACEMENT_AGGREGATES_MICROVERSION,
        )

    def _join_in_placement(self, provider, aggregate):
        """Put the provider in the aggregate in placement (nova's add_host does it only once
        the host is mapped). Whether that changed anything."""
        if not aggregate.uuid:
            self.fail_json(
                msg=f"aggregate {aggregate.name} has no uuid: the cloud's compute API microversion "
                "is pinned below 2.41 (compute_api_version in its clouds.yaml entry), so the "
                "shard cannot be isolated in placement"
            )

        def join():
            found = self._placement_aggregates(provider)
            if aggregate.uuid in found["aggregates"]:
                return False
            placement(
                self.conn,
                "put",
                f"/resource_providers/{provider['uuid']}/aggregates",
                body={
                    "aggregates": found["aggregates"] + [aggregate.uuid],
                    "resource_provider_generation": found["resource_provider_generation"],
                },
                microversion=PLACEMENT_AGGREGATES_MICROVERSION,
            )
            return True

        return retry_on_conflict(join)

    def _check_in_placement(self, provider, aggregate, just_joined):
        """The scheduler isolates the provider only if placement has it in the aggregate."""
        if (
            aggregate.uuid
            and aggregate.uuid not in self._placement_aggregates(provider)["aggregates"]
        ):
            self.fail_json(
                msg=f"resource provider {provider['name']} is not in aggregate {aggregate.name} "
                f"({aggregate.uuid}) in placement, so the scheduler cannot isolate it"
            )
        # A scheduler that maps new hosts on its own may have mapped it before
        # the join: nothing may have landed there meanwhile.
        taken = sorted(provider_allocations(self.conn, provider["uuid"])) if just_joined else []
        if taken:
            self.fail_json(
                msg=f"servers landed on the shard {provider['name']} before it was isolated "
                f"(consumers {', '.join(taken)}): the cloud's scheduler mapped the host first"
            )

    def _add_host(self, aggregate):
        host = self.params["host"]
        try:
            return self.conn.compute.add_host_to_aggregate(aggregate, host)
        except sdk_exceptions.ConflictException:
            # Already a member (added meanwhile).
            current = self.conn.compute.get_aggregate(aggregate.id)
            if host in (current.hosts or []):
                return current
            raise
        except (sdk_exceptions.NotFoundException, sdk_exceptions.BadRequestException) as exc:
            self.fail_json(
                msg=f"nova refused to add host {host} to aggregate {aggregate.name}: "
                f"{api_error(exc)}"
            )

    # -- absent ----------------------------------------------------------

    def absent(self):
        try:
            deleted = delete_compute_service(
                self.conn,
                self.params["host"],
                self.params["binary"],
                self.deadline,
                check_mode=self.check_mode,
            )
        except TeardownError as exc:
            self.fail_json(msg=str(exc))
        self.exit_json(changed=bool(deleted), deleted=deleted, mapped=False)


def _service(service):
    return dict(
        id=service.id,
        host=service.host,
        binary=service.binary,
        state=service.state,
        status=service.status,
        forced_down=bool(service.is_forced_down),
    )


def _provider(provider):
    return dict(uuid=provider["uuid"], name=provider["name"], generation=provider["generation"])


def _aggregate(aggregate):
    return dict(id=aggregate.id, name=aggregate.name, hosts=list(aggregate.hosts or []))


def main():
    ComputeServiceModule()()


if __name__ == "__main__":
    main()
