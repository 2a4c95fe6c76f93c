"""shard_upgrade: the shard runs the candidate now, kept its records, and nothing leaked."""

import json

import pytest
from conftest import leftovers, placement_get, provider, read_pid


@pytest.fixture(scope="module")
def report(host, workspace):
    return json.loads(host.file(str(workspace / "upgrade.json")).content_string)


def _imports_marker(host, venv) -> bool:
    return host.run(f"{venv}/bin/python -c 'import nova.molecule_marker'").rc == 0


def test_the_shard_runs_the_candidate(host, workspace):
    assert host.file(f"{workspace}/current").linked_to == str(workspace / "venv")
    pid = read_pid(workspace / "run" / "nova-compute.pid")
    assert pid, "no pid file"
    args = host.process.get(pid=pid).args.split()
    assert f"{workspace}/current/bin/nova-compute" in args[:2]


def test_candidate_and_from_are_different_code(host, workspace):
    assert _imports_marker(host, workspace / "venv")
    assert not _imports_marker(host, workspace / "venv-from")


def test_report(host, workspace, report, state, src_dir):
    assert host.file(str(workspace / "upgrade.json")).mode == 0o600
    tag = f"refs/tags/{state['molecule_shard_release']}^{{commit}}"
    tag_commit = host.check_output(f"git -C {src_dir} rev-parse '{tag}'")
    assert report["from"]["kind"] == "ref"
    assert report["from"]["ref"] == tag_commit
    assert report["to"]["commit"] == state["molecule_shard_commit"]
    assert report["downtime_seconds"] > 0
    assert report["verified"]


def test_the_cloud_still_sees_the_labelled_shard(conn, label, trait):
    services = [s for s in conn.compute.services(binary="nova-compute") if s.host == label]
    assert [s.state for s in services] == ["up"]
    rp = provider(conn, label)
    assert trait in placement_get(conn, f"/resource_providers/{rp['uuid']}/traits")["traits"]


def test_no_server_left(conn, label):
    assert "servers" not in leftovers(conn, label)


def test_the_upgrade_ran_once(host, workspace):
    events = [
        json.loads(line)
        for line in host.file(str(workspace / "phases.jsonl")).content_string.splitlines()
    ]
    assert len([e for e in events if e["phase"] == "upgrade" and e["event"] == "end"]) == 1
