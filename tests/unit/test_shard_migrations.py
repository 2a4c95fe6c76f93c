"""The migration rule (module_utils/shard_migrations.py) through shard_guard: a change's
migrations against a release's, in real git trees and sdists."""

import io
import subprocess
import sys
import tarfile

import pytest
import shard_guard as module
from ansible.module_utils import shard_migrations as rules
from unit_helpers import GIT_ENV

VERSIONS = "glance/db/sqlalchemy/alembic_migrations/versions"
RELEASE = {
    f"{VERSIONS}/__init__.py": "",
    f"{VERSIONS}/liberty_initial.py": "def upgrade():\n    create()\n",
    f"{VERSIONS}/2024_1_expand01_add_cache_tables.py": "def upgrade():\n    add()\n",
    "glance/api/v2/images.py": "def index():\n    return []\n",
}


def git(repo, *args):
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "commit.gpgsign=false", *args],
        env=GIT_ENV,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def write(tree, files):
    for rel, text in files.items():
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def repo(tmp_path):
    """glance with release 33.0.0 tagged; the working tree is the change under test."""
    tree = tmp_path / "glance"
    tree.mkdir()
    git(tree, "init", "-q", "-b", "master")
    write(tree, RELEASE)
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "glance 33.0.0")
    git(tree, "tag", "33.0.0")
    return tree


def sdist_bytes(files, top="glance-33.0.0"):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def args(src, paths=(VERSIONS,), **extra):
    """shard_guard's options for the migration rule alone (no service version)."""
    database = {"name": "glance", "instead": "a job of its own", "migrations": list(paths)}
    out = {"src": str(src), "database": database, "version": "33.0.0", "package": "glance"}
    out.update(extra)
    return out


def test_a_change_without_migrations_does_not_differ(run_module, repo):
    write(repo, {"glance/api/v2/images.py": "def index():\n    return ['changed']\n"})
    git(repo, "commit", "-qam", "a change to the API only")
    result = run_module(module, args(repo))
    assert result["changed"] is False
    assert result["differs"] is False
    assert result["added"] == result["removed"] == result["modified"] == []
    assert result["compared"] == 3
    assert result["reference"] == {"version": "33.0.0", "source": "tag", "where": "33.0.0"}


def test_a_new_migration_file_differs(run_module, repo):
    new = f"{VERSIONS}/2026_2_expand01_add_column.py"
    write(repo, {new: "def upgrade():\n    add_column()\n"})
    result = run_module(module, args(repo))
    assert result["differs"] is True
    assert result["added"] == [new]
    assert result["removed"] == result["modified"] == []


def test_a_changed_and_a_removed_migration_differ(run_module, repo):
    write(repo, {f"{VERSIONS}/liberty_initial.py": "def upgrade():\n    create_more()\n"})
    (repo / VERSIONS / "2024_1_expand01_add_cache_tables.py").unlink()
    result = run_module(module, args(repo))
    assert result["differs"] is True
    assert result["modified"] == [f"{VERSIONS}/liberty_initial.py"]
    assert result["removed"] == [f"{VERSIONS}/2024_1_expand01_add_cache_tables.py"]


def test_compiled_files_are_ignored(run_module, repo):
    write(repo, {f"{VERSIONS}/__pycache__/liberty_initial.cpython-311.pyc": "bytecode"})
    write(repo, {f"{VERSIONS}/stray.pyc": "bytecode"})
    assert run_module(module, args(repo))["differs"] is False


def test_several_directories(run_module, repo):
    data = "glance/db/sqlalchemy/alembic_migrations/data_migrations"
    write(repo, {f"{data}/2026_2_migrate01_fill.py": "def migrate():\n    pass\n"})
    result = run_module(module, args(repo, paths=[VERSIONS, data + "/"]))
    assert result["added"] == [f"{data}/2026_2_migrate01_fill.py"]


