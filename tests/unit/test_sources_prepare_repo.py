"""./shard run --src: the prepared repository is the tree's state, as a Zuul merger's would be.

Its committed state plus every uncommitted change: modified tracked files and
new files not yet added (a new database migration must reach the guard), not
the files the tree ignores; the source tree's own index is left alone.
"""

import os
import subprocess

import pytest
from unit_helpers import GIT_ENV

from shard_jobs import sources


def _git(cwd, *args):
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=GIT_ENV,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _source(tmp_path):
    src = tmp_path / "src"
    (src / "pkg" / "migrations").mkdir(parents=True)
    (src / "pkg" / "migrations" / "001_initial.py").write_text("one\n")
    (src / "pkg" / "code.py").write_text("old\n")
    (src / ".gitignore").write_text("*.pyc\nbuild/\n")
    _git(src, "init", "-q", "-b", "master")
    _git(src, "add", "-A")
    _git(src, "commit", "-q", "-m", "initial")
    return src


def test_uncommitted_changes_and_new_files_are_prepared(tmp_path):
    src = _source(tmp_path)
    (src / "pkg" / "code.py").write_text("new\n")
    (src / "pkg" / "migrations" / "002_new.py").write_text("two\n")
    (src / "pkg" / "code.pyc").write_bytes(b"ignored")
    (src / "build").mkdir()
    (src / "build" / "out.txt").write_text("ignored\n")
    before = _git(src, "status", "--porcelain")

    dest = tmp_path / "work" / "src"
    sources.prepare_repo(src, dest)

    assert (dest / "pkg" / "code.py").read_text() == "new\n"
    assert (dest / "pkg" / "migrations" / "002_new.py").read_text() == "two\n"
    assert not (dest / "pkg" / "code.pyc").exists()
    assert not (dest / "build").exists()
    # Committed, as a merger's checkout: a clean tree, one commit on top.
    assert _git(dest, "status", "--porcelain") == ""
    assert _git(dest, "log", "--format=%s").splitlines() == [
        "Local changes under test",
        "initial",
    ]
    # The source tree is untouched (nothing added to its index).
    assert _git(src, "status", "--porcelain") == before


def test_a_clean_tree_is_prepared_as_committed(tmp_path):
    src = _source(tmp_path)
    dest = tmp_path / "work" / "src"
    sources.prepare_repo(src, dest)
    assert _git(dest, "rev-parse", "HEAD") == _git(src, "rev-parse", "HEAD")
    assert _git(dest, "status", "--porcelain") == ""


def _owned_by_another_user(path):
    """chown the tree to nobody: git then calls it of 'dubious ownership'."""
    subprocess.run(["chown", "-R", "65534:65534", str(path)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_tree_owned_by_another_user_is_prepared(tmp_path):
    src = _source(tmp_path)
    (src / "pkg" / "code.py").write_text("new\n")
    (src / "pkg" / "untracked.py").write_text("added\n")
    _owned_by_another_user(src)
    # What the fix must overcome: plain git refuses the tree.
    refused = subprocess.run(["git", "status"], cwd=src, capture_output=True, text=True)
    assert refused.returncode != 0 and "dubious ownership" in refused.stderr

    dest = tmp_path / "work" / "src"
    sources.prepare_repo(src, dest)

    assert (dest / "pkg" / "code.py").read_text() == "new\n"
    assert (dest / "pkg" / "untracked.py").read_text() == "added\n"
    assert _git(dest, "status", "--porcelain") == ""
    # The user's git configuration did not learn to trust the tree.
    trusted = subprocess.run(
        ["git", "config", "--global", "--get-all", "safe.directory"],
        capture_output=True,
        text=True,
    ).stdout
    assert str(src) not in trusted


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_plain_tree_owned_by_another_user_is_prepared(tmp_path):
    src = tmp_path / "plain"
    src.mkdir()
    (src / "code.py").write_text("plain\n")
    _owned_by_another_user(src)
    dest = tmp_path / "work" / "src"
    sources.prepare_repo(src, dest)
    assert (dest / "code.py").read_text() == "plain\n"
    assert _git(dest, "status", "--porcelain") == ""


def test_a_broken_git_tree_is_one_line(tmp_path):
    src = tmp_path / "broken"
    src.mkdir()
    (src / ".git").write_text("gitdir: /nonexistent/worktree\n")
    with pytest.raises(sources.RunError) as err:
        sources.prepare_repo(src, tmp_path / "work" / "src")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"cannot read the source tree {src} with git clone: ")
    assert "usage:" not in message


def test_src_names_a_project_and_an_existing_tree(tmp_path):
    assert sources.local_trees([f"openstack/nova={tmp_path}"]) == {"openstack/nova": tmp_path}
    with pytest.raises(sources.RunError, match="^bad --src 'nova=/x': expected PROJECT=PATH"):
        sources.local_trees(["nova=/x"])
    with pytest.raises(sources.RunError, match=f"^missing source tree: {tmp_path / 'no'} is not"):
        sources.local_trees([f"openstack/nova={tmp_path / 'no'}"])


def test_a_cached_release_of_loose_objects_is_packed_once(tmp_path, monkeypatch):
    """Every run clones the cached release: a cache left with one loose object
    per file (as releases were cached before) is packed on its next use, and a
    packed one is used as it is (no fetch, no git command)."""
    monkeypatch.setattr(sources.paths, "HOME", tmp_path)
    cached = tmp_path / "cache" / "sources" / "nova-1.0.0"
    cached.parent.mkdir(parents=True)
    _source(tmp_path).rename(cached)
    objects = cached / ".git" / "objects"
    loose = [p for p in objects.glob("??/*") if p.is_file()]
    assert loose and not list((objects / "pack").glob("*.pack"))
    monkeypatch.setattr(sources, "_fetch_release", lambda *a: pytest.fail("fetched again"))

    assert sources.release_source("nova", "1.0.0") == cached

    assert list((objects / "pack").glob("*.pack"))
    assert not [p for p in objects.glob("??/*") if p.is_file()]
    assert _git(cached, "status", "--porcelain") == ""
    monkeypatch.setattr(sources, "_pack", lambda repo: pytest.fail("packed again"))
    assert sources.release_source("nova", "1.0.0") == cached
    dest = tmp_path / "work" / "nova"
    sources.prepare_repo(cached, dest)
    assert (dest / "pkg" / "code.py").read_text() == "old\n"
