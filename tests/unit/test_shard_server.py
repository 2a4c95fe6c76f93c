"""shard_server: booting a labelled server, finding it again, deleting only labelled ones."""

import pytest
import shard_server as module

LABEL = "shard-0123abcd"
NAME = "shard-0123abcd-server"


@pytest.fixture
def bootable(cloud):
    cloud.add_flavor("shard-0123abcd-flavor")
    cloud.add_image("cirros")
    cloud.mapped_hosts.add(LABEL)
    return cloud


def boot(**kwargs):
    args = dict(name=NAME, label=LABEL, flavor="shard-0123abcd-flavor", image="cirros")
    args.update(kwargs)
    return args


def test_boot_on_a_host_with_label_metadata_and_tag(bootable, run_module):
    cloud = bootable
    result = run_module(
        module, boot(host=LABEL, metadata={"purpose": "exercise", "n": 1}, tags=["extra"])
    )

    assert result["changed"] is True
    ((_, _, kwargs),) = cloud.called("compute.create_server")
    assert kwargs["name"] == NAME
    assert kwargs["host"] == LABEL
    assert kwargs["networks"] == "none"
    assert kwargs["metadata"] == {"purpose": "exercise", "n": "1", "shard_label": LABEL}
    assert kwargs["tags"] == ["extra", LABEL]
    assert kwargs["flavor_id"] == cloud.flavors[0].id
    assert kwargs["image_id"] == cloud.images[0].id
    server = result["server"]
    assert server["status"] == "ACTIVE"
    assert server["compute_host"] == LABEL
    assert server["hypervisor_hostname"] == LABEL
    assert server["metadata"]["shard_label"] == LABEL
    assert server["tags"] == ["extra", LABEL]
    assert set(server) >= {"id", "name", "status", "flavor", "created"}


def test_boot_without_host_lets_the_scheduler_choose(bootable, run_module):
    result = run_module(module, boot(networks="auto"))

    ((_, _, kwargs),) = bootable.called("compute.create_server")
    assert "host" not in kwargs
    assert kwargs["networks"] == "auto"
    assert result["server"]["compute_host"] == "compute-1"


def test_networks_as_a_list_of_ids(bootable, run_module):
    run_module(module, boot(networks=["net-1", "net-2"]))

    ((_, _, kwargs),) = bootable.called("compute.create_server")
    assert kwargs["networks"] == [{"uuid": "net-1"}, {"uuid": "net-2"}]


def test_bad_networks_fail_clearly(bootable, run_module):
    result = run_module(module, boot(networks="public"))

    assert result["failed"] is True
    assert result["msg"] == "networks must be 'none', 'auto' or a list of network ids, not 'public'"
    assert bootable.mutations == []


def test_existing_labelled_server_is_a_no_op(bootable, run_module):
    server = bootable.add_server(NAME, metadata={"shard_label": LABEL})

    result = run_module(module, boot())

    assert result["changed"] is False
    assert result["server"]["id"] == server.id
    assert bootable.mutations == []


def test_existing_server_found_by_its_tag(bootable, run_module):
    server = bootable.add_server(NAME, tags=[LABEL])

    result = run_module(module, boot())

    assert result["changed"] is False
    assert result["server"]["id"] == server.id


def test_same_name_without_label_is_not_ours(bootable, run_module):
    stranger = bootable.add_server(NAME)
    other_run = bootable.add_server(NAME, metadata={"shard_label": "shard-ffff0000"})

    result = run_module(module, boot())

    assert result["changed"] is True
    assert result["server"]["id"] not in (stranger.id, other_run.id)
    assert sorted(result["ignored"]) == sorted([stranger.id, other_run.id])


def test_name_is_matched_exactly(bootable, run_module):
    # nova matches the name filter as a regular expression.
    bootable.add_server(NAME + "-2", metadata={"shard_label": LABEL})

    result = run_module(module, boot())

    assert result["changed"] is True
    ((_, _, query),) = bootable.called("compute.servers")
    assert query["name"] == "^shard\\-0123abcd\\-server$"


def test_error_fails_with_the_fault_message(bootable, run_module):
    bootable.boot_result = "ERROR"

    result = run_module(module, boot())

    assert result["failed"] is True
    server_id = bootable.servers[0].id
    assert result["msg"] == f"server {NAME} ({server_id}) went to ERROR: No valid host was found."
    assert result["server"]["status"] == "ERROR"


def test_boot_timeout_is_clear(bootable, clock, run_module):
    bootable.boot_result = "BUILD"

    result = run_module(module, boot(timeout=20))

    assert result["failed"] is True
    server_id = bootable.servers[0].id
    assert result["msg"] == (
        f"server {NAME} ({server_id}) did not become ACTIVE within 20s (status BUILD, "
        "task state None)"
    )


