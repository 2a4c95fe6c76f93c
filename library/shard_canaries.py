# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: record the operator's canary images, and check what a shard must not touch."""

DOCUMENTATION = r"""
---
module: shard_canaries
short_description: Record canaries; fail when they changed or the shard wrote to other images
description:
  - C(record) (pre-flight) finds each of the operator's canary images
    (I(images), by id or unique name) and canary servers (I(servers), by id or
    unique name, in any project) and writes the cloud's record of each to
    I(snapshot) (JSON, mode 0600). A canary that does not exist, or a name that
    several share, fails with one line.
  - C(check) (after the exercise, after teardown) reads each recorded canary
    again and fails, naming it, when its record differs in any way (an image's
    C(checksum), C(status), C(updated_at), properties; a server's C(status),
    host, power or task state, metadata, C(updated); ...) or it is gone.
    With I(access_log), it also reads the shard's access log and fails,
    naming the image, on any write (a request other than C(GET), C(HEAD),
    C(OPTIONS)) to an image that is neither in I(own_images) nor labelled
    with I(label) and owned by the connection's project. The rule is
    module_utils/shard_canaries.py.
  - One connection, one process. C(check) changes nothing; C(record) reports
    C(changed) when it wrote the snapshot, and writes nothing in check mode.
options:
  command:
    description: C(record) or C(check).
    type: str
    required: true
    choices: [record, check]
  images:
    description: (record) The operator's canary images, by id or name.
    type: list
    elements: str
    default: []
  servers:
    description:
      - (record) The operator's canary servers, by id or name (read across
        projects, as the jobs' admin account can).
    type: list
    elements: str
    default: []
  file_stores:
    description:
      - (record) Store id to the directory of each of the cloud's file image stores (the
        credentials' C(glance.stores) of type C(file)), for a shard that serves them; a
        canary image in one of them must have its data there on this node (glance's file
        store keeps it as DIR/ID), else the node does not see the cloud's store and the
        record fails in one line (module_utils/shard_image_stores.py).
    type: dict
    default: {}
  snapshot:
    description:
      - The file the snapshot is written to (record) and read from (check).
      - (check) None there, nothing to compare.
    type: path
    required: true
  access_log:
    description: (check) The shard's log with gunicorn's access lines.
    type: path
  own_images:
    description: (check) Ids of the images the job created (they may be deleted by now).
    type: list
    elements: str
    default: []
  label:
    description:
      - (check) The build's label; images of the connection's project carrying it
        are the job's too.
    type: str
  when:
    description: (check) When the check runs, for the message (C(after the exercise)).
    type: str
    default: now
extends_documentation_fragment:
  - shard.openstack
  - shard.phase
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Record the operator's canary images and servers
  shard_canaries:
    cloud: my-cloud
    command: record
    images: [shard-canary]
    servers: [0b5f1c8e-6f4d-4d7a-9a57-3c0e2f9b6d11]
    snapshot: /home/zuul/shard/shard-3f2a9c01b7d4/state/canaries.json

- name: Record the canary images, and check that this node sees the cloud's file store
  shard_canaries:
    cloud: my-cloud
    command: record
    images: [shard-canary]
    file_stores: {file: /srv/glance/images}
    snapshot: /home/zuul/shard/shard-3f2a9c01b7d4/state/canaries.json

- name: Check the canaries and the shard's access log
  shard_canaries:
    cloud: my-cloud
    command: check
    snapshot: /home/zuul/shard/shard-3f2a9c01b7d4/state/canaries.json
    access_log: /home/zuul/shard/shard-3f2a9c01b7d4/log/glance-api.log
    own_images: ["{{ via_shard_id }}"]
    label: shard-3f2a9c01b7d4
    when: after the exercise
"""

RETURN = r"""
canaries:
  description:
    - The canaries recorded (record) or compared (check), each with C(kind)
      (C(images) or C(servers)), C(id) and C(name).
  returned: always
  type: list
  elements: dict
foreign_writes:
  description:
    - (check) Image id to the writes the access log shows to it, for images the job
      did not create.
  returned: when command is check
  type: dict
"""

import json
import os
import re

from ansible.module_utils.shard_canaries import (
    KINDS,
    canary_error,
    foreign_writes,
    foreign_writes_error,
    snapshot,
)
from ansible.module_utils.shard_image_stores import unreachable, unseen_dirs
from ansible.module_utils.shard_images import get_image, list_images, raise_for
from ansible.module_utils.shard_openstack import LABEL_METADATA_KEY, UUID_RE, ShardModule


