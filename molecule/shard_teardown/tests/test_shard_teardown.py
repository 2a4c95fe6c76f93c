"""shard_teardown: nothing carrying the build's label is left, in the cloud or on the node."""

import json
from pathlib import Path

from conftest import leftovers


def test_nothing_labelled_left_in_the_cloud(conn, label):
    assert leftovers(conn, label) == {}


def test_teardown_found_and_deleted_what_the_run_created(state):
    """The prepared run left a shard behind (its compute service, provider, aggregate,
    flavor, trait); teardown's report says it found each and left nothing."""
    report = Path(state["zuul"]["executor"]["log_root"]) / "shard" / "teardown.json"
    teardown = json.loads(report.read_text())
    found = {kind for kind, items in teardown["found"].items() if items}
    assert {"compute_services", "flavors", "traits", "aggregates"} <= found, teardown["found"]
    assert not any(teardown["left"].values()), teardown["left"]
    assert teardown["error"] is None


def test_workspace_removed(host, workspace):
    assert not host.file(str(workspace)).exists


def test_shard_process_stopped(host, workspace):
    assert [p.pid for p in host.process.filter() if str(workspace) in p.args] == []