def test_an_explicit_ref(run_module, repo):
    new = f"{VERSIONS}/2026_2_expand01_add_column.py"
    write(repo, {new: "x = 1\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a migration")
    # Compared with the commit that has it: no difference.
    head = git(repo, "rev-parse", "HEAD")
    assert run_module(module, args(repo, ref=head))["differs"] is False
    assert run_module(module, args(repo))["added"] == [new]


def test_check_mode_gives_the_same_answer(run_module, repo):
    write(repo, {f"{VERSIONS}/2026_2_expand01_add_column.py": "x = 1\n"})
    result = run_module(module, args(repo), check_mode=True)
    assert result["changed"] is False and result["differs"] is True


def test_without_the_tag_the_source_release_in_the_cache(run_module, tmp_path):
    # A plain tree (no git): the reference is the release's sdist.
    tree = tmp_path / "tree"
    write(tree, RELEASE)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "glance-33.0.0.tar.gz").write_bytes(sdist_bytes(RELEASE))
    result = run_module(module, args(tree, cache_dir=str(cache)))
    assert result["differs"] is False
    assert result["reference"]["source"] == "package index"
    assert result["reference"]["where"] == "glance-33.0.0.tar.gz"
    write(tree, {f"{VERSIONS}/2026_2_expand01_add_column.py": "x = 1\n"})
    assert run_module(module, args(tree, cache_dir=str(cache)))["differs"] is True


def test_the_source_release_is_downloaded_with_pip(run_module, tmp_path):
    """No tag, nothing cached: `python -m pip download` fetches the sdist (a fake pip here)."""
    tree = tmp_path / "tree"
    write(tree, RELEASE)
    sdist = tmp_path / "index" / "glance-33.0.0.tar.gz"
    sdist.parent.mkdir()
    sdist.write_bytes(sdist_bytes(RELEASE, top="glance-33.0.0"))
    log = tmp_path / "pip-calls"
    fake = tmp_path / "python"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'while [ $# -gt 0 ]; do [ "$1" = --dest ] && dest=$2; shift; done\n'
        f'cp {sdist} "$dest/"\n'
    )
    fake.chmod(0o755)
    cache = tmp_path / "cache"
    result = run_module(module, args(tree, cache_dir=str(cache), python=str(fake)))
    assert result["differs"] is False
    assert "download" in log.read_text() and "glance==33.0.0" in log.read_text()
    # Cached: a second run does not download again.
    run_module(module, args(tree, cache_dir=str(cache), python=str(fake)))
    assert len(log.read_text().splitlines()) == 1


def test_no_tag_and_no_source_release_fails(run_module, tmp_path):
    tree = tmp_path / "tree"
    write(tree, RELEASE)
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'ERROR: No matching distribution found' >&2\nexit 1\n")
    fake.chmod(0o755)
    result = run_module(module, args(tree, cache_dir=str(tmp_path / "c"), python=str(fake)))
    assert result["failed"] is True
    assert "has no ref 33.0.0" in result["msg"]
    assert "No matching distribution found" in result["msg"]


def test_a_tree_inside_another_repository_uses_the_source_release(run_module, repo, tmp_path):
    # A plain tree nested in a git repository that has the tag: not its tag.
    nested = repo / "vendored"
    write(nested, RELEASE)
    write(nested, {f"{VERSIONS}/2026_2_expand01_add_column.py": "x = 1\n"})
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "glance-33.0.0.tar.gz").write_bytes(sdist_bytes(RELEASE))
    result = run_module(module, args(nested, cache_dir=str(cache)))
    assert result["reference"]["source"] == "package index"
    assert result["added"] == [f"{VERSIONS}/2026_2_expand01_add_column.py"]


def test_paths_that_hold_nothing_fail(run_module, repo):
    result = run_module(module, args(repo, paths=["glance/no/such/dir"]))
    assert result["failed"] is True
    assert "are the paths right" in result["msg"]


@pytest.mark.parametrize("paths", [["../elsewhere"], ["/etc"], ["/"]])
def test_paths_outside_the_tree_are_refused(run_module, repo, paths):
    result = run_module(module, args(repo, paths=paths))
    assert result["failed"] is True


def test_missing_source_tree(run_module, tmp_path):
    result = run_module(module, args(tmp_path / "nothing"))
    assert result["failed"] is True
    assert "missing source tree" in result["msg"]


def test_blob_ids_are_git_blob_ids(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"hello\n")
    out = subprocess.run(
        ["git", "hash-object", str(path)], capture_output=True, text=True, check=True
    )
    assert rules.blob_id(b"hello\n") == out.stdout.strip()


def test_sdist_name_spellings(tmp_path):
    (tmp_path / "openstack_placement-16.0.0.tar.gz").write_bytes(b"")
    (tmp_path / "openstack_placement-16.0.1.tar.gz").write_bytes(b"")
    found = rules.find_sdist(str(tmp_path), "openstack-placement", "16.0.0")
    assert found and found.endswith("openstack_placement-16.0.0.tar.gz")
    assert rules.find_sdist(str(tmp_path), "placement", "16.0.0") is None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
