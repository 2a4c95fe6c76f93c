# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""A source tree's database migrations against a release's: the one home of the rule.

Lists the files under a project's migration directories in the change's
tree and in what the cloud runs: the commit its services were built from
when it follows a branch (the credentials' commits; that commit in the
tree's own git repository, nothing else), else its release (its tag in that
repository, else its source release from the package index, cached). Says
which were added, removed or changed (compared by git blob id, so that a
commit's blob, a file and an sdist member compare alike); compiled files are
ignored. Also the lines that refuse such a change, and one whose repository
lacks the commit the cloud runs.

Used by library/shard_guard.py (as
``ansible.module_utils.shard_migrations``) and the unit tests. Standard
library only, no import of another module_utils file.
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

IGNORED_SUFFIXES = (".pyc", ".pyo")


# A full commit id: the credentials' commits hold these, and only a full id
# names one commit whatever the repository holds.
COMMIT_ID = re.compile(r"[0-9a-f]{40}", re.IGNORECASE)


class MigrationsError(Exception):
    """The comparison cannot be made (its message is the module's one line)."""


class MissingCommit(Exception):
    """The change's repository lacks the commit the cloud runs: a refusal, not a failure
    (its message is the refusal's one line)."""


def is_commit(ref):
    """Whether ref is a full commit id: the commit a cloud that follows a branch runs, whose
    tree alone is the reference (a release's source distribution is not that commit)."""
    return bool(COMMIT_ID.fullmatch(ref or ""))


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


def _own_repository(src):
    """Whether src is the top of a git repository (not a tree that sits in another's)."""
    top = git(src, "rev-parse", "--show-toplevel")
    return top is not None and os.path.realpath(top.strip()) == os.path.realpath(src)


def in_history(src, commit):
    """Whether commit is src's HEAD or one of its ancestors, in src's own repository.

    An object the repository merely holds is not enough: a change based on an
    older commit lacks the migrations that came after it, whatever else was
    fetched."""
    if not _own_repository(src):
        return False
    proc = subprocess.run(
        ["git", "-C", src, "merge-base", "--is-ancestor", commit, "HEAD"], capture_output=True
    )
    return proc.returncode == 0


def ref_files(src, ref, dirs):
    """{relative path: blob id} under dirs at a git ref of src, or None without that ref."""
    if not _own_repository(src):
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


def download_sdist(run_command, python, package, version, directory):
    """(path, None) of the source release pip downloaded into directory, or (None, why).

    run_command(argv) -> (rc, stdout, stderr), as AnsibleModule.run_command."""
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
    rc, out, err = run_command(cmd)
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


def migration_dirs(paths):
    """The directories to compare, relative to the tree's top; MigrationsError when a path
    leaves the tree or none is named."""
    bad = [d for d in paths if os.path.isabs(d) or ".." in d.split("/")]
    if bad:
        raise MigrationsError(f"paths must be relative to the tree: {', '.join(bad)}")
    dirs = [d.strip("/") for d in paths if d.strip("/")]
    if not dirs:
        raise MigrationsError("paths names no directory")
    return dirs


def _reference(src, dirs, version, package, ref, python, cache_dir, run_command):
    """({path: blob id} of what the cloud runs, where they were read).

    ref: a full commit id (the commit the cloud runs: its tree, else MissingCommit),
    another git ref, or empty for the tag of version (else its source release)."""
    if is_commit(ref):
        found = ref_files(src, ref, dirs) if in_history(src, ref) else None
        if found is None:
            raise MissingCommit(missing_commit(package, ref))
        return found, {"version": version, "source": "commit", "where": ref}
    ref = ref or version
    found = ref_files(src, ref, dirs)
    if found is not None:
        return found, {"version": version, "source": "tag", "where": ref}
    tmp = None
    cache = cache_dir
    if not cache:
        tmp = cache = tempfile.mkdtemp(prefix="shard-migrations-")
    try:
        sdist = find_sdist(cache, package, version)
        if sdist is None:
            sdist, error = download_sdist(run_command, python, package, version, cache)
            if sdist is None:
                raise MigrationsError(
                    f"cannot read the migrations of {package} {version}: "
                    f"{src} has no ref {ref} and the package index gave no source "
                    f"release ({error})"
                )
        try:
            found = sdist_files(sdist, dirs)
        except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
            raise MigrationsError(f"cannot read the source release {sdist}: {exc}") from None
        return found, {
            "version": version,
            "source": "package index",
            "where": os.path.basename(sdist),
        }
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def compare(src, paths, version, package, run_command, ref="", python="python3", cache_dir=""):
    """Whether src's migrations under paths differ from those of what the cloud runs:
    package's release version, or the commit ref when it is a full commit id.

    Returns {differs, added, removed, modified, compared, reference} (the files as paths
    relative to the tree; compared: the number of src's files; reference: where the
    cloud's were read). MigrationsError when that cannot be told; MissingCommit when
    ref is a commit not in src's history (HEAD and its ancestors). A download only
    fills cache_dir (a temporary directory when empty)."""
    dirs = migration_dirs(paths)
    if not os.path.isdir(src):
        raise MigrationsError(f"missing source tree: {src} is not a directory")
    reference, where = _reference(src, dirs, version, package, ref, python, cache_dir, run_command)
    candidate = tree_files(src, dirs)
    if not candidate and not reference:
        # Rather than pass a change because the profile looks in the wrong place.
        raise MigrationsError(
            f"no migration files under {', '.join(dirs)} in {src} nor in "
            f"{package} {version}: are the paths right?"
        )
    added = sorted(set(candidate) - set(reference))
    removed = sorted(set(reference) - set(candidate))
    modified = sorted(k for k in set(candidate) & set(reference) if candidate[k] != reference[k])
    differs = bool(added or removed or modified)
    return {
        "differs": differs,
        "added": added,
        "removed": removed,
        "modified": modified,
        "compared": len(candidate),
        "reference": where,
        "cloud_behind": (
            differs and where["source"] == "commit" and _parent_has_them(src, dirs, candidate)
        ),
    }


def _parent_has_them(src, dirs, candidate):
    """Whether the change leaves the migrations as its parent has them (the tree, its
    uncommitted files included, alike HEAD^ under dirs): then the differences with the
    commit the cloud runs are the branch's, which moved on since the cloud's last
    upgrade, not the change's. (Zuul merges a change onto its branch's tip: HEAD^ is that
    tip, or the change's parent.)"""
    return ref_files(src, "HEAD^", dirs) == candidate


def unstated_release(package, database):
    """The one line that stops a job whose credentials do not say which release of
    package the cloud runs: without it the guard cannot compare."""
    return (
        f"the target cloud's credentials do not say which {package} release it runs"
        f" (versions.{package}): the migration guard cannot tell whether this change alters"
        f" the {database} database schema; the cloud's operator adds it"
        ' (README.rst, "Using the jobs")'
    )


def missing_commit(package, commit):
    """The one line that stops a change whose repository lacks the commit the cloud runs
    (the credentials' commits): its migrations cannot be compared with the cloud's."""
    return (
        f"this cloud runs {package} at commit {commit}, which the change's repository lacks"
        f" (commits.{package} in its credentials): the change must be rebased onto (or past)"
        " the commit the cloud runs"
    )


def cloud_behind(package, commit, database):
    """The one line that stops a change, itself without migrations, whose branch has
    migrations the commit the cloud runs lacks: the cloud, not the change, must move."""
    return (
        f"this cloud runs {package} at commit {commit}, and the change's branch has {database}"
        " database migrations since, which the cloud lacks (the change itself adds none): the"
        " cloud must be upgraded past them before changes of this branch meet it"
    )


def refusal(database, instead):
    """The one line that stops a change whose migrations differ (database: its name;
    instead: what to use, the profile's database.instead)."""
    return f"this change alters the {database} database schema; a shard cannot test it: {instead}"
