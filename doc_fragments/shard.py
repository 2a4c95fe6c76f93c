# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Documentation the shard-jobs modules share, as openstack.cloud's modules share its
``openstack`` fragment: ``extends_documentation_fragment: [shard.openstack, shard.phase]``.

Documentation only (ansible-doc, the lint tier): Ansible never reads it to run a
module. ansible-doc finds it through the repository's ansible.cfg
(doc_fragment_plugins).
"""


class ModuleDocFragment:
    # The options of every module built on module_utils/shard_openstack.py's
    # ShardModule (its CONNECTION_ARGS).
    OPENSTACK = r"""
options:
  cloud:
    description:
      - The cloud to talk to - the name of an entry of C(clouds.yaml) (the
        file that C(OS_CLIENT_CONFIG_FILE) names, as openstacksdk reads it),
        or a dict of one such entry.
    type: raw
    required: true
  region_name:
    description: The region, when the cloud has several.
    type: str
  interface:
    description: The endpoint interface to use.
    type: str
    default: public
    choices: [public, internal, admin]
  timeout:
    description:
      - Seconds an API request may take (openstacksdk's C(api_timeout)); a
        module that waits bounds its waits with it too, unless it says
        otherwise.
    type: int
    default: 180
requirements:
  - openstacksdk
"""

    # The phase option of module_utils/shard_phases.py (PHASE_OPTION).
    PHASE = r"""
options:
  phase:
    description:
      - A phase of the build's record (C(phases.jsonl) in I(phase.workspace),
        module_utils/shard_phases.py) that this module starts before its work
        (I(phase.start)) or ends after it (I(phase.end)), where a task of its
        own would cost one more process on the node.
      - Nothing is recorded in check mode, nor the end when the module fails.
    type: dict
    suboptions:
      workspace:
        description: The build's workspace, created with the start when missing.
        type: path
        required: true
      name:
        description: The phase, such as C(preflight), C(build) or C(deploy).
        type: str
        required: true
      start:
        description: Record the phase's start, before the module's work.
        type: bool
        default: false
      end:
        description: Record the phase's end, once the module's work succeeded.
        type: bool
        default: false
"""
