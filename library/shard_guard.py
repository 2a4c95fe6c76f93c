# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: the guard step in one process - may this change meet the shared cloud?"""

DOCUMENTATION = r"""
---
module: shard_guard
short_description: Decide whether a change may meet the shared cloud (migrations, service version)
description:
  - The shard_guard role's step in one module process, where it used to take
    four (the phase's start, the migrations, the service version, the
    phase's end). Only reads; opens no database connection and no API.
  - With I(database), compares the files of the migration directories
    I(database.migrations) in the change's tree I(src) with those of what
    the cloud runs (the rule of C(shard_migrations), in
    module_utils/shard_migrations.py; compiled files ignored). When I(ref)
    is a full commit id (the commit the cloud's services were built from,
    the credentials' C(commits)), that commit's tree in the git repository
    I(src), which must have it in the history of its HEAD, else the change
    is refused. Otherwise release I(version) of I(package), read from the
    ref I(ref), by default the tag I(version), of the git repository I(src),
    else from the release's source distribution on the package index,
    downloaded once into I(cache_dir).
  - With I(service_version), reads the service version a profile names
    (module_utils/shard_versions.py, as C(shard_service_version) does) from
    I(root), a source tree or a virtualenv, and compares it with
    I(minimum), the oldest the cloud accepts, and I(maximum), the newest.
  - Refuses nothing itself and never fails for a refusal; it returns
    I(refusal), the one line the job fails with (the service version's
    first, as the role checked it first; then a repository without the
    cloud's commit; then the migrations), for the role to return
    C(zuul.retry) false and fail. It fails when it cannot decide (the
    release's migrations cannot be read, no migration file anywhere, a
    I(minimum) or I(maximum) that is not a number).
  - With I(phase), records the phase's start before its work, and its end
    only when nothing is refused, so that a refused change leaves the phase
    unfinished in the build's record.
  - Reports C(changed=false) and runs in check mode (a download only fills
    the cache; nothing is recorded).
options:
  src:
    description:
      - The change's source tree (a git repository or a plain tree); required
        with I(database).
    type: path
  database:
    description:
      - The profile's C(database), whose migrations are compared; omitted,
        none are (a service without a database of its own).
    type: dict
    suboptions:
      name:
        description: The database's name, for the refusal.
        type: str
        required: true
      migrations:
        description: Directories of the migrations, relative to the tree's top.
        type: list
        elements: str
        required: true
      instead:
        description: What to use for such a change, the end of the refusal.
        type: str
        required: true
  version:
    description:
      - The release the cloud runs (the credentials' C(versions)); required
        with I(database), also when I(ref) is the commit it runs (it names
        what the cloud runs in messages).
    type: str
  package:
    description:
      - The project's distribution on the package index; required with
        I(database). Also names the project in the refusal of a service newer
        than I(maximum) (the cloud the change needs); I(service) without it.
    type: str
  ref:
    description:
      - Git ref of I(src) holding the tree the cloud runs; empty for I(version)
        as a tag.
      - A full commit id (40 hex digits) is the commit the cloud runs (the
        credentials' C(commits)), compared with that commit only, never the
        source release; when it is not HEAD or an ancestor of HEAD in I(src),
        I(refusal) says the change must be rebased onto it.
    type: str
    default: ""
  commit:
    description:
      - The commit the cloud runs (the credentials' C(commits)), when it follows
        a branch; compared as I(ref) is, and the job fails in one line when it
        is not a full commit id (a short one could name another commit, or none
        in the change's repository, and the guard would quietly compare with
        the release instead).
      - When the change's own commit leaves the migrations as its parent has
        them but they differ from the cloud's commit, I(refusal) says the cloud
        must be upgraded past its branch's migrations.
    type: str
    default: ""
  python:
    description: Interpreter whose pip downloads the source release.
    type: str
    default: python3
  cache_dir:
    description: Where source releases are kept between runs; empty for a temporary directory.
    type: path
    default: ""
  service_version:
    description:
      - The profile's C(service_version), where its project states the
        version a cloud compares; omitted, none is read.
    type: dict
    suboptions:
      path:
        description: The file that states the version, relative to the tree's top.
        type: str
        required: true
      pattern:
        description: Regular expression (multi-line) whose first group is the version.
        type: str
        required: true
  root:
    description:
      - Where the service version is read, a source tree or a virtualenv the
        project is installed in; I(src) when not given.
    type: path
  minimum:
    description:
      - The oldest service version the cloud accepts (the credentials'
        C(minimum_service_versions) for I(service)); empty when not stated
        (nothing is refused for the version).
    type: str
    default: ""
  maximum:
    description:
      - The newest service version the cloud accepts (the credentials'
        C(maximum_service_versions) for I(service)); empty when not stated
        (nothing newer is refused).
    type: str
    default: ""
  service:
    description: The profile's service, for the refusal.
    type: str
    default: ""
  what:
    description: What has that service version, for the refusal (for example C(the change's nova)).
    type: str
    default: ""
notes:
  - Unlike the other modules with I(phase), the end is not recorded when the
    module returns a I(refusal) either.
extends_documentation_fragment:
  - shard.phase
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Refuse a change that the shared cloud cannot take
  shard_guard:
    phase:
      workspace: /home/zuul/.shard-jobs/builds/shard-3f2a9c01b7d4
      name: guard
      start: true
      end: true
    src: /home/zuul/src/opendev.org/openstack/nova
    database:
      name: nova
      migrations:
        - nova/db/main/migrations/versions
        - nova/db/api/migrations/versions
      instead: a job that deploys its own databases
    version: 32.0.0
    package: nova
    cache_dir: /home/zuul/.cache/shard-jobs/sdists
    service_version:
      path: nova/objects/service.py
      pattern: '^SERVICE_VERSION = (\d+)$'
    minimum: "74"
    maximum: "75"
    service: nova-compute
    what: the change's nova
  register: guard

- name: Stop when it refuses
  ansible.builtin.fail:
    msg: "{{ guard.refusal }}"
  when: guard.refusal | length > 0

- name: Compare with the commit a cloud that follows master runs (credentials' commits)
  shard_guard:
    src: /home/zuul/src/opendev.org/openstack/nova
    database:
      name: nova
      migrations:
        - nova/db/main/migrations/versions
        - nova/db/api/migrations/versions
      instead: a job that deploys its own databases
    version: 34.0.0
    package: nova
    commit: 5f0c1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b
  register: guard

- name: Refuse a "from" version the cloud does not accept (no migrations, no phase)
  shard_guard:
    root: /home/zuul/.shard-jobs/builds/shard-3f2a9c01b7d4/venv-from
    service_version:
      path: nova/objects/service.py
      pattern: '^SERVICE_VERSION = (\d+)$'
    minimum: "74"
    service: nova-compute
    what: the upgrade's "from" (nova 31.0.0)
  register: skew
"""