class CanariesModule(ShardModule):
    argument_spec = dict(
        command=dict(type="str", required=True, choices=["record", "check"]),
        images=dict(type="list", elements="str", default=[]),
        servers=dict(type="list", elements="str", default=[]),
        file_stores=dict(type="dict", default={}),
        snapshot=dict(type="path", required=True),
        access_log=dict(type="path"),
        own_images=dict(type="list", elements="str", default=[]),
        label=dict(type="str"),
        when=dict(type="str", default="now"),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        if self.params["command"] == "record":
            self.record()
        else:
            self.check()

    # -- glance, raw: the record as the API returns it (module_utils/shard_images.py)
    def _image(self, image_id):
        return get_image(self.conn.image, image_id)

    def _find_image(self, name_or_id):
        if UUID_RE.fullmatch(name_or_id):
            image = self._image(name_or_id)
            if image is not None:
                return image
        return self._one("image", name_or_id, list_images(self.conn.image, {"name": name_or_id}))

    # -- nova, raw: the server's record, in any project (the jobs' admin account)
    def _server(self, server_id):
        response = self.conn.compute.get(f"/servers/{server_id}")
        if response.status_code == 404:
            return None
        raise_for(response)
        return response.json()["server"]

    def _find_server(self, name_or_id):
        if UUID_RE.fullmatch(name_or_id):
            server = self._server(name_or_id)
            if server is not None:
                return server
        # nova's name filter is a regular expression: the name, escaped and anchored
        # (a canary named db[1] is found), and only exact matches kept.
        response = self.conn.compute.get(
            "/servers/detail",
            params={"all_tenants": "1", "name": f"^{re.escape(name_or_id)}$"},
        )
        raise_for(response)
        found = [s for s in response.json()["servers"] if s.get("name") == name_or_id]
        return self._one("server", name_or_id, found)

    def _one(self, kind, name_or_id, found):
        if len(found) > 1:
            self.fail_json(
                msg=f"canary {kind} {name_or_id!r} is ambiguous: {len(found)} {kind}s have that "
                f"name; name it by id in canary_{kind}s"
            )
        if not found:
            self.fail_json(msg=f"canary {kind} {name_or_id!r} not found in the target cloud")
        return found[0]

    def _read(self, kind, canary_id):
        record = self._image(canary_id) if kind == "images" else self._server(canary_id)
        return snapshot(record) if record is not None else None

    def record(self):
        finders = {"images": self._find_image, "servers": self._find_server}
        found = {kind: [finders[kind](c) for c in self.params[kind]] for kind in KINDS}
        for image in found["images"]:
            dirs = unseen_dirs(image, self.params["file_stores"])
            if dirs:
                self.fail_json(msg=unreachable(image.get("name"), image["id"], dirs))
        recorded = {
            kind: {record["id"]: snapshot(record) for record in found[kind]} for kind in KINDS
        }
        content = json.dumps(recorded, indent=2, sort_keys=True) + "\n"
        path = self.params["snapshot"]
        try:
            with open(path) as f:
                changed = f.read() != content
        except FileNotFoundError:
            changed = True
        if changed and not self.check_mode:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(content)
        self.exit_json(changed=changed, canaries=_named(recorded))

    def check(self):
        try:
            with open(self.params["snapshot"]) as f:
                recorded = json.load(f)
        except FileNotFoundError:
            recorded = {}
        errors = []
        for kind in KINDS:
            canaries = recorded.get(kind, {})
            now = {canary_id: self._read(kind, canary_id) for canary_id in canaries}
            error = canary_error(canaries, now, self.params["when"], kind)
            if error:
                errors.append(error)
        foreign = {}
        if self.params["access_log"]:
            own = set(self.params["own_images"])
            label = self.require_label()
            if label:
                project = self.conn.current_project_id
                labelled = list_images(self.conn.image, {LABEL_METADATA_KEY: label})
                own |= {i["id"] for i in labelled if i.get("owner") == project}
            try:
                with open(self.params["access_log"], errors="replace") as f:
                    foreign = foreign_writes(f, own)
            except FileNotFoundError:
                self.fail_json(msg=f"the shard's access log {self.params['access_log']} is missing")
            error = foreign_writes_error(foreign)
            if error:
                errors.append(error)
        if errors:
            self.fail_json(msg="; ".join(errors), canaries=_named(recorded), foreign_writes=foreign)
        self.exit_json(changed=False, canaries=_named(recorded), foreign_writes=foreign)


def _named(recorded):
    return [
        {"kind": kind, "id": k, "name": v.get("name")}
        for kind in KINDS
        for k, v in recorded.get(kind, {}).items()
    ]


def main():
    CanariesModule()()


if __name__ == "__main__":
    main()
