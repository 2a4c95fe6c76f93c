# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: a build's directories, links and files, laid out in one module run."""

DOCUMENTATION = r"""
---
module: shard_files
short_description: Lay out directories, symbolic links and files with given content in one run
description:
  - Removes what I(absent) lists, then creates directories (and fixes
    their mode), points symbolic links at their targets and writes files
    with the content and mode given, all in one module process. A step
    that lays out a workspace (a build's directories, its configuration
    rendered on the controller, a copy with the secrets masked) then costs
    one process, where C(file), C(copy) and C(template) cost one or two per
    path.
  - A file is written only when its content or mode differs, to a temporary
    file created with mode 0600 in the same directory and renamed into
    place, so that a secret is never readable by others, not even for a
    moment, and a reader never sees half a file.
  - Returns the SHA-1 of each file's content (what C(stat) reports as its
    checksum), so that a caller can fingerprint what it wrote without
    another task.
  - Idempotent; supports check mode (nothing is written, C(changed) says
    what would change).
options:
  absent:
    description:
      - Paths to remove, in this order, before anything else is laid out.
        Each is a file, a symbolic link (removed, not what it points to, also
        when given with a trailing slash) or a directory (removed with
        everything under it). A path already gone is no change. The root and
        mount points are refused; a path that cannot be removed does not
        stop the others, and the module then fails naming each.
    type: list
    elements: path
    default: []
  directories:
    description: Directories to create (with their parents), in this order.
    type: list
    elements: path
    default: []
  directory_mode:
    description: Mode of the directories listed (also set on existing ones).
    type: str
    default: "0700"
  links:
    description: Symbolic links to create or re-point, as C(link path => target).
    type: dict
    default: {}
  files:
    description:
      - Files to write, as C(path => content) (text, written as UTF-8). A
        file's directory must exist or be listed in I(directories).
      - Marked C(no_log), since the content may hold secrets; Ansible masks
        it in any output.
    type: dict
    default: {}
  mode:
    description: Mode of the files written.
    type: str
    default: "0600"
  modes:
    description: Another mode for some of the files, as C(path => mode).
    type: dict
    default: {}
notes:
  - The content travels as a module argument; give the task C(no_log) too
    when it holds secrets.
extends_documentation_fragment:
  - shard.phase
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Lay out the workspace, with the configuration rendered on the controller
  shard_files:
    directories:
      - /home/zuul/build/etc
      - /home/zuul/build/log
      - /home/zuul/build/pylib
    links:
      /home/zuul/build/current: /home/zuul/build/venv
    files:
      /home/zuul/build/etc/nova-compute.conf: >-
        {{ lookup('ansible.builtin.template', 'nova-compute.conf.j2') }}
      /home/zuul/build/pylib/sitecustomize.py: >-
        {{ lookup('ansible.builtin.file', 'sitecustomize.py', rstrip=false) }}
    modes:
      /home/zuul/build/pylib/sitecustomize.py: "0644"
  no_log: true
  register: layout

- name: Remove the build's workspace
  shard_files:
    absent:
      - /home/zuul/build
"""

RETURN = r"""
checksums:
  description: SHA-1 of each file's content, by path (as C(stat) reports a file's checksum).
  returned: always
  type: dict
  sample: {"/home/zuul/build/etc/nova-compute.conf": "0b6f..."}
changed_paths:
  description:
    - The paths removed, and the directories, links and files created or
      changed (or to be, in check mode).
  returned: always
  type: list
  elements: str
"""

import hashlib
import os
import shutil
import stat
import tempfile

from ansible.module_utils import shard_phases
from ansible.module_utils.basic import AnsibleModule


def _mode(module, text, what):
    try:
        return int(str(text), 8)
    except ValueError:
        module.fail_json(msg=f"{what}: mode {text!r} is not an octal number such as 0600")


def _absent(path, check):
    """Whether something was there to remove: a directory with its tree, else the path itself.

    The path is normalised first: "link/" would be the directory a link points to.
    The root and mount points are refused (another file system's content is not a
    build's)."""
    path = os.path.normpath(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if path == os.sep or os.path.ismount(path):
        raise OSError(f"{path} is a mount point: not removed")
    if not check:
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    return True


def _directory(path, mode, check):
    """Whether the directory had to be created or its mode fixed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not check:
            os.makedirs(path, mode=mode, exist_ok=True)
            os.chmod(path, mode)
        return True
    if not stat.S_ISDIR(st.st_mode):
        raise OSError(f"{path} exists and is not a directory")
    if stat.S_IMODE(st.st_mode) != mode:
        if not check:
            os.chmod(path, mode)
        return True
    return False


def _link(path, target, check):
    """Whether the link had to be created or re-pointed."""
    try:
        if os.readlink(path) == target:
            return False
    except FileNotFoundError:
        pass
    except OSError:  # something else than a link is there
        if os.path.isdir(path) and not os.path.islink(path):
            raise OSError(f"{path} exists and is a directory, not a link") from None
    if not check:
        tmp = f"{path}.shard-tmp-{os.getpid()}"
        os.symlink(target, tmp)
        os.replace(tmp, path)
    return True


def _file(path, data, mode, check):
    """Whether the file had to be written or its mode fixed."""
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            same = f.read() == data
    except FileNotFoundError:
        st, same = None, False
    if check or (same and stat.S_IMODE(st.st_mode) == mode):
        return not same or stat.S_IMODE(st.st_mode) != mode
    if not same:
        # Written beside the file and renamed into place: a reader never sees
        # half a file. mkstemp makes it with mode 0600, so that a secret is
        # never readable by others, not even before the chmod below.
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".shard-files-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    os.chmod(path, mode)
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            absent=dict(type="list", elements="path", default=[]),
            directories=dict(type="list", elements="path", default=[]),
            directory_mode=dict(type="str", default="0700"),
            links=dict(type="dict", default={}),
            files=dict(type="dict", default={}, no_log=True),
            mode=dict(type="str", default="0600"),
            modes=dict(type="dict", default={}),
            phase=shard_phases.PHASE_OPTION,
        ),
        supports_check_mode=True,
    )
    # (Its workspace made by the event, when this starts a phase.)
    shard_phases.module_event(module, "start")
    p = module.params
    check = module.check_mode
    changed, checksums = [], {}
    dir_mode = _mode(module, p["directory_mode"], "directory_mode")
    try:
        # Each path whatever happened to another: a teardown removes what it can.
        errors = []
        for path in p["absent"]:
            try:
                if _absent(path, check):
                    changed.append(path)
            except OSError as exc:
                errors.append(str(exc))
        if errors:
            raise OSError("; ".join(errors))
        for path in p["directories"]:
            if _directory(path, dir_mode, check):
                changed.append(path)
        for path, target in p["links"].items():
            if _link(os.path.expanduser(path), str(target), check):
                changed.append(path)
        for path, content in p["files"].items():
            data = str(content).encode("utf-8")
            mode = _mode(module, p["modes"].get(path, p["mode"]), path)
            if _file(os.path.expanduser(path), data, mode, check):
                changed.append(path)
            checksums[path] = hashlib.sha1(data).hexdigest()
    except OSError as exc:
        module.fail_json(msg=f"cannot lay out the files: {exc}", changed_paths=changed)
    shard_phases.exit_json(
        module, changed=bool(changed), changed_paths=changed, checksums=checksums
    )


if __name__ == "__main__":
    main()
