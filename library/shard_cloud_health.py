# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: is the target cloud healthy enough to take a shard?"""

DOCUMENTATION = r"""
---
module: shard_cloud_health
short_description: Check that the target cloud's APIs, scheduler, conductor and message bus answer
description:
  - Read-only checks run before a shard job creates anything, so that an
    outage of the shared cloud fails the job's pre-run phase (which Zuul
    retries) rather than being blamed on the change under test.
  - Authenticates, then checks that each required catalog service answers
    on its endpoint, that nova's conductor and scheduler are up, and that
    every host of the message bus accepts an AMQP connection.
  - With I(image) and I(room), also what the job's exercise needs of the
    cloud (the image it boots exists, and the project's compute quota has
    room for its servers; module_utils/shard_quota.py has the rule). The
    whole pre-flight is then one module run and one connection.
  - "Fails with C(target cloud unhealthy: <what>) naming the first problem,
    or with a message about the credentials when they are the problem."
options:
  services:
    description: Catalog service types that must answer.
    type: list
    elements: str
    default: [compute, placement, image, network]
  nova_services:
    description: Nova binaries that must be up (needs the admin role).
    type: list
    elements: str
    default: [nova-conductor, nova-scheduler]
  transport_url:
    description: The message bus a compute would use; each of its hosts must answer AMQP.
    type: str
  probe_timeout:
    description: Seconds each probe may take.
    type: int
    default: 10
  image:
    description:
      - An image (name or id) that must exist in the cloud, visible to the
        project; the module fails with C(image <name> not found in the
        target cloud) and what to do.
    type: str
  room:
    description:
      - Servers the job boots at once, and each one's cores and RAM (its
        flavor's). The module fails with C(target cloud has no room) naming
        each limit of the project's compute quota that is short. A limit of
        -1 is unlimited.
    type: dict
    suboptions:
      servers:
        description: Number of servers.
        type: int
        default: 1
      vcpus:
        description: Cores of each server.
        type: int
        default: 1
      ram:
        description: RAM of each server in MB.
        type: int
        default: 0
extends_documentation_fragment:
  - shard.openstack
  - shard.phase
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Check the target cloud
  shard_cloud_health:
    cloud: target
    transport_url: "{{ shard_cloud.transport_url }}"
  no_log: true

- name: Check the target cloud and what the exercise needs of it
  shard_cloud_health:
    cloud: target
    transport_url: "{{ shard_cloud.transport_url }}"
    image: cirros
    room:
      servers: 1
      vcpus: 1
      ram: 128
  no_log: true
"""

RETURN = r"""
checked:
  description: What was checked and found healthy.
  returned: success
  type: list
  elements: str
  sample: ["identity", "compute", "nova-conductor", "message bus", "image cirros", "quota"]
limits:
  description:
    - With I(room), each quota limit checked, its maximum (-1 unlimited), what
      is used and what the job needs.
  returned: when I(room) is given
  type: dict
  sample:
    instances: {max: 10, used: 3, needed: 1}
    cores: {max: 20, used: 3, needed: 1}
    ram: {max: 51200, used: 384, needed: 128}
"""

import socket

from ansible.module_utils.shard_bus import DEFAULT_PORT, address_of
from ansible.module_utils.shard_nova_services import CONTROL_SERVICES, first_down
from ansible.module_utils.shard_openstack import ShardModule, endpoint_problem, short_error
from ansible.module_utils.shard_quota import quota_room
from ansible.module_utils.shard_secrets import url_hosts

try:
    from keystoneauth1 import exceptions as ksa_exceptions
    from openstack import exceptions as openstack_exceptions
except ImportError:  # pragma: no cover - openstacksdk brings them
    ksa_exceptions = None
    openstack_exceptions = None

# AMQP 0-9-1 protocol header; a broker answers with a Connection.Start frame.
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def amqp_probe(url, timeout):
    """None if an AMQP broker answers at every host of a rabbit:// URL, else the
    problem with the first that does not. A compute's oslo.messaging may connect
    to any of them (it fails over in turn), so each must answer; the URL is read
    as oslo.messaging reads it (module_utils/shard_secrets.py, url_hosts)."""
    try:
        hosts = url_hosts(url)
    except ValueError as exc:
        return f"message bus URL unusable ({exc})"
    for entry in hosts:
        if not entry["host"]:
            return "message bus URL names a host without an address"
        entry = dict(entry, port=entry["port"] or DEFAULT_PORT)
        try:
            with socket.create_connection((entry["host"], entry["port"]), timeout=timeout) as sock:
                sock.sendall(AMQP_HEADER)
                frame = sock.recv(7)
        except OSError as exc:
            return f"message bus at {address_of(entry)} unreachable ({exc.strerror or exc})"
        if len(frame) < 7 or frame[0] != 1:
            return f"message bus at {address_of(entry)} does not speak AMQP 0-9-1"
    return None