RETURN = r"""
refusal:
  description: The one line the job fails with, or an empty string when nothing is refused.
  returned: always
  type: str
  sample: >-
    this change alters the nova database schema; a shard cannot test it: a job that deploys
    its own databases
service_version:
  description: The version read, or null when none was (no I(service_version), or not found).
  returned: always
  type: int
  sample: 72
differs:
  description: Whether any migration file was added, removed or changed (false without I(database)).
  returned: always
  type: bool
added:
  description: Files of I(src) that the reference does not have (paths relative to the tree).
  returned: always
  type: list
  elements: str
  sample: [nova/db/main/migrations/versions/0123456789ab_add_x.py]
removed:
  description: Files of the reference that I(src) does not have.
  returned: always
  type: list
  elements: str
modified:
  description: Files of both whose content differs.
  returned: always
  type: list
  elements: str
compared:
  description: Number of migration files of I(src) (0 without I(database)).
  returned: always
  type: int
reference:
  description:
    - Where the files of what the cloud runs were read; C(source) is C(commit)
      (C(where) the commit id), C(tag) (the git ref) or C(package index) (the
      source release's file name).
    - Empty without I(database), or when I(src) lacks the commit the cloud runs.
  returned: always
  type: dict
  sample:
    version: 32.0.0
    source: tag
    where: 32.0.0
cloud_behind:
  description:
    - Whether the migrations differ from those of the commit the cloud runs
      while the change's own commit leaves them as its parent has them (the
      branch moved past the cloud's commit; the refusal then says the cloud
      must be upgraded).
  returned: always
  type: bool
"""

