# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: a labelled server, booted (optionally on a given compute host), driven
through actions, deleted; or all three in one run."""

DOCUMENTATION = r"""
---
module: shard_server
short_description: Boot, drive or delete a server that carries a run's label
description:
  - Boots a server with the run's label in its metadata (C(shard_label)) and
    as a server tag, optionally on a given compute host, and waits until it is
    C(ACTIVE); a server that goes to C(ERROR) fails the task with nova's fault
    message.
  - A server is this task's server only when it has I(name) and carries
    I(label); with I(state=present) such a server is returned as it is, with
    I(state=absent) every such server is deleted. A server of the same name
    without the label is never touched.
  - Once the server is C(ACTIVE), checks that it is on I(expect_host) and
    drives I(actions) in order, each waited for until the server has the
    status the action leads to and no task state.
  - I(state=exercised) does all of it in one run, on one connection; present
    (boot unless the server exists), the host check, the actions, then absent
    (delete and wait until gone). It is what a job's exercise is, so it is
    never a no-op.
  - Waits poll every half second (module_utils/shard_waits.py).
  - Works in the project of the connection.
options:
  name:
    description: Server name.
    type: str
    required: true
  label:
    description: Label of the run (C(shard-<hex>)).
    type: str
    required: true
  state:
    description:
      - C(present) boots the server unless it exists, then drives I(actions).
      - C(absent) deletes it.
      - C(exercised) is C(present), then C(absent). When a step fails (the
        boot, the host check, an action) the task fails at once and the server
        is B(left in place) for the logs to show it; the job's teardown deletes
        every server that carries the label.
    type: str
    choices: [present, absent, exercised]
    default: present
  flavor:
    description: Flavor name or id. Required to boot.
    type: str
  image:
    description: Image name or id. Required to boot.
    type: str
  host:
    description:
      - Compute host to boot the server on (compute API microversion 2.74,
        admin only). The scheduler still checks that the host fits.
    type: str
  expect_host:
    description:
      - Compute host the server must be on (C(OS-EXT-SRV-ATTR:host), admin
        only), checked once it is C(ACTIVE) and again after the actions; the
        task fails otherwise, naming both hosts and the server.
      - Not with I(state=absent).
    type: str
  actions:
    description:
      - Actions to drive, in order, once the server is C(ACTIVE). Each waits
        until the server is C(SHUTOFF) (after C(stop)) or C(ACTIVE) (after
        C(start), C(reboot_soft), C(reboot_hard)) with no task state; nova sets
        the task state before it answers, so a reboot is never taken for done
        before it happened.
      - Actions are always driven (a task with actions always reports a
        change); an action nova refuses (a C(start) of a running server, say) fails
        the task with nova's message.
      - Not with I(state=absent).
    type: list
    elements: str
    choices: [stop, start, reboot_soft, reboot_hard]
    default: []
  networks:
    description:
      - C(none) for no network, C(auto) for the one nova allocates, or a list
        of network ids.
    type: raw
    default: none
  metadata:
    description: Server metadata; C(shard_label=<label>) is always added.
    type: dict
    default: {}
  tags:
    description: Server tags; the label is always added (microversion 2.52).
    type: list
    elements: str
    default: []
  wait:
    description:
      - Wait until the server is C(ACTIVE) (or, with I(state=absent), gone).
      - I(actions), I(expect_host) and I(state=exercised) need it.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each step (the boot, each action, each deletion);
        also the timeout of each API call.
    type: int
    default: 300
notes:
  - Supports check mode; I(state=exercised) then reports a change and does
    nothing.
extends_documentation_fragment:
  - shard.openstack
  - shard.phase
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Boot a server on the shard
  shard_server:
    cloud: my-cloud
    name: shard-3f2a9c01b7d4-server
    label: shard-3f2a9c01b7d4
    flavor: shard-3f2a9c01b7d4-flavor
    image: cirros
    host: shard-3f2a9c01b7d4
    networks: none
  register: booted

- name: Stop and start it, checking it is still on the shard
  shard_server:
    cloud: my-cloud
    name: shard-3f2a9c01b7d4-server
    label: shard-3f2a9c01b7d4
    expect_host: shard-3f2a9c01b7d4
    actions: [stop, start]

- name: Delete it
  shard_server:
    cloud: my-cloud
    name: shard-3f2a9c01b7d4-server
    label: shard-3f2a9c01b7d4
    state: absent

