"""./shard cloud up --source / cloud upgrade --to: what a cloud that follows a branch runs.

The rules of shard_jobs/cloud_sources.py on real git repositories: the commit and
the release it is past, the record a later `cloud up` keeps to, and an upgrade
that only moves forward.
"""

import json
import subprocess

import pytest
from unit_helpers import GIT_ENV

from shard_jobs import cloud_sources
from shard_jobs.settings import RunError


def _git(cwd, *args):
    return subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A nova-like history: the release 34.0.0, then two commits of master (a user's
    own tag on the first), and a side branch from the release."""
    src = tmp_path / "nova"
    src.mkdir()
    _git(src, "init", "-q", "-b", "master")
    (src / "setup.cfg").write_text("[metadata]\nname = nova\n")
    _git(src, "add", "-A")
    _git(src, "commit", "-q", "-m", "release")
    _git(src, "tag", "34.0.0")
    for n in (1, 2):
        (src / f"change{n}").write_text(f"{n}\n")
        _git(src, "add", "-A")
        _git(src, "commit", "-q", "-m", f"master {n}")
    _git(src, "tag", "mine", "HEAD~1")
    _git(src, "checkout", "-q", "-b", "side", "34.0.0")
    (src / "side").write_text("side\n")
    _git(src, "add", "-A")
    _git(src, "commit", "-q", "-m", "side")
    _git(src, "checkout", "-q", "master")
    return src


def test_a_source_resolves_to_its_commit_and_the_release_it_is_past(repo):
    dist, path, ref = cloud_sources.parse(f"openstack/nova={repo}@mine", "--source")
    assert (dist, path, ref) == ("nova", str(repo), "mine")
    found = cloud_sources.resolve(path, ref)
    # The release tag, not the user's own tag on the very commit.
    assert found == {
        "repo": str(repo),
        "commit": _git(repo, "rev-parse", "master~1"),
        "version": "34.0.0",
    }
    # No ref: HEAD.
    assert cloud_sources.resolve(str(repo), "")["commit"] == _git(repo, "rev-parse", "HEAD")


@pytest.mark.parametrize(
    "item, option, message",
    [
        ("openstack/nova", "--source", "expected PROJECT=PATH[@REF]"),
        (
            "openstack/placement=/x@y",
            "--source",
            "builds only openstack/glance, openstack/nova from source",
        ),
        ("openstack/nova=/x@", "--to", "no ref to upgrade to"),
    ],
)
def test_bad_items_are_one_line(item, option, message):
    with pytest.raises(RunError, match=message.replace("[", r"\[").replace("]", r"\]")):
        cloud_sources.parse(item, option)


def test_a_missing_commit_or_repository_or_release_is_one_line(repo, tmp_path):
    with pytest.raises(RunError, match="has no commit 'nope'"):
        cloud_sources.resolve(str(repo), "nope")
    with pytest.raises(RunError, match="not a git repository"):
        cloud_sources.resolve(str(tmp_path), "")
    _git(repo, "tag", "-d", "34.0.0")
    with pytest.raises(RunError, match="no release tag below"):
        cloud_sources.resolve(str(repo), "master")


def test_a_new_cloud_records_its_sources_and_an_existing_one_keeps_them(repo, tmp_path):
    cloud = tmp_path / "cloud"
    wanted = cloud_sources.up_sources(cloud, [f"openstack/nova={repo}@master~1"], exists=False)
    assert json.loads((cloud / "sources.json").read_text()) == wanted
    # A later up without --source keeps following the same commit, never the release.
    assert cloud_sources.up_sources(cloud, [], exists=True) == wanted
    # The same --source again is no move.
    assert cloud_sources.up_sources(cloud, [f"openstack/nova={repo}@mine"], exists=True) == wanted
    # Another commit on a cloud that exists: that is an upgrade, not an up.
    with pytest.raises(RunError, match="cloud upgrade --to"):
        cloud_sources.up_sources(cloud, [f"openstack/nova={repo}@master"], exists=True)
    assert cloud_sources.load(cloud) == wanted


def test_an_upgrade_moves_forward_only(repo, tmp_path):
    cloud = tmp_path / "cloud"
    releases = {"nova": "34.0.0"}
    # From the release: the repository must be named, and the commit be past its tag.
    with pytest.raises(RunError, match="runs the release of nova: say which repository"):
        cloud_sources.upgrade_sources(cloud, ["openstack/nova=master"], releases)
    first = cloud_sources.upgrade_sources(cloud, [f"openstack/nova={repo}@master~1"], releases)
    assert first["nova"]["commit"] == _git(repo, "rev-parse", "master~1")
    # Not recorded until the cloud runs it (the caller saves it then).
    assert cloud_sources.load(cloud) == {}
    cloud_sources.save(cloud, first)
    # Then a ref of the repository it follows.
    second = cloud_sources.upgrade_sources(cloud, ["openstack/nova=master"], releases)
    assert second["nova"]["commit"] == _git(repo, "rev-parse", "master")
    cloud_sources.save(cloud, second)
    # Back, or sideways, is refused, and the record stays.
    for ref in ("master~1", "side"):
        with pytest.raises(RunError, match="does not descend from nova .* forward only"):
            cloud_sources.upgrade_sources(cloud, [f"openstack/nova={ref}"], releases)
    assert cloud_sources.load(cloud) == second


def test_an_upgrade_from_a_release_refuses_a_commit_before_it(repo, tmp_path):
    with pytest.raises(RunError, match="does not descend from the release nova 35.0.0"):
        cloud_sources.upgrade_sources(
            tmp_path / "cloud", [f"openstack/nova={repo}@master"], {"nova": "35.0.0"}
        )


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "sources.json is not JSON"),
        ("[]", "sources.json is not a record of sources"),
        ('{"nova": {"repo": "/r", "version": "34.0.0"}}', "not a record of sources"),
        ('{"nova": {"repo": "/r", "commit": "abc", "version": "34.0.0"}}', "not a record"),
        ('{"nova": {"repo": "/r", "commit": "' + "A" * 40 + '", "version": "1"}}', "not a"),
        ('{"placement": {"repo": "/r", "commit": "' + "a" * 40 + '", "version": "1"}}', "not a"),
    ],
)
def test_a_broken_record_is_one_line(tmp_path, text, message):
    (tmp_path / "sources.json").write_text(text)
    with pytest.raises(RunError, match=message):
        cloud_sources.load(tmp_path)


def test_a_run_without_src_takes_the_commit_the_cloud_follows(repo, tmp_path, monkeypatch):
    monkeypatch.setattr(cloud_sources.paths, "HOME", tmp_path / "home")
    followed = cloud_sources.resolve(str(repo), "master~1")
    source = cloud_sources.followed_source(followed, "nova")
    assert source == tmp_path / "home" / "cache" / "sources" / f"nova-{followed['commit'][:12]}"
    # HEAD at the cloud's commit, whatever the repository's HEAD, with a clean tree.
    assert _git(source, "rev-parse", "HEAD") == followed["commit"]
    assert _git(source, "status", "--porcelain") == ""
    assert (source / "change1").exists() and not (source / "change2").exists()
    # Kept for the next run.
    (source / "marker").write_text("kept\n")
    assert cloud_sources.followed_source(followed, "nova") == source
    assert (source / "marker").exists()
    # A repository that lost the commit: one line.
    gone = dict(followed, commit="0" * 40)
    with pytest.raises(RunError, match="cannot take nova 000000000000 from"):
        cloud_sources.followed_source(gone, "nova")


def test_the_cloud_commands_say_a_broken_record_in_one_line(tmp_path, monkeypatch, capsys):
    from shard_jobs import cloud

    monkeypatch.setattr(cloud.paths, "CLOUD_DIR", tmp_path)
    (tmp_path / "sources.json").write_text("[]")
    assert cloud.down() == 2
    assert cloud.up() == 2
    (tmp_path / "cloud.json").write_text('{"services": []}')
    assert cloud.upgrade(["openstack/nova=master"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in lines] == ["cloud down", "cloud up", "cloud upgrade"]
    assert all("is not a record of sources" in line for line in lines), lines
    # destroy does not read it: the remedy the line names works.
    assert cloud.cloud_vars(followed={})["embedded_cloud_sources"] == {}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["cloud", "status", "--source", "openstack/nova=/x"], "--source is for up"),
        (["cloud", "upgrade"], "upgrade needs --to"),
        (["cloud", "up", "--to", "openstack/nova=x"], "upgrade needs --to"),
    ],
)
def test_the_cli_refuses_misplaced_options(argv, message, capsys):
    from shard_jobs import cli

    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
