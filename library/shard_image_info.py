# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: images as glance itself filters them, and optionally their data."""

DOCUMENTATION = r"""
---
module: shard_image_info
short_description: List images with glance's own filters, and read their data
description:
  - Lists images with the query parameters of glance's C(GET /v2/images)
    (I(filters)), so that glance does the filtering, on whatever image
    endpoint the connection uses; or gets one image by I(id).
    (C(openstack.cloud.image_info) lists every image and filters them itself.)
  - With I(read_data), downloads the data of each image found (streamed, not
    kept) and returns its size and hash, and whether they match what glance
    recorded for the image (C(size), C(os_hash_value)).
  - To reach an image endpoint that is not in the catalog (a glance-api
    shard), give the cloud's clouds.yaml entry an C(image_endpoint_override).
  - With I(wait), first waits until a glance-api shard answers on its own
    endpoint (the step that tells that the shard is part of the cloud).
  - Read-only; reports C(changed=false) and runs in check mode.
options:
  filters:
    description:
      - Query parameters of C(GET /v2/images), for example a property
        (C(shard_label=shard-3f2a9c01b7d4)), C(name), C(status),
        C(visibility) or C(tag). Every page is read.
      - Mutually exclusive with I(id); neither lists every image.
    type: dict
  id:
    description: One image, by id; none found when glance does not know it (or it was deleted).
    type: str
  read_data:
    description: Download the data of each image found and hash it.
    type: bool
    default: false
  wait:
    description:
      - Before anything else, wait until the service of I(pidfile) (gunicorn)
        answers on I(url) as glance, within I(timeout) seconds - its log says
        that the recorded process listens at I(url) (so the answer is its,
        not another program's) and C(<url>/versions) answers - then check that
        it offers the image API v2 as C(CURRENT) and refuses a request without
        a token (keystone auth is in its pipeline).
      - A process that exits (or whose pid record is missing) fails the task
        at once, one that never answers at I(timeout); both with the end of
        its log.
    type: dict
    suboptions:
      name:
        description: The service's name, in messages.
        type: str
        default: glance-api
      url:
        description: Its endpoint (C(http://<host>:<port>)).
        type: str
        required: true
      pidfile:
        description: Its pid file, as shard_process recorded it.
        type: path
        required: true
      logfile:
        description: Its log.
        type: path
        required: true
      timeout:
        description: Seconds to wait.
        type: int
        default: 120
extends_documentation_fragment:
  - shard.openstack
  - shard.phase
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Wait until the glance-api shard answers, then list the cloud's image through it
  shard_image_info:
    cloud: my-cloud-glance-shard
    wait:
      url: http://127.0.0.1:26491
      pidfile: /home/zuul/.shard-jobs/builds/shard-3f2a9c01b7d4/run/glance-api.pid
      logfile: /home/zuul/.shard-jobs/builds/shard-3f2a9c01b7d4/log/glance-api.log
    filters:
      name: cirros

- name: Images of a run, as the shard's glance filters them
  shard_image_info:
    cloud: my-cloud-glance-shard
    filters:
      shard_label: shard-3f2a9c01b7d4
  register: found

- name: Read an image's data back through the cloud's own glance
  shard_image_info:
    cloud: my-cloud
    id: "{{ image_id }}"
    read_data: true
  register: read
  failed_when: not read.images[0].data.matches
"""

RETURN = r"""
images:
  description:
    - The images found, in glance's order. Each has C(id), C(name),
      C(status), C(size), C(visibility), C(owner), C(os_hash_algo),
      C(os_hash_value), C(checksum), C(tags), C(created_at),
      C(properties) (the other attributes, custom properties such as
      C(shard_label)), and with I(read_data) C(data).
    - C(data) has C(size), C(algo) and C(hash) (with the image's C(os_hash_algo), or
      sha512) of what was downloaded, and C(matches), true when both equal
      what glance recorded.
  returned: always
  type: list
  elements: dict
  sample:
    - id: 1b2c3d4e-0000-4000-8000-000000000001
      name: shard-3f2a9c01b7d4-via-shard
      status: active
      size: 65536
      os_hash_algo: sha512
      os_hash_value: "9e5a..."
      properties: {shard_label: shard-3f2a9c01b7d4}
      data: {size: 65536, hash: "9e5a...", matches: true}
endpoint:
  description: The image endpoint that answered (catalog or override).
  returned: always
  type: str
"""

import hashlib