- name: The whole exercise in one task - boot, landing check, life cycle, delete
  shard_server:
    cloud: my-cloud
    name: shard-3f2a9c01b7d4-server
    label: shard-3f2a9c01b7d4
    flavor: shard-3f2a9c01b7d4-flavor
    image: cirros
    networks: none
    expect_host: shard-3f2a9c01b7d4
    actions: [stop, start, reboot_soft]
    state: exercised
  register: exercised
"""

RETURN = r"""
server:
  description:
    - The server (none when I(state=absent), or in check mode before it exists).
    - With I(state=exercised), as it was after the last action, before its deletion.
  returned: always
  type: dict
  contains:
    id:
      description: Server id.
      type: str
    name:
      description: Server name.
      type: str
    status:
      description: Server status (C(ACTIVE) once booted and waited for).
      type: str
    compute_host:
      description: Compute host of the server (C(OS-EXT-SRV-ATTR:host), admin only).
      type: str
    hypervisor_hostname:
      description: Hypervisor host name (C(OS-EXT-SRV-ATTR:hypervisor_hostname), admin only).
      type: str
    metadata:
      description: Server metadata.
      type: dict
    tags:
      description: Server tags.
      type: list
      elements: str
    flavor:
      description: The flavor as embedded in the server (name, vcpus, ram, disk, extra_specs).
      type: dict
    created:
      description: Creation time, epoch seconds.
      type: int
deleted:
  description: Ids of the servers deleted (or in check mode to delete).
  returned: when I(state=absent) or I(state=exercised)
  type: list
  elements: str
ignored:
  description: Ids of servers with I(name) that do not carry I(label), left alone.
  returned: always
  type: list
  elements: str
steps:
  description:
    - What this run did and waited for, in order, with the seconds each took
      (the call and its wait) - C(boot) when it booted the server, one entry
      per action, C(delete) when it deleted. Empty in check mode.
  returned: always
  type: list
  elements: dict
  contains:
    action:
      description: C(boot), an action of I(actions), or C(delete).
      type: str
    seconds:
      description: Wall seconds of the step, to the hundredth.
      type: float
  sample:
    - {action: boot, seconds: 2.51}
    - {action: stop, seconds: 1.0}
    - {action: start, seconds: 0.5}
    - {action: reboot_soft, seconds: 1.0}
    - {action: delete, seconds: 1.5}
