"""shard_server: booting a labelled server, finding it again, deleting only labelled ones."""

import pytest
import shard_server as module

LABEL = "shard-0123abcd4567"
NAME = "shard-0123abcd4567-server"


@pytest.fixture
def bootable(cloud):
    cloud.add_flavor("shard-0123abcd4567-flavor")
    cloud.add_image("cirros")
    cloud.mapped_hosts.add(LABEL)
    return cloud


def boot(**kwargs):
    args = dict(name=NAME, label=LABEL, flavor="shard-0123abcd4567-flavor", image="cirros")
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
    other_run = bootable.add_server(NAME, metadata={"shard_label": "shard-ffff00001111"})

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
    assert query["name"] == "^shard\\-0123abcd4567\\-server$"


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
    result = run_module(module, boot(host="shard-ffff00001111"))

    assert result["failed"] is True
    assert result["msg"] == (
        f"nova refused to boot server {NAME}: Compute host shard-ffff00001111 could not be found. "
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
    other = bootable.add_server("shard-0123abcd4567-other", metadata={"shard_label": LABEL})

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


# -- actions, expect_host, state=exercised ------------------------------------

ACTION_CALLS = ("compute.stop_server", "compute.start_server", "compute.reboot_server")


def ours_on_the_shard(cloud, **kwargs):
    return cloud.add_server(NAME, metadata={"shard_label": LABEL}, host=LABEL, **kwargs)


def action_calls(cloud):
    return [(c[0].split(".")[1], *c[1]) for c in cloud.calls if c[0] in ACTION_CALLS]


def test_actions_run_in_order_each_waited_for_at_half_a_second(bootable, clock, run_module):
    ours = ours_on_the_shard(bootable)
    actions = ["stop", "start", "reboot_soft", "reboot_hard"]

    result = run_module(module, dict(name=NAME, label=LABEL, expect_host=LABEL, actions=actions))

    assert result["changed"] is True
    # The fake refuses (409) an action while the one before still runs.
    assert action_calls(bootable) == [
        ("stop_server", ours.id),
        ("start_server", ours.id),
        ("reboot_server", ours.id, "SOFT"),
        ("reboot_server", ours.id, "HARD"),
    ]
    # The compute takes 1.5 s over each: looks at 0, 0.5, 1 and 1.5 s.
    assert result["steps"] == [dict(action=a, seconds=1.5) for a in actions]
    assert len(bootable.called("compute.get_server")) == 4 * len(actions)
    assert set(clock.slept) == {module.POLL_INTERVAL} == {0.5}
    assert result["server"]["status"] == "ACTIVE"
    assert ours.task_state is None and bootable.events == []


def test_stop_waits_for_shutoff_without_task_state(bootable, run_module):
    ours = ours_on_the_shard(bootable)

    result = run_module(module, dict(name=NAME, label=LABEL, actions=["stop"]))

    assert result["server"]["status"] == "SHUTOFF"
    assert (ours.status, ours.task_state) == ("SHUTOFF", None)
    assert result["steps"] == [dict(action="stop", seconds=1.5)]


def test_a_reboot_is_waited_for_even_while_the_status_still_says_active(bootable, run_module):
    # Only the task state (set by nova before its 202) shows the reboot is under way.
    ours = ours_on_the_shard(bootable)
    bootable.reboot_shows_status = False

    result = run_module(module, dict(name=NAME, label=LABEL, actions=["reboot_soft"]))

    assert result["steps"] == [dict(action="reboot_soft", seconds=1.5)]
    assert ours.task_state is None and bootable.events == []


def test_action_timeout_is_clear(bootable, run_module):
    ours = ours_on_the_shard(bootable)
    bootable.action_seconds = 1000

    result = run_module(module, dict(name=NAME, label=LABEL, actions=["stop"], timeout=10))

    assert result["failed"] is True
    assert result["msg"] == (
        f"server {NAME} ({ours.id}) did not become SHUTOFF after stop within 10s "
        "(status ACTIVE, task state powering-off)"
    )


def test_an_action_nova_refuses_fails_with_its_message(bootable, run_module):
    ours = ours_on_the_shard(bootable)

    result = run_module(module, dict(name=NAME, label=LABEL, actions=["start"]))

    assert result["failed"] is True
    assert result["msg"] == (
        f"nova refused to start server {NAME} ({ours.id}): Cannot 'start' instance "
        f"{ours.id} while it is in vm_state active (HTTP 409)"
    )


def test_unknown_action_is_refused(bootable, run_module):
    result = run_module(module, dict(name=NAME, label=LABEL, actions=["stop", "pause"]))

    assert result["failed"] is True
    assert "actions" in result["msg"] and "pause" in result["msg"]
    assert bootable.calls == []


@pytest.mark.parametrize(
    "args, msg",
    [
        (dict(state="absent", actions=["stop"]), "actions need state present or exercised"),
        (
            dict(state="absent", expect_host=LABEL, actions=["stop"]),
            "actions and expect_host need state present or exercised",
        ),
        (dict(state="exercised", wait=False), "state=exercised need wait=true"),
        (dict(actions=["stop"], wait=False), "actions need wait=true"),
    ],
)
def test_options_that_do_not_go_together_are_refused(bootable, run_module, args, msg):
    ours_on_the_shard(bootable)

    result = run_module(module, boot(**args))

    assert result["failed"] is True
    assert result["msg"] == msg
    assert bootable.calls == []


def test_expected_host_and_no_actions_is_a_no_op(bootable, run_module):
    ours = ours_on_the_shard(bootable)

    result = run_module(module, boot(expect_host=LABEL))

    assert result["changed"] is False
    assert result["server"]["id"] == ours.id
    assert result["steps"] == []
    assert bootable.mutations == []


def test_exercised_boots_checks_the_host_drives_and_deletes(bootable, clock, run_module):
    actions = ["stop", "start", "reboot_soft"]

    result = run_module(
        module, boot(state="exercised", host=LABEL, expect_host=LABEL, actions=actions)
    )

    assert result["changed"] is True
    ((_, _, kwargs),) = bootable.called("compute.create_server")
    assert kwargs["host"] == LABEL
    server_id = result["server"]["id"]
    assert [a[0] for a in action_calls(bootable)] == [
        "stop_server",
        "start_server",
        "reboot_server",
    ]
    assert [c[1][0] for c in bootable.called("compute.delete_server")] == [server_id]
    assert result["deleted"] == [server_id]
    assert bootable.servers == []
    # The server as it was before its deletion: what the exercise records.
    assert result["server"]["status"] == "ACTIVE"
    assert result["server"]["compute_host"] == LABEL
    assert result["steps"] == [
        dict(action="boot", seconds=0.0),
        dict(action="stop", seconds=1.5),
        dict(action="start", seconds=1.5),
        dict(action="reboot_soft", seconds=1.5),
        dict(action="delete", seconds=0.5),
    ]
    assert set(clock.slept) == {0.5}


def test_exercised_drives_and_deletes_a_server_that_exists(bootable, run_module):
    # The upgrade's survivor: found by name and label, no flavor or image needed.
    ours = ours_on_the_shard(bootable)

    result = run_module(
        module,
        dict(
            name=NAME, label=LABEL, state="exercised", expect_host=LABEL, actions=["stop", "start"]
        ),
    )

    assert result["changed"] is True
    assert bootable.called("compute.create_server") == []
    assert [s["action"] for s in result["steps"]] == ["stop", "start", "delete"]
    assert result["deleted"] == [ours.id]
    assert bootable.servers == []


def test_expect_host_mismatch_fails_on_one_line_naming_both_hosts(bootable, run_module):
    # Without host=, the fake's scheduler picks compute-1.
    result = run_module(
        module, boot(state="exercised", expect_host=LABEL, actions=["stop", "start"])
    )

    assert result["failed"] is True
    (server,) = bootable.servers
    assert result["msg"] == f"server {NAME} ({server.id}) is on host compute-1, not on {LABEL}"
    assert "\n" not in result["msg"]
    assert action_calls(bootable) == []
    # Failing fast leaves the server to the teardown, which deletes by label.
    assert bootable.called("compute.delete_server") == []


def test_exercised_fails_fast_and_leaves_the_server_when_an_action_fails(bootable, run_module):
    bootable.action_fault = "Unexpected vif_type=binding_failed"

    result = run_module(
        module, boot(state="exercised", host=LABEL, actions=["stop", "start", "reboot_soft"])
    )

    assert result["failed"] is True
    (server,) = bootable.servers
    assert result["msg"] == (
        f"server {NAME} ({server.id}) went to ERROR: Unexpected vif_type=binding_failed"
    )
    assert action_calls(bootable) == [("stop_server", server.id)]
    assert bootable.called("compute.delete_server") == []
    assert server.metadata["shard_label"] == LABEL  # what the teardown finds it by


@pytest.mark.parametrize("exists", [False, True], ids=["nothing-yet", "server-exists"])
@pytest.mark.parametrize("state", ["exercised", "present"])
def test_check_mode_changes_nothing(bootable, run_module, state, exists):
    ours = ours_on_the_shard(bootable) if exists else None
    args = boot(state=state, host=LABEL, expect_host=LABEL, actions=["stop", "reboot_hard"])

    result = run_module(module, args, check_mode=True)

    assert result["changed"] is True
    assert result["steps"] == []
    assert bootable.mutations == []
    assert (result["server"] or {}).get("id") == (ours.id if exists else None)
    if state == "exercised":
        assert result["deleted"] == ([ours.id] if exists else [])
    if exists:
        assert (ours.status, ours.task_state) == ("ACTIVE", None)


def test_exercised_twice_on_a_clean_cloud_behaves_the_same(bootable, run_module):
    args = boot(state="exercised", host=LABEL, expect_host=LABEL, actions=["stop", "start"])

    first = run_module(module, args)
    second = run_module(module, args)

    for result in (first, second):
        assert result["changed"] is True
        assert result["deleted"] == [result["server"]["id"]]
    assert first["steps"] == second["steps"]
    assert first["server"]["id"] != second["server"]["id"]
    assert len(bootable.called("compute.create_server")) == 2
    assert len(bootable.called("compute.delete_server")) == 2
    assert bootable.servers == []


def test_the_host_is_checked_again_after_the_actions(bootable, run_module):
    ours = ours_on_the_shard(bootable)
    bootable.at(1.0, lambda: setattr(ours, "compute_host", "compute-2"))

    result = run_module(module, dict(name=NAME, label=LABEL, expect_host=LABEL, actions=["stop"]))

    assert result["failed"] is True
    assert result["msg"] == f"server {NAME} ({ours.id}) is on host compute-2, not on {LABEL}"
