"""shard_janitor: the abandoned run's resources are gone, the decoy is not, the report says so."""

import json

from conftest import leftovers


def test_the_decoy_without_the_label_survives_and_nothing_else(conn, label):
    decoy = conn.compute.find_flavor(f"{label}-decoy", ignore_missing=True)
    assert decoy is not None
    # leftovers() also counts names that start with the label: the decoy is the only one.
    assert leftovers(conn, label) == {"flavors": [decoy.id]}


def test_the_report_of_the_last_run_found_nothing(host, state, label):
    # The idempotence run came last: by then nothing was left to find.
    report = json.loads(host.file(f"{state['molecule_shard_tmp']}/janitor.json").content_string)
    assert report["older_than"] == "30m"
    assert report["count"] == 0


def test_no_workspace_left(host, workspace):
    assert not host.file(str(workspace)).exists
