"""A cloud that follows a branch (docs: deployment models), end to end on the isolated cloud.

The isolated cloud comes up again (test_embedded_cloud.py destroyed it) running nova
from a commit of a git repository instead of its release: the nova 34.0.0 source
release with "master" on top, as a site whose cloud follows master has it. Shard
jobs then meet what the cloud runs: a change based on its commit passes; `cloud
upgrade --to` moves the cloud forward in place (migrations, control plane, then the
ordinary compute) to a commit that raises nova's service version, and refuses to
move back; a change based on that commit passes; a change of the older release,
which the cloud now refuses, fails in pre-run before its build, with its one line.
Then glance moves from its release to a commit of its "master" the same way, in
glance's rolling-upgrade order (expand and migrate, the API, then contract): a glance
change based on that commit passes, one of the release is refused before its build.

The tests run in file order and share the cloud and the repositories.
"""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from cloud_helpers import DB_PREFIX, mysql
from job_runs import run_job

from shard_jobs import git_identity, sources
from shard_jobs.rules import processes

NOVA = "openstack/nova"
GLANCE = "openstack/glance"
GLANCE_VERSIONS = "glance/db/sqlalchemy/alembic_migrations/versions"
SERVICE_PY = "nova/objects/service.py"
MIGRATIONS = "nova/db/main/migrations/versions"
# The table master's new migration creates (m2), in the cloud's nova database.
TABLE = "shard_jobs_follow"
GIT_ENV = git_identity.environment(GIT_CONFIG_NOSYSTEM="1")


def git(cwd, *args) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True
    ).stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def add_migration(repo: Path, revision: str, table: str) -> str:
    """A new migration of nova's main database on top of its head (a table of its own);
    its path in the tree."""
    versions = repo / MIGRATIONS
    texts = [f.read_text() for f in versions.glob("*.py")]
    revisions = {re.search(r"^revision = '(\w+)'", t, re.M).group(1) for t in texts}
    downs = {
        m.group(1) for t in texts for m in [re.search(r"^down_revision = '(\w+)'", t, re.M)] if m
    }
    (head,) = revisions - downs
    path = versions / f"{revision}_shard_jobs_{table}.py"
    path.write_text(
        f'"""shard-jobs test: a table of its own."""\n\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f"revision = '{revision}'\ndown_revision = '{head}'\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade():\n"
        f"    op.create_table('{table}', sa.Column('id', sa.Integer, primary_key=True))\n"
    )
    return str(path.relative_to(repo))


def raise_service_version(repo: Path, version: int) -> None:
    """SERVICE_VERSION = version, with its history entry (nova reads the history by it)."""
    path = repo / SERVICE_PY
    text = path.read_text()
    current = int(re.search(r"^SERVICE_VERSION = (\d+)$", text, re.M).group(1))
    entries = "".join(
        f"    # Version {v}: Compute RPC v6.5: (shard-jobs test: master moved on)\n"
        "    {'compute_rpc': '6.5'},\n"
        for v in range(current + 1, version + 1)
    )
    text = text.replace(f"SERVICE_VERSION = {current}\n", f"SERVICE_VERSION = {version}\n", 1)
    end = text.index("\n)\n", text.index("SERVICE_VERSION_HISTORY = ("))
    path.write_text(text[: end + 1] + entries + text[end + 1 :])


@pytest.fixture(scope="module")
def branch(tmp_path_factory) -> dict:
    """nova's "master": the 34.0.0 source release, then m1 (one commit past it) and m2
    (service version 75, where the release has 74, and a new migration)."""
    repo = tmp_path_factory.mktemp("follow") / "nova"
    release = sources.release_source("nova", sources.pinned_version("nova"))
    git(repo.parent, "clone", "-q", str(release), str(repo))
    git(repo, "checkout", "-q", "-B", "master")
    (repo / "README.rst").write_text((repo / "README.rst").read_text() + "\nmaster\n")
    m1 = commit(repo, "master: one commit past the release")
    raise_service_version(repo, 75)
    add_migration(repo, "5a4f0b1c2d3e", TABLE)
    m2 = commit(repo, "master: service version 75, a new table")
    return {
        "repo": repo,
        "m1": m1,
        "m2": m2,
        "release": sources.pinned_version("nova"),
        "package": "nova",
    }


