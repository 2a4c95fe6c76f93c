# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: the service version a source tree or a virtualenv states."""

DOCUMENTATION = r"""
---
module: shard_service_version
short_description: Read the service version a source tree or an installed virtualenv states
description:
  - Reads the number a project states as its service version (nova's
    C(SERVICE_VERSION)), which a cloud compares with the oldest it accepts,
    from I(file) under I(root), or under I(root)'s C(lib/python3*/site-packages)
    when I(root) is a virtualenv.
  - Read only; runs in check mode and never reports a change.
options:
  root:
    description: A source tree, or a virtualenv the project is installed in.
    type: path
    required: true
  file:
    description: The file that states the version, relative to the tree's top.
    type: str
    required: true
  pattern:
    description: Regular expression (multi-line) whose first group is the version.
    type: str
    required: true
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Read the service version of the nova installed in the "from" virtualenv
  shard_service_version:
    root: "{{ ansible_user_dir }}/shard/venv-from"
    file: nova/objects/service.py
    pattern: '^SERVICE_VERSION = (\d+)$'
  register: from_version
"""

RETURN = r"""
service_version:
  description: The version, or null when the file or the pattern is not found.
  returned: always
  type: int
  sample: 72
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.shard_versions import service_version


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            file=dict(type="str", required=True),
            pattern=dict(type="str", required=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    module.exit_json(
        changed=False, service_version=service_version(p["root"], p["file"], p["pattern"])
    )


if __name__ == "__main__":
    main()
