"""shard_teardown: nothing carrying the build's label is left, in the cloud or on the node."""

from conftest import leftovers


def test_nothing_labelled_left_in_the_cloud(conn, label):
    assert leftovers(conn, label) == {}


def test_no_image_labelled(conn, label):
    assert [i.id for i in conn.image.images() if label in (i.name or "")] == []


def test_workspace_removed(host, workspace):
    assert not host.file(str(workspace)).exists


def test_shard_process_stopped(host, workspace):
    assert [p.pid for p in host.process.filter() if str(workspace) in p.args] == []