class CloudHealthModule(ShardModule):
    argument_spec = dict(
        services=dict(
            type="list", elements="str", default=["compute", "placement", "image", "network"]
        ),
        nova_services=dict(type="list", elements="str", default=list(CONTROL_SERVICES)),
        transport_url=dict(type="str", no_log=True),
        probe_timeout=dict(type="int", default=10),
        image=dict(type="str"),
        room=dict(
            type="dict",
            options=dict(
                servers=dict(type="int", default=1),
                vcpus=dict(type="int", default=1),
                ram=dict(type="int", default=0),
            ),
        ),
    )
    module_kwargs = dict(supports_check_mode=True)

    def unhealthy(self, what):
        self.fail_json(msg=f"target cloud unhealthy: {what}")

    def run(self):
        checked = []
        auth_url = (self.conn.config.get_auth_args() or {}).get("auth_url", "?")
        try:
            self.conn.authorize()
        except Exception as exc:  # keystoneauth errors, wrapped by openstacksdk
            self.credentials_problem(exc, auth_url)
        checked.append("identity")

        for service_type in self.params["services"]:
            problem = endpoint_problem(
                self.conn,
                service_type,
                self.params["interface"],
                self.params["region_name"],
                self.params["probe_timeout"],
            )
            if problem:
                self.unhealthy(problem)
            checked.append(service_type)

        if self.params["nova_services"]:
            try:
                services = list(self.conn.compute.services())
            except Exception as exc:
                self.unhealthy(f"compute services cannot be listed ({short_error(exc)})")
            problem = first_down(
                [(s.binary, s.state) for s in services], self.params["nova_services"]
            )
            if problem:
                self.unhealthy(problem)
            checked.extend(self.params["nova_services"])

        if self.params["transport_url"]:
            problem = amqp_probe(self.params["transport_url"], self.params["probe_timeout"])
            if problem:
                self.unhealthy(problem)
            checked.append("message bus")

        extra = {}
        image = self.params["image"]
        if image:
            if not self.image_exists(image):
                self.fail_json(
                    msg=f"image {image} not found in the target cloud: the exercise boots it; "
                    "name an existing image (image in the credentials, or shard_profile_options "
                    "{image: ...})"
                )
            checked.append(f"image {image}")
        room = self.params["room"]
        if room:
            try:
                limits, problem = quota_room(self.conn, room["servers"], room["vcpus"], room["ram"])
            except Exception as exc:
                self.unhealthy(f"compute limits cannot be read ({short_error(exc)})")
            if problem:
                self.fail_json(msg=problem, limits=limits)
            extra["limits"] = limits
            checked.append("quota")
        self.exit_json(changed=False, checked=checked, **extra)

    def image_exists(self, name_or_id):
        """Whether an image of that name or id is visible to the project."""
        try:
            return self.conn.image.find_image(name_or_id, ignore_missing=True) is not None
        except openstack_exceptions.DuplicateResource:
            return True  # several images of that name: it exists
        except Exception as exc:
            self.unhealthy(f"images cannot be listed ({short_error(exc)})")

    def credentials_problem(self, exc, auth_url):
        # Connection.authorize() re-raises keystoneauth's errors as an SDKException
        # carrying only their text: judge by the error it was raised from.
        exc = _keystoneauth_error(exc) or exc
        if ksa_exceptions and isinstance(exc, ksa_exceptions.Unauthorized):
            self.fail_json(
                msg=f"cannot authenticate to the target cloud at {auth_url}: "
                "wrong user name, password or project (HTTP 401)"
            )
        if ksa_exceptions and isinstance(exc, ksa_exceptions.ConnectFailure):
            self.unhealthy(f"identity at {auth_url} unreachable")
        self.unhealthy(f"identity at {auth_url}: {short_error(exc)}")


def _keystoneauth_error(exc):
    """The keystoneauth error exc is or was raised from, or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if ksa_exceptions and isinstance(exc, ksa_exceptions.ClientException):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def main():
    CloudHealthModule()()


if __name__ == "__main__":
    main()