def test_unknown_host_is_refused_clearly(bootable, run_module):
    result = run_module(module, boot(host="shard-ffff0000"))

    assert result["failed"] is True
    assert result["msg"] == (
        f"nova refused to boot server {NAME}: Compute host shard-ffff0000 could not be found. "
        "(HTTP 400)"
    )


def test_missing_flavor_or_image_fail_clearly(bootable, run_module):
    assert run_module(module, boot(flavor="nope"))["msg"] == "flavor nope not found"
    assert run_module(module, boot(image="nope"))["msg"] == "image nope not found"
    assert (
        run_module(module, boot(flavor=None))["msg"] == f"flavor is required to boot server {NAME}"
    )
    assert bootable.mutations == []


def test_host_needs_microversion_2_74(bootable, run_module):
    bootable.compute_max_microversion = (2, 60)

    result = run_module(module, boot(host=LABEL))

    assert result["failed"] is True
    assert result["msg"] == "the compute API does not support microversion 2.74 (host at boot)"


def test_check_mode_boots_nothing(bootable, run_module):
    result = run_module(module, boot(), check_mode=True)

    assert result["changed"] is True
    assert result["server"] is None
    assert bootable.mutations == []


def test_invalid_label_fails_clearly(bootable, run_module):
    result = run_module(module, boot(label="shard-NOPE"))

    assert result["failed"] is True
    assert result["msg"].startswith("label 'shard-NOPE' is not a shard label")
    assert bootable.calls == []


# -- absent -----------------------------------------------------------------


def test_absent_deletes_labelled_servers_only_and_waits(bootable, run_module):
    ours = bootable.add_server(NAME, metadata={"shard_label": LABEL})
    tagged = bootable.add_server(NAME, tags=[LABEL])
    stranger = bootable.add_server(NAME)
    other = bootable.add_server("shard-0123abcd-other", metadata={"shard_label": LABEL})

    result = run_module(module, dict(name=NAME, label=LABEL, state="absent"))

    assert result["changed"] is True
    assert sorted(result["deleted"]) == sorted([ours.id, tagged.id])
    assert result["ignored"] == [stranger.id]
    assert [c[1][0] for c in bootable.called("compute.delete_server")] == [ours.id, tagged.id]
    assert bootable.servers == [stranger, other]


def test_absent_is_a_no_op_when_nothing_carries_the_label(bootable, run_module):
    stranger = bootable.add_server(NAME)

    result = run_module(module, dict(name=NAME, label=LABEL, state="absent"))

    assert result["changed"] is False
    assert result["deleted"] == []
    assert result["ignored"] == [stranger.id]
    assert bootable.mutations == []


def test_absent_check_mode_deletes_nothing(bootable, run_module):
    ours = bootable.add_server(NAME, metadata={"shard_label": LABEL})

    result = run_module(module, dict(name=NAME, label=LABEL, state="absent"), check_mode=True)

    assert result["changed"] is True
    assert result["deleted"] == [ours.id]
    assert bootable.mutations == []


def test_absent_timeout_is_clear(bootable, run_module):
    ours = bootable.add_server(NAME, metadata={"shard_label": LABEL}, host=LABEL)
    bootable.delete_polls = 1000

    result = run_module(module, dict(name=NAME, label=LABEL, state="absent", timeout=10))

    assert result["failed"] is True
    assert result["msg"] == (
        f"server {NAME} ({ours.id}) was not deleted within 10s (status ACTIVE, task state "
        f"deleting); is its compute host {LABEL} running?"
    )


def test_absent_asks_again_once_the_dead_hosts_service_reports_down(bootable, run_module):
    # The compute died: the first delete waits for it forever, until nova sees the
    # service down and deletes locally when asked again.
    ours = bootable.add_server(NAME, metadata={"shard_label": LABEL}, host=LABEL)
    bootable.add_service(LABEL, state="down")
    bootable.delete_polls = 1000
    delete = bootable.compute.delete_server

    def delete_then_local(server, ignore_missing=True):
        delete(server, ignore_missing)
        if len(bootable.called("compute.delete_server")) > 1:
            server.deleting = 0

    bootable.compute.delete_server = delete_then_local

    result = run_module(module, dict(name=NAME, label=LABEL, state="absent", timeout=60))

    assert result["changed"] is True and result["deleted"] == [ours.id]
    assert [c[1][0] for c in bootable.called("compute.delete_server")] == [ours.id, ours.id]
    assert bootable.servers == []


def test_absent_does_not_ask_again_while_the_host_reports_up(bootable, run_module):
    ours = bootable.add_server(NAME, metadata={"shard_label": LABEL}, host=LABEL)
    bootable.add_service(LABEL, state="up")
    bootable.delete_polls = 3

    result = run_module(module, dict(name=NAME, label=LABEL, state="absent"))

    assert result["changed"] is True
    assert [c[1][0] for c in bootable.called("compute.delete_server")] == [ours.id]