@pytest.fixture(scope="module")
def glance_branch(tmp_path_factory) -> dict:
    """glance's "master": its source release, then g1 with the expand and contract
    migrations of a new table (glance's rolling-upgrade pair)."""
    repo = tmp_path_factory.mktemp("follow-glance") / "glance"
    version = sources.pinned_version("glance")
    git(repo.parent, "clone", "-q", str(sources.release_source("glance", version)), str(repo))
    git(repo, "checkout", "-q", "-B", "master")
    versions = repo / GLANCE_VERSIONS
    (versions / "2026_2_expand01_shard_jobs.py").write_text(
        '"""shard-jobs test: a table of its own."""\n\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        "revision = '2026_2_expand01'\ndown_revision = '2024_1_expand01'\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade():\n"
        f"    op.create_table('{TABLE}', sa.Column('id', sa.Integer, primary_key=True))\n"
    )
    (versions / "2026_2_contract01_shard_jobs.py").write_text(
        '"""shard-jobs test: the contraction that goes with it."""\n\n'
        "revision = '2026_2_contract01'\ndown_revision = '2024_1_contract01'\n"
        "branch_labels = None\ndepends_on = '2026_2_expand01'\n\n\n"
        "def upgrade():\n    pass\n"
    )
    g1 = commit(repo, "master: a new table, expanded and contracted")
    return {"repo": repo, "g1": g1, "release": version, "package": "glance"}


def change_on(branch: dict, base: str, path: Path, edit=None) -> Path:
    """A change for a shard job: a clone of the branch's repository (all its commits, as a
    Zuul-prepared repository has), the change committed on BASE."""
    git(path.parent, "clone", "-q", str(branch["repo"]), str(path))
    git(path, "checkout", "-q", "-B", "change", base)
    version_py = path / branch["package"] / "version.py"
    version_py.write_text(version_py.read_text() + "# a change\n")
    if edit:
        edit(path)
    commit(path, "a change")
    return path


def started_epoch(pid: int) -> float:
    """When a process started, in seconds since the epoch (to the clock tick)."""
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - uptime + processes.start_time(pid) / os.sysconf("SC_CLK_TCK")


def handout(iso) -> dict:
    return yaml.safe_load(Path(iso.manifest["secret_file"]).read_text())


def nova_commands(iso) -> dict[str, str]:
    return {
        s["name"]: " ".join(s["command"])
        for s in iso.manifest["services"]
        if s["name"].startswith("nova-")
    }


def job(iso, tree: Path, name="shard-nova-compute", project=NOVA):
    status, summary, stderr = run_job(name, "--src", f"{project}={tree}", timeout=900, env=iso.env)
    assert summary, stderr
    return status, summary, stderr


def test_up_runs_nova_from_a_commit(iso, branch):
    result = iso.shard("up", "--source", f"{NOVA}={branch['repo']}@{branch['m1']}")
    assert result.rc == 0, result
    iso.timings["from a nova commit"] = result.seconds
    given = handout(iso)
    # The guard's reference: the commit, with the release it is past.
    assert given["commits"] == {"nova": branch["m1"]}
    assert given["versions"]["nova"] == branch["release"]
    # The release's service version both ways (74), and one newer allowed.
    assert given["maximum_service_versions"]["nova-compute"] == (
        given["minimum_service_versions"]["nova-compute"] + 1
    )
    layer = f"-nova-{branch['m1'][:12]}/bin/"
    assert all(layer in command for command in nova_commands(iso).values()), nova_commands(iso)
    status = iso.shard("status")
    assert f"nova follows {branch['repo']} at {branch['m1'][:12]}" in status.stdout, status


def test_up_keeps_the_commit_and_moves_only_by_upgrade(iso, branch):
    result = iso.shard("up")
    assert result.rc == 0, result
    assert handout(iso)["commits"] == {"nova": branch["m1"]}
    result = iso.shard("up", "--source", f"{NOVA}={branch['repo']}@{branch['m2']}")
    assert result.rc == 2, result
    assert result.stderr_lines == [
        f"cloud up: this cloud runs nova {branch['m1'][:12]}: 'cloud upgrade --to "
        "PROJECT=[PATH@]REF' moves it forward, 'cloud destroy' starts again"
    ]


def test_a_change_on_the_clouds_commit_passes(iso, branch, tmp_path):
    status, summary, stderr = job(iso, change_on(branch, branch["m1"], tmp_path / "nova"))
    assert status == 0 and summary["result"] == "SUCCESS", stderr