"""

import re
import time

from ansible.module_utils.shard_openstack import (
    LABEL_METADATA_KEY,
    ShardModule,
    api_error,
    parse_timestamp,
    server_has_label,
)
from ansible.module_utils.shard_resources import TeardownError, wait_server_gone
from ansible.module_utils.shard_waits import POLL_INTERVAL, WaitTimeout, wait_until

try:
    from openstack import exceptions as sdk_exceptions
    from openstack import utils as sdk_utils
except ImportError:  # pragma: no cover - reported by ShardModule.connect
    sdk_exceptions = sdk_utils = None

HOST_MICROVERSION = "2.74"
TAGS_MICROVERSION = "2.52"

# action: (proxy method, its extra arguments, the status the server then settles in)
ACTIONS = {
    "stop": ("stop_server", (), "SHUTOFF"),
    "start": ("start_server", (), "ACTIVE"),
    "reboot_soft": ("reboot_server", ("SOFT",), "ACTIVE"),
    "reboot_hard": ("reboot_server", ("HARD",), "ACTIVE"),
}


class ServerModule(ShardModule):
    argument_spec = dict(
        name=dict(type="str", required=True),
        label=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent", "exercised"]),
        flavor=dict(type="str"),
        image=dict(type="str"),
        host=dict(type="str"),
        expect_host=dict(type="str"),
        actions=dict(type="list", elements="str", choices=list(ACTIONS), default=[]),
        networks=dict(type="raw", default="none"),
        metadata=dict(type="dict", default={}),
        tags=dict(type="list", elements="str", default=[]),
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=300),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        self.label = self.require_label()
        self._check_options()
        servers, ignored = self._find()
        self.results.update(ignored=[s.id for s in ignored], steps=[])
        if self.params["state"] == "absent":
            self.absent(servers)
        elif self.check_mode:
            self.predict(servers)
        else:
            self.converge(servers)

    def _check_options(self):
        p = self.params
        driven = [o for o in ("actions", "expect_host") if p[o]]
        if p["state"] == "absent" and driven:
            self.fail_json(msg=f"{' and '.join(driven)} need state present or exercised")
        if not p["wait"] and (driven or p["state"] == "exercised"):
            needs = driven + (["state=exercised"] if p["state"] == "exercised" else [])
            self.fail_json(msg=f"{' and '.join(needs)} need wait=true")

    def _find(self):
        """(servers with the name carrying the label, servers with the name without it)."""
        name = self.params["name"]
        # nova matches name as a regular expression: anchor it, then compare exactly.
        found = [
            s for s in self.conn.compute.servers(name=f"^{re.escape(name)}$") if s.name == name
        ]
        ours = [s for s in found if server_has_label(_as_dict(s), self.label)]
        return ours, [s for s in found if s.id not in {o.id for o in ours}]

    # -- present and exercised -------------------------------------------

    def converge(self, servers):
        """present: the server booted or found, on its host, driven; exercised: then deleted."""
        actions = self.params["actions"]
        server, booted = self._ensure(servers)
        self._check_host(server)
        for action in actions:
            server = self._step(action, self._act, server, action)
        if actions:
            self._check_host(server)
        result = dict(changed=booted or bool(actions), server=_server(server))
        if self.params["state"] == "exercised":
            doomed = [server] + [s for s in servers if s.id != server.id]
            self._step("delete", self._delete, doomed)
            result.update(changed=True, deleted=_ids(doomed))
        self.exit_json(**result)

    def predict(self, servers):
        """Check mode: what converge would change, with nothing done."""
        server = servers[0] if servers else None
        if server is not None and server.status == "ERROR":
            self.fail_json(msg=self._error_message(server), server=_server(server))
        if server is not None and server.status == "ACTIVE":
            self._check_host(server)
        exercised = self.params["state"] == "exercised"
        result = dict(
            changed=server is None or bool(self.params["actions"]) or exercised,
            server=_server(server) if server is not None else None,
        )
        if exercised:
            result["deleted"] = _ids(servers)
        self.exit_json(**result)

    def _ensure(self, servers):
        """(the server, ACTIVE when waited for; whether this run booted it)."""
        if servers:
            server = servers[0]
            if server.status == "ERROR":
                self.fail_json(msg=self._error_message(server), server=_server(server))
            if self.params["wait"] and server.status != "ACTIVE":
                server = self._wait_active(server)
            return server, False
        kwargs = self._boot_args()
        if not self.params["wait"]:
            return self.conn.compute.get_server(self._boot(kwargs).id), True
        return self._step("boot", lambda: self._wait_active(self._boot(kwargs))), True

    def _boot(self, kwargs):
        try:
            return self.conn.compute.create_server(**kwargs)
        except (sdk_exceptions.BadRequestException, sdk_exceptions.ForbiddenException) as exc:
            self.fail_json(
                msg=f"nova refused to boot server {self.params['name']}: {api_error(exc)}"
            )

    def _boot_args(self):
        p = self.params
        for option in ("flavor", "image"):
            if not p[option]:
                self.fail_json(msg=f"{option} is required to boot server {p['name']}")
        compute = self.conn.compute
        if not sdk_utils.supports_microversion(compute, TAGS_MICROVERSION):
            self.fail_json(
                msg=f"the compute API does not support microversion {TAGS_MICROVERSION} "
                "(server tags at boot)"
            )
        if p["host"] and not sdk_utils.supports_microversion(compute, HOST_MICROVERSION):
            self.fail_json(
                msg=f"the compute API does not support microversion {HOST_MICROVERSION} "
                "(host at boot)"
            )
        flavor = compute.find_flavor(p["flavor"], ignore_missing=True)
        if flavor is None:
            self.fail_json(msg=f"flavor {p['flavor']} not found")
        image = self.conn.image.find_image(p["image"], ignore_missing=True)
        if image is None:
            self.fail_json(msg=f"image {p['image']} not found")

        metadata = {str(k): str(v) for k, v in p["metadata"].items()}
        metadata[LABEL_METADATA_KEY] = self.label
        tags = list(dict.fromkeys(list(p["tags"]) + [self.label]))
        kwargs = dict(
            name=p["name"],
            flavor_id=flavor.id,
            image_id=image.id,
            networks=self._networks(),
            metadata=metadata,
            tags=tags,
        )
        if p["host"]:
            kwargs["host"] = p["host"]
        return kwargs

    def _networks(self):
        networks = self.params["networks"]
        if isinstance(networks, str) and networks in ("none", "auto"):
            return networks
        if isinstance(networks, list) and all(isinstance(n, str) and n for n in networks):
            return [{"uuid": n} for n in networks]
        self.fail_json(
            msg=f"networks must be 'none', 'auto' or a list of network ids, not {networks!r}"
        )

    def _check_host(self, server):
        expected = self.params["expect_host"]
        if expected and server.compute_host != expected:
            self.fail_json(
                msg=f"server {server.name} ({server.id}) is on host {server.compute_host}, "
                f"not on {expected}",
                server=_server(server),
            )

    def _act(self, server, action):
        """Drive one action and wait until the server has settled after it."""
        method, args, settles_in = ACTIONS[action]
        try:
            getattr(self.conn.compute, method)(server.id, *args)
        except (sdk_exceptions.ConflictException, sdk_exceptions.BadRequestException) as exc:
            self.fail_json(
                msg=f"nova refused to {action} server {server.name} ({server.id}): "
                f"{api_error(exc)}",
                server=_server(server),
            )
        # nova sets the task state (and a reboot's REBOOT/HARD_REBOOT status) before it
        # answers 202: "no task state" is never the state from before the action.
        return self._wait_for(
            server,
            lambda s: s.status == settles_in and not s.task_state,
            f"become {settles_in} after {action}",
        )

    def _wait_active(self, server):
        return self._wait_for(server, lambda s: s.status == "ACTIVE", "become ACTIVE")

    def _wait_for(self, server, settled, goal):
        """Poll the server until settled(server); fail on ERROR, or after timeout seconds.

        Not conn.compute.wait_for_server: it compares the status only (an action also
        needs no task state), returns at once when the server passed in already has
        the status (the one from before a reboot is ACTIVE), and fails on ERROR
        without nova's fault. So the shared wait, a look now and then every
        POLL_INTERVAL, as sdk's would at that interval.
        """
        last = server

        def looked():
            nonlocal last
            last = self.conn.compute.get_server(server.id)
            if last.status == "ERROR":
                self.fail_json(msg=self._error_message(last), server=_server(last))
            return last if settled(last) else None

        try:
            return wait_until(looked, self.params["timeout"], interval=POLL_INTERVAL)
        except WaitTimeout:
            self.fail_json(
                msg=f"server {last.name} ({last.id}) did not {goal} within "
                f"{self.params['timeout']}s (status {last.status}, "
                f"task state {last.task_state})",
                server=_server(last),
            )

    @staticmethod
    def _error_message(server):
        fault = server.fault or {}
        message = " ".join(str(fault.get("message") or "no fault recorded").split())
        return f"server {server.name} ({server.id}) went to ERROR: {message}"

    # -- absent ----------------------------------------------------------

    def absent(self, servers):
        if servers and not self.check_mode:
            self._step("delete", self._delete, servers)
        self.exit_json(changed=bool(servers), deleted=_ids(servers), server=None)

    def _delete(self, servers):
        for server in servers:
            self.conn.compute.delete_server(server, ignore_missing=True)
        if self.params["wait"]:
            for server in servers:
                self._wait_gone(server)

    def _wait_gone(self, server):
        try:
            wait_server_gone(
                self.conn, server.id, server.name, time.monotonic() + self.params["timeout"]
            )
        except TeardownError as exc:
            self.fail_json(msg=str(exc))

    # -- waiting and timing ----------------------------------------------

    def _step(self, action, func, *args):
        """func(*args), its wall seconds recorded in the result's steps as action."""
        start = time.monotonic()
        value = func(*args)
        self.results["steps"].append(
            dict(action=action, seconds=round(time.monotonic() - start, 2))
        )
        return value


def _ids(servers):
    return list(dict.fromkeys(s.id for s in servers))


def _as_dict(server):
    return {"metadata": server.metadata or {}, "tags": server.tags or []}


def _server(server):
    flavor = server.flavor or {}
    if hasattr(flavor, "to_dict"):
        flavor = flavor.to_dict(computed=False)
    return dict(
        id=server.id,
        name=server.name,
        status=server.status,
        compute_host=server.compute_host,
        hypervisor_hostname=server.hypervisor_hostname,
        metadata=dict(server.metadata or {}),
        tags=list(server.tags or []),
        flavor=dict(
            name=flavor.get("original_name") or flavor.get("name"),
            vcpus=flavor.get("vcpus"),
            ram=flavor.get("ram"),
            disk=flavor.get("disk"),
            extra_specs=dict(flavor.get("extra_specs") or {}),
        ),
        created=parse_timestamp(server.created_at),
    )


def main():
    ServerModule()()


if __name__ == "__main__":
    main()
