# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: a labelled server, booted (optionally on a given compute host) or deleted."""

DOCUMENTATION = r"""
---
module: shard_server
short_description: Boot or delete a server that carries a run's label
description:
  - Boots a server with the run's label in its metadata (C(shard_label)) and
    as a server tag, optionally on a given compute host, and waits until it is
    C(ACTIVE); a server that goes to C(ERROR) fails the task with nova's fault
    message.
  - A server is this task's server only when it has I(name) and carries
    I(label); with I(state=present) such a server is returned as it is, with
    I(state=absent) every such server is deleted. A server of the same name
    without the label is never touched.
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
      - C(present) boots the server unless it exists.
      - C(absent) deletes it.
    type: str
    choices: [present, absent]
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
    description: Wait until the server is C(ACTIVE) (or, with I(state=absent), gone).
    type: bool
    default: true
  timeout:
    description: Seconds to wait; also the timeout of each API call.
    type: int
    default: 300
notes:
  - Connection options (I(cloud), I(region_name), I(interface)) as in the other
    shard-jobs modules; I(cloud) names a clouds.yaml entry or is a dict of one.
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Boot a server on the shard
  shard_server:
    cloud: my-cloud
    name: shard-3f2a9c01-server
    label: shard-3f2a9c01
    flavor: shard-3f2a9c01-flavor
    image: cirros
    host: shard-3f2a9c01
    networks: none
  register: booted

- name: Delete it
  shard_server:
    cloud: my-cloud
    name: shard-3f2a9c01-server
    label: shard-3f2a9c01
    state: absent
"""

RETURN = r"""
server:
  description: The server (none when I(state=absent), or in check mode before it exists).
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
  returned: when I(state=absent)
  type: list
  elements: str
ignored:
  description: Ids of servers with I(name) that do not carry I(label), left alone.
  returned: always
  type: list
  elements: str
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

try:
    from openstack import exceptions as sdk_exceptions
    from openstack import utils as sdk_utils
except ImportError:  # pragma: no cover - reported by ShardModule.connect
    sdk_exceptions = sdk_utils = None

POLL_INTERVAL = 2.0
HOST_MICROVERSION = "2.74"
TAGS_MICROVERSION = "2.52"


class ServerModule(ShardModule):
    argument_spec = dict(
        name=dict(type="str", required=True),
        label=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        flavor=dict(type="str"),
        image=dict(type="str"),
        host=dict(type="str"),
        networks=dict(type="raw", default="none"),
        metadata=dict(type="dict", default={}),
        tags=dict(type="list", elements="str", default=[]),
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=300),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        self.label = self.require_label()
        self.deadline = time.monotonic() + self.params["timeout"]
        servers, ignored = self._find()
        self.results["ignored"] = [s.id for s in ignored]
        if self.params["state"] == "present":
            self.present(servers)
        else:
            self.absent(servers)

    def _find(self):
        """(servers with the name carrying the label, servers with the name without it)."""
        name = self.params["name"]
        # nova matches name as a regular expression: anchor it, then compare exactly.
        found = [
            s for s in self.conn.compute.servers(name=f"^{re.escape(name)}$") if s.name == name
        ]
        ours = [s for s in found if server_has_label(_as_dict(s), self.label)]
        return ours, [s for s in found if s.id not in {o.id for o in ours}]

    # -- present ---------------------------------------------------------

    def present(self, servers):
        if servers:
            server = servers[0]
            if server.status == "ERROR":
                self.fail_json(msg=self._error_message(server), server=_server(server))
            if self.params["wait"] and server.status != "ACTIVE" and not self.check_mode:
                server = self._wait_active(server)
            self.exit_json(changed=False, server=_server(server))

        kwargs = self._boot_args()
        if self.check_mode:
            self.exit_json(changed=True, server=None)
        try:
            server = self.conn.compute.create_server(**kwargs)
        except (sdk_exceptions.BadRequestException, sdk_exceptions.ForbiddenException) as exc:
            self.fail_json(
                msg=f"nova refused to boot server {self.params['name']}: {api_error(exc)}"
            )
        if self.params["wait"]:
            server = self._wait_active(server)
        else:
            server = self.conn.compute.get_server(server.id)
        self.exit_json(changed=True, server=_server(server))

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

    def _wait_active(self, server):
        last = server
        while True:
            last = self.conn.compute.get_server(server.id)
            if last.status == "ACTIVE":
                return last
            if last.status == "ERROR":
                self.fail_json(msg=self._error_message(last), server=_server(last))
            if time.monotonic() >= self.deadline:
                self.fail_json(
                    msg=f"server {last.name} ({last.id}) did not become ACTIVE within "
                    f"{self.params['timeout']}s (status {last.status}, "
                    f"task state {last.task_state})",
                    server=_server(last),
                )
            time.sleep(POLL_INTERVAL)

    @staticmethod
    def _error_message(server):
        fault = server.fault or {}
        message = " ".join(str(fault.get("message") or "no fault recorded").split())
        return f"server {server.name} ({server.id}) went to ERROR: {message}"

    # -- absent ----------------------------------------------------------

    def absent(self, servers):
        deleted = [s.id for s in servers]
        if self.check_mode or not servers:
            self.exit_json(changed=bool(deleted), deleted=deleted, server=None)
        for server in servers:
            self.conn.compute.delete_server(server, ignore_missing=True)
        if self.params["wait"]:
            for server in servers:
                self._wait_gone(server)
        self.exit_json(changed=True, deleted=deleted, server=None)

    def _wait_gone(self, server):
        redeleted = False
        while True:
            try:
                current = self.conn.compute.get_server(server.id)
            except sdk_exceptions.NotFoundException:
                return
            if current.status == "DELETED":
                return
            # A delete cast to a compute that died waits for it forever. Once the
            # host's service reports down, nova deletes locally: ask again, once.
            if not redeleted and current.task_state == "deleting" and self._host_down(current):
                self.conn.compute.delete_server(current, ignore_missing=True)
                redeleted = True
            if time.monotonic() >= self.deadline:
                self.fail_json(
                    msg=f"server {server.name} ({server.id}) was not deleted within "
                    f"{self.params['timeout']}s (status {current.status}, task state "
                    f"{current.task_state}); is its compute host {current.compute_host} running?"
                )
            time.sleep(POLL_INTERVAL)

    def _host_down(self, server):
        """Whether the server's compute service reports down (False when it cannot tell)."""
        if not server.compute_host:
            return False
        try:
            services = list(
                self.conn.compute.services(host=server.compute_host, binary="nova-compute")
            )
        except sdk_exceptions.SDKException:
            return False
        return bool(services) and all(s.state == "down" for s in services)


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