def test_upgrade_moves_the_cloud_forward_in_place(iso, branch):
    before = iso.services()
    result = iso.shard("upgrade", "--to", f"{NOVA}=no-such-ref")
    assert result.rc == 2, result
    assert result.stderr_lines == [
        f"cloud upgrade: {branch['repo'].resolve()} has no commit 'no-such-ref'"
    ]
    result = iso.shard("upgrade", "--to", f"{NOVA}={branch['m2']}")
    assert result.rc == 0, result
    iso.timings["upgrade to the next commit"] = result.seconds
    given = handout(iso)
    assert given["commits"] == {"nova": branch["m2"]}
    # The ordinary compute runs m2 now: the cloud refuses older computes.
    assert given["minimum_service_versions"] == {"nova-compute": 75}
    assert given["maximum_service_versions"] == {"nova-compute": 76}
    layer = f"-nova-{branch['m2'][:12]}/bin/"
    assert all(layer in command for command in nova_commands(iso).values()), nova_commands(iso)
    # m2's migration ran.
    assert mysql(f"SHOW TABLES FROM {DB_PREFIX}nova LIKE '{TABLE}'") == [TABLE]
    after = iso.services()
    # Every nova process restarted; the others kept running.
    for name, svc in after.items():
        assert (svc["pid"] != before[name]["pid"]) == name.startswith("nova-"), (name, svc)
    # The ordinary compute last, once the control plane ran the new code.
    started = {name: processes.start_time(after[name]["pid"]) for name in after}
    control = ("nova-api", "nova-conductor", "nova-scheduler")
    assert started["nova-compute"] > max(started[name] for name in control), started


def test_upgrade_refuses_to_move_back(iso, branch):
    result = iso.shard("upgrade", "--to", f"{NOVA}={branch['m1']}")
    assert result.rc == 2, result
    assert result.stderr_lines == [
        f"cloud upgrade: nova {branch['m1'][:12]} does not descend from nova "
        f"{branch['m2'][:12]}, which the cloud runs: a cloud is upgraded forward only "
        "(destroy it to start again)"
    ]
    assert handout(iso)["commits"] == {"nova": branch["m2"]}


def test_a_failed_upgrade_leaves_the_cloud_on_its_commit(iso, branch):
    """A commit whose nova needs a library the services' virtualenv lacks stops before its
    migrations, in one line; nothing restarted, and `cloud up` keeps the cloud on (and
    hands out) the commit it ran."""
    repo = branch["repo"]
    git(repo, "checkout", "-q", "-b", "needs-more", branch["m2"])
    requirements = repo / "requirements.txt"
    requirements.write_text(requirements.read_text() + "shard-jobs-no-such-library>=1\n")
    m3 = commit(repo, "needs a library the cloud lacks")
    git(repo, "checkout", "-q", "master")
    before = {name: s["pid"] for name, s in iso.services().items()}

    result = iso.shard("upgrade", "--to", f"{NOVA}={m3}")
    assert result.rc != 0 and len(result.stderr_lines) == 1, result
    assert result.stderr_lines[0].startswith(
        f"cloud upgrade: nova {m3[:12]} needs what the services' virtualenv does not hold "
        "(constraints.txt): "
    ), result
    assert "shard-jobs-no-such-library" in result.stderr_lines[0], result
    assert "'cloud up' brings its services back to that" in result.stdout, result
    assert {name: s["pid"] for name, s in iso.services().items()} == before

    result = iso.shard("up")
    assert result.rc == 0, result
    assert handout(iso)["commits"] == {"nova": branch["m2"]}
    assert handout(iso)["minimum_service_versions"] == {"nova-compute": 75}
    assert {name: s["pid"] for name, s in iso.services().items()} == before


def test_a_change_on_the_new_commit_passes(iso, branch, tmp_path):
    """m2 added a migration that the release lacks: the guard compares with the commit
    the cloud runs (its handout's commits), not with the release, and lets it in."""
    status, summary, stderr = job(iso, change_on(branch, branch["m2"], tmp_path / "nova"))
    assert status == 0 and summary["result"] == "SUCCESS", stderr
    assert "end" in summary["phases"]["guard"]


def test_a_change_that_adds_a_migration_to_the_new_commit_is_refused(iso, branch, tmp_path):
    added = []
    tree = change_on(
        branch,
        branch["m2"],
        tmp_path / "nova",
        edit=lambda path: added.append(add_migration(path, "6b5a0c1d2e3f", "shard_jobs_change")),
    )
    status, summary, stderr = job(iso, tree)
    assert status == 1 and summary["result"] == "FAILURE", stderr
    output = (Path(summary["logs"]) / "job-output.txt").read_text()
    assert "this change alters the nova database schema; a shard cannot test it" in output
    assert (
        f"the nova migrations differ from those of nova {branch['release']} at commit "
        f"{branch['m2']}, which the cloud runs: added {added[0]}"
    ) in output
    assert not set(summary["phases"]) & {"build", "deploy", "label", "exercise"}