from ansible.module_utils import shard_phases
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.shard_migrations import (
    MigrationsError,
    MissingCommit,
    cloud_behind,
    compare,
    is_commit,
    refusal,
    unstated_release,
)
from ansible.module_utils.shard_versions import parse_bound, service_version, skew_refusal

NOT_COMPARED = dict(
    differs=False, added=[], removed=[], modified=[], compared=0, reference={}, cloud_behind=False
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path"),
            database=dict(
                type="dict",
                options=dict(
                    name=dict(type="str", required=True),
                    migrations=dict(type="list", elements="str", required=True),
                    instead=dict(type="str", required=True),
                ),
            ),
            version=dict(type="str"),
            package=dict(type="str"),
            ref=dict(type="str", default=""),
            commit=dict(type="str", default=""),
            python=dict(type="str", default="python3"),
            cache_dir=dict(type="path", default=""),
            service_version=dict(
                type="dict",
                options=dict(
                    path=dict(type="str", required=True),
                    pattern=dict(type="str", required=True),
                ),
            ),
            root=dict(type="path"),
            minimum=dict(type="str", default=""),
            maximum=dict(type="str", default=""),
            service=dict(type="str", default=""),
            what=dict(type="str", default=""),
            phase=shard_phases.PHASE_OPTION,
        ),
        required_by=dict(database=("src", "version", "package")),
        supports_check_mode=True,
    )
    p = module.params
    database = p["database"]
    root = p["root"] or p["src"]
    if p["service_version"] and not root:
        module.fail_json(msg="service_version needs root or src")

    # From here on the phase has started: a refusal leaves it unfinished.
    shard_phases.module_event(module, "start")
    result = dict(NOT_COMPARED, changed=False, service_version=None)
    if database and not p["version"]:
        result["refusal"] = unstated_release(p["package"], database["name"])
        module.exit_json(**result)
    bounds = dict(minimum=None, maximum=None)
    if p["service_version"]:
        for name in bounds:
            try:
                bounds[name] = parse_bound(p[name])
            except ValueError:
                module.fail_json(msg=f"{name} is not a service version: {p[name]!r}")
    if p["commit"] and not is_commit(p["commit"]):
        module.fail_json(
            msg=f"commit is not a full commit id (40 hexadecimal digits): {p['commit']!r}"
        )
    missing = ""
    if database:
        try:
            result.update(
                compare(
                    p["src"],
                    database["migrations"],
                    p["version"],
                    p["package"],
                    module.run_command,
                    ref=p["commit"] or p["ref"],
                    python=p["python"],
                    cache_dir=p["cache_dir"],
                )
            )
        except MissingCommit as exc:
            missing = str(exc)
        except MigrationsError as exc:
            module.fail_json(msg=str(exc))
    version = None
    if p["service_version"]:
        spec = p["service_version"]
        version = service_version(root, spec["path"], spec["pattern"])
    # The service version first, as the role's tasks checked it.
    refused = skew_refusal(
        p["service"],
        bounds["minimum"],
        version,
        p["what"],
        maximum=bounds["maximum"],
        project=p["package"] or "",
    )
    if not refused:
        refused = missing
    if not refused and result["cloud_behind"]:
        refused = cloud_behind(p["package"], p["commit"], database["name"])
    if not refused and result["differs"]:
        refused = refusal(database["name"], database["instead"])
    result.update(changed=False, service_version=version, refusal=refused)
    if refused:
        # The phase stays unfinished: the change was stopped in it.
        module.exit_json(**result)
    shard_phases.exit_json(module, **result)


if __name__ == "__main__":
    main()
