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

import glob
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import zipfile

from ansible.module_utils.basic import AnsibleModule

IGNORED_SUFFIXES = (".pyc", ".pyo")


def blob_id(data):
    """The git blob id of some content: the same for a file, a tag's blob and an sdist member."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _ignored(path):
    return "__pycache__" in path.split("/") or path.endswith(IGNORED_SUFFIXES)


def _under(path, dirs):
    return any(path == d or path.startswith(d + "/") for d in dirs)


def tree_files(src, dirs):
    """{relative path: blob id} of the files under dirs in a tree on disk."""
    found = {}
    for d in dirs:
        top = os.path.join(src, d)
        for root, subdirs, files in os.walk(top):
            subdirs[:] = [s for s in subdirs if s != "__pycache__"]
            for name in files:
                full = os.path.join(root, name)
                rel = os.path.relpath(full, src).replace(os.sep, "/")
                if _ignored(rel) or not os.path.isfile(full):
                    continue
                with open(full, "rb") as f:
                    found[rel] = blob_id(f.read())
    return found


def git(src, *args):
    proc = subprocess.run(["git", "-C", src, *args], capture_output=True)
    return proc.stdout.decode() if proc.returncode == 0 else None


def ref_files(src, ref, dirs):
    """{relative path: blob id} under dirs at a git ref of src, or None without that ref."""
    top = git(src, "rev-parse", "--show-toplevel")
    # Only the tree's own repository (not one it happens to sit in).
    if top is None or os.path.realpath(top.strip()) != os.path.realpath(src):
        return None
    if git(src, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}") is None:
        return None
    out = git(src, "ls-tree", "-r", "-z", "--full-tree", f"{ref}^{{commit}}", "--", *dirs)
    if out is None:
        return None
    found = {}
    for line in out.split("\0"):
        if not line:
            continue
        meta, _, path = line.partition("\t")
        mode, kind, blob = meta.split()
        if kind == "blob" and not _ignored(path):
            found[path] = blob
    return found


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def find_sdist(directory, package, version):
    """A source release of package==version in directory (either spelling of its name)."""
    if not os.path.isdir(directory):
        return None
    want = _canonical(package)
    for path in sorted(glob.glob(os.path.join(directory, "*"))):
        name = os.path.basename(path)
        for ext in (".tar.gz", ".zip"):
            if name.endswith(ext):
                stem = name[: -len(ext)]
                dist, sep, ver = stem.rpartition("-")
                if sep and ver == version and _canonical(dist) == want:
                    return path
    return None


def download_sdist(module, python, package, version, directory):
    os.makedirs(directory, exist_ok=True)
    cmd = [
        python,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--disable-pip-version-check",
        "--dest",
        directory,
        f"{package}=={version}",
    ]
    rc, out, err = module.run_command(cmd)
    if rc != 0:
        lines = [line for line in (err or out).strip().splitlines() if line.strip()]
        return None, lines[-1] if lines else f"pip exited with {rc}"
    path = find_sdist(directory, package, version)
    return path, None if path else "pip downloaded no source release"


def sdist_files(path, dirs):
    """{relative path: blob id} under dirs in a source release (its top directory stripped)."""
    found = {}

    def add(name, read):
        parts = name.split("/", 1)
        if len(parts) == 2 and _under(parts[1], dirs) and not _ignored(parts[1]):
            found[parts[1]] = blob_id(read())

    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.is_dir():
                    add(info.filename, lambda info=info: z.read(info))
    else:
        with tarfile.open(path) as tar:
            for member in tar:
                if member.isfile():
                    add(member.name, lambda member=member: tar.extractfile(member).read())
    return found


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
    src = p["src"]
    bad = [d for d in p["paths"] if os.path.isabs(d) or ".." in d.split("/")]
    if bad:
        module.fail_json(msg=f"paths must be relative to the tree: {', '.join(bad)}")
    dirs = [d.strip("/") for d in p["paths"] if d.strip("/")]
    if not dirs:
        module.fail_json(msg="paths names no directory")
    if not os.path.isdir(src):
        module.fail_json(msg=f"missing source tree: {src} is not a directory")

    ref = p["ref"] or p["version"]
    reference = ref_files(src, ref, dirs)
    if reference is not None:
        where = {"version": p["version"], "source": "tag", "where": ref}
    else:
        tmp = None
        cache = p["cache_dir"]
        if not cache:
            tmp = cache = tempfile.mkdtemp(prefix="shard-migrations-")
        try:
            sdist = find_sdist(cache, p["package"], p["version"])
            if sdist is None:
                sdist, error = download_sdist(
                    module, p["python"], p["package"], p["version"], cache
                )
                if sdist is None:
                    module.fail_json(
                        msg=f"cannot read the migrations of {p['package']} {p['version']}: "
                        f"{src} has no ref {ref} and the package index gave no source "
                        f"release ({error})"
                    )
            try:
                reference = sdist_files(sdist, dirs)
            except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
                module.fail_json(msg=f"cannot read the source release {sdist}: {exc}")
            where = {
                "version": p["version"],
                "source": "package index",
                "where": os.path.basename(sdist),
            }
        finally:
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)

    candidate = tree_files(src, dirs)
    if not candidate and not reference:
        # Rather than pass a change because the profile looks in the wrong place.
        module.fail_json(
            msg=f"no migration files under {', '.join(dirs)} in {src} nor in "
            f"{p['package']} {p['version']}: are the paths right?"
        )
    added = sorted(set(candidate) - set(reference))
    removed = sorted(set(reference) - set(candidate))
    modified = sorted(k for k in set(candidate) & set(reference) if candidate[k] != reference[k])
    module.exit_json(
        changed=False,
        differs=bool(added or removed or modified),
        added=added,
        removed=removed,
        modified=modified,
        compared=len(candidate),
        reference=where,
    )


if __name__ == "__main__":
    main()
