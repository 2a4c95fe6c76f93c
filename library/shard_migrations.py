# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: do a source tree's database migrations differ from a release's?"""

DOCUMENTATION = r"""
---
module: shard_migrations
short_description: Compare the database migrations of a source tree with those of a release
description:
  - Lists the files under I(paths) (the directories where a project keeps its
    database migrations) in the source tree I(src), and in the source of
    release I(version) of the project, and says whether they differ (a file
    added, removed or changed, compared by content).
  - The release's files come from the tag I(ref) (by default I(version)
    itself) of the git repository I(src), as Zuul prepares it with the
    upstream tags; when the repository has no such tag, from the source
    release (sdist) of I(package) on the package index, downloaded once
    into I(cache_dir).
  - Compiled files (C(__pycache__), C(*.pyc), C(*.pyo)) are ignored.
  - The rule is module_utils/shard_migrations.py's, which C(shard_guard)
    applies too (the shard_guard role's one module, with the rest of the
    guard's step).
  - Opens no database connection. Reports C(changed=false) and runs in check
    mode (a download only fills the cache).
options:
  src:
    description: The source tree under test (the change), a git repository or a plain tree.
    type: path
    required: true
  paths:
    description: Directories of the migrations, relative to the tree's top.
    type: list
    elements: str
    required: true
  version:
    description: The release to compare with, for example the one the target cloud runs.
    type: str
    required: true
  package:
    description: The project's distribution on the package index (for the source release).
    type: str
    required: true
  ref:
    description: Git ref of I(src) holding the release's tree; empty for I(version) as a tag.
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
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Compare glance's migrations with those of the release the cloud runs
  shard_migrations:
    src: "{{ ansible_user_dir }}/src/opendev.org/openstack/glance"
    paths:
      - glance/db/sqlalchemy/alembic_migrations/versions
    version: 33.0.0
    package: glance
    cache_dir: "{{ ansible_user_dir }}/.cache/shard-jobs/sdists"
  register: migrations

- name: Stop when they differ
  ansible.builtin.fail:
    msg: this change alters the glance database schema
  when: migrations.differs
"""

RETURN = r"""
differs:
  description: Whether any migration file was added, removed or changed.
  returned: always
  type: bool
added:
  description: Files of I(src) that the release does not have (paths relative to the tree).
  returned: always
  type: list
  elements: str
  sample: [glance/db/sqlalchemy/alembic_migrations/versions/2026_2_expand01_add_x.py]
removed:
  description: Files of the release that I(src) does not have.
  returned: always
  type: list
  elements: str
modified:
  description: Files of both whose content differs.
  returned: always
  type: list
  elements: str
compared:
  description: Number of migration files of I(src).
  returned: always
  type: int
reference:
  description: Where the release's files were read.
  returned: always
  type: dict
  sample:
    version: 33.0.0
    source: tag
    where: 33.0.0
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.shard_migrations import MigrationsError, compare


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            paths=dict(type="list", elements="str", required=True),
            version=dict(type="str", required=True),
            package=dict(type="str", required=True),
            ref=dict(type="str", default=""),
            python=dict(type="str", default="python3"),
            cache_dir=dict(type="path", default=""),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = compare(
            p["src"],
            p["paths"],
            p["version"],
            p["package"],
            module.run_command,
            ref=p["ref"],
            python=p["python"],
            cache_dir=p["cache_dir"],
        )
    except MigrationsError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