from ansible.module_utils.shard_images import (
    answers,
    get_image,
    image_api_problem,
    list_images,
    raise_for,
)
from ansible.module_utils.shard_openstack import ShardModule
from ansible.module_utils.shard_processes import gunicorn_listening, log_tail, read_record
from ansible.module_utils.shard_waits import WaitTimeout, wait_until

# Attributes of an image record that are not custom properties.
CORE = {
    "id",
    "name",
    "status",
    "size",
    "virtual_size",
    "visibility",
    "owner",
    "os_hash_algo",
    "os_hash_value",
    "checksum",
    "tags",
    "created_at",
    "updated_at",
    "disk_format",
    "container_format",
    "min_disk",
    "min_ram",
    "protected",
    "os_hidden",
    "file",
    "schema",
    "self",
    "direct_url",
    "locations",
    "stores",
}
CHUNK = 1 << 20
# Seconds between two looks at a shard that is starting (five a second).
WAIT_POLL = 0.2
# Lines of the shard's log in a failure's message.
LOG_LINES = 20


class ServiceGone(Exception):
    """The shard's process exited while the wait looked for it."""


class ImageInfoModule(ShardModule):
    argument_spec = dict(
        filters=dict(type="dict"),
        id=dict(type="str"),
        read_data=dict(type="bool", default=False),
        wait=dict(
            type="dict",
            options=dict(
                name=dict(type="str", default="glance-api"),
                url=dict(type="str", required=True),
                pidfile=dict(type="path", required=True),
                logfile=dict(type="path", required=True),
                timeout=dict(type="int", default=120),
            ),
        ),
    )
    module_kwargs = dict(supports_check_mode=True, mutually_exclusive=[("filters", "id")])

    def run(self):
        if self.params["wait"]:
            self._wait(**self.params["wait"])
        image_id = self.params["id"]
        if image_id:
            found = [i for i in [get_image(self.conn.image, image_id)] if i is not None]
        else:
            found = list_images(self.conn.image, self.params["filters"])
        images = [_entry(i) for i in found]
        if self.params["read_data"]:
            for image in images:
                image["data"] = self._read(image)
        self.exit_json(changed=False, images=images, endpoint=self._endpoint())

    def _wait(self, name, url, pidfile, logfile, timeout):
        """Until the shard's gunicorn listens and glance answers; fail at once if it exits."""
        url = url.rstrip("/")

        def listening():
            # Through the record's one reader (shard_processes): None once the process is gone.
            record = read_record(pidfile)
            if record is None:
                raise ServiceGone()
            return gunicorn_listening(logfile, url, record["pid"]) and answers(url)

        try:
            wait_until(listening, timeout, interval=WAIT_POLL)
        except ServiceGone:
            self.fail_json(
                msg=f"{name} exited after it was started, before it answered on {url}; "
                f"the end of its log: {_tail(logfile)}"
            )
        except WaitTimeout:
            self.fail_json(
                msg=f"{name} runs but did not answer on {url} within {timeout}s; "
                f"the end of its log: {_tail(logfile)}"
            )
        problem = image_api_problem(url)
        if problem:
            self.fail_json(msg=problem)

    def _endpoint(self):
        try:
            return self.conn.image.get_endpoint()
        except Exception:  # noqa: BLE001 - informative only
            return None

    def _read(self, image):
        algo = image.get("os_hash_algo") or "sha512"
        try:
            digest = hashlib.new(algo)
        except ValueError:
            algo, digest = "sha512", hashlib.sha512()
        size = 0
        response = self.conn.image.get(f"/images/{image['id']}/file", stream=True)
        raise_for(response)
        try:
            for chunk in response.iter_content(CHUNK):
                size += len(chunk)
                digest.update(chunk)
        finally:
            response.close()
        value = digest.hexdigest()
        recorded = image.get("os_hash_value")
        same_hash = recorded is None or (image.get("os_hash_algo") == algo and recorded == value)
        matches = size == image.get("size") and same_hash
        return {"size": size, "hash": value, "algo": algo, "matches": matches}


def _tail(logfile):
    return log_tail(logfile, LOG_LINES) or "(empty)"


def _entry(image):
    entry = {k: image.get(k) for k in CORE if k not in ("schema", "self", "file")}
    entry["properties"] = {k: v for k, v in image.items() if k not in CORE}
    return entry


def main():
    ImageInfoModule()()


if __name__ == "__main__":
    main()
