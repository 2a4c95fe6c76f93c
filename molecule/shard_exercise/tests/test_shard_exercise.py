"""shard_exercise: a server landed on the shard, was driven and deleted; nothing leaked."""

import json

import openstack
import pytest
from conftest import leftovers


@pytest.fixture(scope="module")
def result(host, workspace):
    return json.loads(host.file(str(workspace / "result.json")).content_string)


def test_server_landed_on_the_shard(result, label):
    assert result["label"] == label
    assert result["host"] == label
    assert result["landed_on"] == label


def test_result_is_private(host, workspace):
    assert host.file(str(workspace / "result.json")).mode == 0o600


def test_server_was_deleted(conn, result):
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.compute.get_server(result["server"])


def test_only_the_shard_itself_is_left(conn, label):
    """No server leaked; the shard (deploy's and label's records) is still there."""
    left = leftovers(conn, label)
    assert "servers" not in left
    shard = {"compute_services", "resource_providers", "flavors", "aggregates", "traits"}
    assert set(left) == shard


def test_the_exercise_ran_once(host, workspace):
    """The idempotence run found the result recorded and did nothing."""
    events = [
        json.loads(line)
        for line in host.file(str(workspace / "phases.jsonl")).content_string.splitlines()
    ]
    ends = [e for e in events if e["phase"] == "exercise" and e["event"] == "end"]
    assert len(ends) == 1