def test_a_change_of_the_release_the_cloud_left_behind_fails_before_its_build(
    iso, branch, tmp_path
):
    # A change to the stable branch (the release's service version, 74).
    tree = change_on(branch, branch["release"], tmp_path / "nova")
    status, summary, stderr = job(iso, tree)
    assert status == 1 and summary["result"] == "FAILURE", stderr
    output = (Path(summary["logs"]) / "job-output.txt").read_text()
    assert (
        "this cloud refuses nova-compute older than v75 (minimum_service_versions in its "
        "credentials): the change's nova has service version 74"
    ) in output
    assert [p["phase"] for p in summary["playbooks"]] == ["pre-run", "post-run"]
    assert not set(summary["phases"]) & {"build", "deploy", "label", "exercise"}


def test_upgrade_moves_glance_from_its_release_to_a_commit(iso, branch, glance_branch):
    before = iso.services()
    result = iso.shard("upgrade", "--to", f"{GLANCE}={glance_branch['repo']}@{glance_branch['g1']}")
    assert result.rc == 0, result
    iso.timings["upgrade glance from its release"] = result.seconds
    given = handout(iso)
    assert given["commits"] == {"nova": branch["m2"], "glance": glance_branch["g1"]}
    assert given["versions"]["glance"] == glance_branch["release"]
    (command,) = [" ".join(s["command"]) for s in iso.manifest["services"] if s["name"] == "glance"]
    assert f"-glance-{glance_branch['g1'][:12]}/bin/" in command, command
    # Expanded and migrated before the restart, contracted after: the table is there and
    # the schema is at the contraction's head.
    assert mysql(f"SHOW TABLES FROM {DB_PREFIX}glance LIKE '{TABLE}'") == [TABLE]
    assert mysql(f"SELECT version_num FROM {DB_PREFIX}glance.alembic_version") == [
        "2026_2_contract01"
    ]
    after = iso.services()
    for name, svc in after.items():
        assert (svc["pid"] != before[name]["pid"]) == (name == "glance"), (name, svc)
    # In that order: the migration before the restart stopped at the expansion (it would
    # have contracted too as db_sync), the contraction ran once the new glance-api had.
    migrated = (iso.dir / "log" / "dbsync-glance.log").read_text()
    assert "-> 2026_2_expand01" in migrated and "2026_2_contract01" not in migrated, migrated
    contracted = iso.dir / "lib" / "stamps" / f"contract-glance-{glance_branch['g1'][:12]}"
    assert contracted.stat().st_mtime > started_epoch(after["glance"]["pid"])
    status = iso.shard("status")
    assert f"glance follows {glance_branch['repo']} at {glance_branch['g1'][:12]}" in status.stdout


def test_a_glance_change_on_the_clouds_commit_passes(iso, glance_branch, tmp_path):
    """g1's migrations are not the change's: the guard compares with the commit."""
    tree = change_on(glance_branch, glance_branch["g1"], tmp_path / "glance")
    status, summary, stderr = job(iso, tree, "shard-glance-api", GLANCE)
    assert status == 0 and summary["result"] == "SUCCESS", stderr
    assert "end" in summary["phases"]["guard"]


def test_a_glance_change_of_the_release_fails_before_its_build(iso, glance_branch, tmp_path):
    """glance's rule is its migrations: a change without the cloud's commit in its history
    lacks what the cloud's schema has, and is told to rebase."""
    tree = change_on(glance_branch, glance_branch["release"], tmp_path / "glance")
    status, summary, stderr = job(iso, tree, "shard-glance-api", GLANCE)
    assert status == 1 and summary["result"] == "FAILURE", stderr
    output = (Path(summary["logs"]) / "job-output.txt").read_text()
    assert (
        f"this cloud runs glance at commit {glance_branch['g1']}, which the change's "
        "repository lacks (commits.glance in its credentials): the change must be rebased "
        "onto (or past) the commit the cloud runs"
    ) in output
    assert not set(summary["phases"]) & {"build", "deploy", "label", "exercise"}


def test_destroy_removes_the_cloud_that_followed_a_branch(iso, branch, glance_branch):
    result = iso.shard("destroy")
    assert result.rc == 0, result
    assert not iso.dir.exists()
    shutil.rmtree(branch["repo"].parent, ignore_errors=True)
    shutil.rmtree(glance_branch["repo"].parent, ignore_errors=True)
