"""The label rule of a nova-compute shard (module_utils/shard_compute_label.py), through the
one module that runs it: shard_compute_service with label_step, once the cloud sees the shard."""

import re

import fake_cloud
import pytest
import shard_compute_service as module
from fake_cloud import OWN_PROJECT

from shard_jobs.rules import phases

LABEL = "shard-0123456789ab"
HOST = LABEL
TRAIT = "CUSTOM_SHARD_0123456789AB"
FLAVOR = f"{LABEL}-flavor"
SIZE = dict(ram=128, vcpus=1, disk=0)
ARGS = dict(host=HOST, label=LABEL, timeout=120, label_step=dict(flavor=SIZE))
DESCRIPTION_RE = re.compile(
    rf"^shard-jobs label={LABEL} created=\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"
)
OLD_DESCRIPTION = f"shard-jobs label={LABEL} created=2026-11-25T13:00:00Z"


@pytest.fixture(autouse=True)
def shard_up(cloud):
    """The shard's compute service is up and its host mapped; each test adds its provider."""
    cloud.add_service(HOST)
    cloud.mapped_hosts.add(HOST)


def label_of(result):
    assert result.get("failed") is not True, result.get("msg")
    return result["label"]


def flavor_named(cloud, name):
    return next((f for f in cloud.flavors if f.name == name), None)


def labelled(cloud, label=LABEL, trait=TRAIT, description=OLD_DESCRIPTION):
    """What a finished label step left: flavor, trait, trait on the provider."""
    cloud.traits.add(trait)
    uuid = cloud.add_provider(label, traits={"COMPUTE_NODE", trait}, generation=3)
    flavor = cloud.add_flavor(
        f"{label}-flavor",
        description=description,
        extra_specs={f"trait:{trait}": "required"},
        is_public=False,
    )
    flavor.ram, flavor.vcpus, flavor.disk = 128, 1, 0
    return uuid, flavor


def test_creates_flavor_trait_and_provider_trait_on_a_clean_cloud(cloud, run_module):
    uuid = cloud.add_provider(HOST, traits={"COMPUTE_NODE", "HW_CPU_X86_AVX2"}, generation=5)

    result = run_module(module, ARGS)

    assert result.get("changed") is True, result
    flavor = flavor_named(cloud, FLAVOR)
    assert (flavor.ram, flavor.vcpus, flavor.disk) == (128, 1, 0)
    assert DESCRIPTION_RE.match(flavor.description)
    assert flavor.extra_specs == {f"trait:{TRAIT}": "required"}
    assert TRAIT in cloud.traits
    assert cloud.providers[uuid]["traits"] == {"COMPUTE_NODE", "HW_CPU_X86_AVX2", TRAIT}
    assert label_of(result)["trait"] == TRAIT
    assert label_of(result)["flavor"] == dict(
        id=flavor.id,
        name=FLAVOR,
        description=flavor.description,
        extra_specs={f"trait:{TRAIT}": "required"},
        ram=128,
        vcpus=1,
        disk=0,
    )
    assert label_of(result)["provider"] == dict(
        uuid=uuid, name=HOST, traits=["COMPUTE_NODE", TRAIT, "HW_CPU_X86_AVX2"]
    )
    # The flavor first (it dates the label), then the trait, then the provider.
    writes = [c[0] if not c[0].startswith("placement.") else c[1][0] for c in cloud.mutations]
    assert writes == [
        "compute.create_flavor",
        "compute.create_flavor_extra_specs",
        f"/traits/{TRAIT}",
        f"/resource_providers/{uuid}/traits",
    ]
    # One connection for the whole step.
    assert cloud.connect_kwargs["cloud"] == "fake"


def test_a_second_run_changes_nothing_and_keeps_the_description(cloud, run_module):
    cloud.add_provider(HOST, traits={"COMPUTE_NODE"})
    first = run_module(module, ARGS)
    flavor = flavor_named(cloud, FLAVOR)
    flavor.description = OLD_DESCRIPTION  # created an hour before the re-run
    cloud.calls.clear()

    second = run_module(module, ARGS)

    assert second["changed"] is False, second
    assert cloud.mutations == []
    assert flavor_named(cloud, FLAVOR) is flavor
    assert label_of(second)["flavor"]["id"] == label_of(first)["flavor"]["id"]
    assert label_of(second)["flavor"]["description"] == OLD_DESCRIPTION
    assert label_of(second)["provider"]["traits"] == ["COMPUTE_NODE", TRAIT]


def test_sets_a_missing_or_different_extra_spec_and_keeps_the_others(cloud, run_module):
    uuid, flavor = labelled(cloud)
    flavor.extra_specs = {f"trait:{TRAIT}": "forbidden", "hw:cpu_policy": "shared"}

    result = run_module(module, ARGS)

    assert result["changed"] is True
    assert flavor.extra_specs == {f"trait:{TRAIT}": "required", "hw:cpu_policy": "shared"}
    assert label_of(result)["flavor"]["extra_specs"] == flavor.extra_specs
    assert [c[0] for c in cloud.mutations] == ["compute.create_flavor_extra_specs"]
    assert flavor.description == OLD_DESCRIPTION


def test_a_flavor_of_another_size_is_created_again_with_its_description(cloud, run_module):
    uuid, flavor = labelled(cloud)
    flavor.ram = 64

    result = run_module(module, ARGS)

    assert result["changed"] is True
    new = flavor_named(cloud, FLAVOR)
    assert new.id != flavor.id and flavor not in cloud.flavors
    assert (new.ram, new.vcpus, new.disk) == (128, 1, 0)
    assert new.description == OLD_DESCRIPTION
    assert new.extra_specs == {f"trait:{TRAIT}": "required"}
    assert label_of(result)["flavor"]["id"] == new.id


def test_retries_when_the_provider_changes_meanwhile(cloud, clock, run_module):
    # nova-compute updates the provider twice between our read and our write.
    uuid = cloud.add_provider(HOST, traits={"COMPUTE_NODE"}, generation=1)
    cloud.conflicts = 2

    result = run_module(module, ARGS)

    assert result.get("changed") is True, result
    puts = [c for c in cloud.called("placement.put") if c[1][0].endswith("/traits")]
    puts = [c for c in puts if c[1][0].startswith("/resource_providers/")]
    assert [c[2]["json"]["resource_provider_generation"] for c in puts] == [1, 2, 3]
    assert cloud.providers[uuid]["traits"] == {"COMPUTE_NODE", TRAIT}


def test_gives_up_in_one_line_when_the_provider_keeps_changing(cloud, clock, run_module):
    cloud.add_provider(HOST, traits={"COMPUTE_NODE"})
    cloud.conflicts = 100

    result = run_module(module, ARGS)

    assert result["failed"] is True
    assert result["msg"] == (
        f"cannot update traits of resource provider {HOST}: it kept changing during 10 "
        "attempts (resource provider generation conflict (HTTP 409))"
    )


def test_check_mode_changes_nothing(cloud, run_module):
    uuid = cloud.add_provider(HOST, traits={"COMPUTE_NODE"})

    result = run_module(module, ARGS, check_mode=True)

    assert result["changed"] is True
    assert cloud.mutations == []
    assert cloud.flavors == [] and TRAIT not in cloud.traits
    assert cloud.providers[uuid]["traits"] == {"COMPUTE_NODE"}
    assert label_of(result)["flavor"]["id"] is None
    assert DESCRIPTION_RE.match(label_of(result)["flavor"]["description"])
    assert label_of(result)["flavor"]["extra_specs"] == {f"trait:{TRAIT}": "required"}
    assert label_of(result)["provider"]["traits"] == ["COMPUTE_NODE", TRAIT]


def test_check_mode_on_a_labelled_shard_tells_no_change(cloud, run_module):
    labelled(cloud)

    result = run_module(module, ARGS, check_mode=True)

    assert result["changed"] is False
    assert cloud.mutations == []


def test_a_bad_label_fails_in_one_line_before_any_call(cloud, run_module):
    result = run_module(module, dict(ARGS, label="shard-XYZ\nnope"))

    assert result["failed"] is True
    assert "\n" not in result["msg"]
    assert result["msg"].startswith("label 'shard-XYZ\\nnope' is not a shard label")
    assert cloud.calls == []


def test_no_label_before_the_cloud_sees_the_shard(cloud, run_module):
    # No provider: the wait fails, and nothing of the label is written.
    result = run_module(module, dict(ARGS, timeout=5))

    assert result["failed"] is True
    assert result["msg"].startswith(f"resource provider {HOST} of compute service {HOST} did not")
    assert "label_failed" not in result
    assert cloud.mutations == []


def test_a_flavor_of_that_name_without_the_label_is_not_taken_over(cloud, run_module):
    cloud.add_provider(HOST, traits={"COMPUTE_NODE"})
    decoy = cloud.add_flavor(FLAVOR, description="somebody else's")

    result = run_module(module, ARGS)

    assert result["failed"] is True
    assert result["msg"] == (
        f'flavor {FLAVOR} ({decoy.id}) exists but its description "somebody else\'s" does not '
        f"carry label {LABEL}: it is not this run's, and is left alone"
    )
    assert cloud.mutations == []


def test_the_label_step_needs_the_flavor_size_and_the_label(cloud, run_module):
    no_size = run_module(module, dict(ARGS, label_step=dict(probe_image="cirros")))
    no_label = run_module(module, dict(host=HOST, label_step=dict(flavor=SIZE)))

    assert no_size["failed"] is True and "flavor" in no_size["msg"]
    assert no_label["failed"] is True and "label" in no_label["msg"]
    assert cloud.mutations == []


def test_the_label_step_is_for_nova_compute_only(cloud, run_module):
    result = run_module(module, dict(ARGS, binary="nova-conductor"))

    assert result["failed"] is True
    assert result["msg"] == "label_step only applies to binary nova-compute"


def test_without_the_label_step_nothing_is_labelled(cloud, run_module):
    # The upgrade's re-run of the registered step: the shard keeps its label.
    cloud.add_provider(HOST, traits={"COMPUTE_NODE"})
    cloud.add_image("cirros")

    result = run_module(module, dict(host=HOST, label=LABEL, timeout=120))

    assert result.get("failed") is not True, result.get("msg")
    assert "label" not in result
    assert cloud.mutations == [] and cloud.called("compute.create_server") == []


def events(ws):
    return [(e["phase"], e["event"]) for e in phases.read_events(ws / phases.PHASES_FILE)]


def phased(ws, probe_image=""):
    """The deploy role's arguments: deploy ends once the cloud sees the shard, then label."""
    return dict(
        ARGS,
        phase=dict(workspace=str(ws), name="deploy", end=True),
        label_step=dict(
            flavor=SIZE,
            probe_image=probe_image,
            phase=dict(workspace=str(ws), name="label", start=True, end=True),
        ),
    )


def test_deploy_ends_when_the_cloud_sees_the_shard_then_the_label_phase(
    cloud, run_module, tmp_path, monkeypatch
):
    probe_ready(cloud, "ERROR")
    ws = tmp_path / "ws"
    seen = {}
    create_server = cloud.compute.create_server

    def probe(**attrs):  # what the record held when the label started its work
        seen["events"] = events(ws)
        return create_server(**attrs)

    monkeypatch.setattr(cloud.compute, "create_server", probe)

    result = run_module(module, phased(ws, "cirros"))

    assert label_of(result)["probe"]["refused"] is True
    assert seen["events"] == [("deploy", "end"), ("label", "start")]
    assert events(ws) == [("deploy", "end"), ("label", "start"), ("label", "end")]


def test_a_label_that_fails_ends_deploy_but_not_the_label_phase(cloud, run_module, tmp_path):
    probe_ready(cloud, "ACTIVE")  # the cloud does not isolate the shard
    ws = tmp_path / "ws"

    result = run_module(module, phased(ws, "cirros"))

    assert result["failed"] is True and result["label_failed"] is True
    assert result["msg"].startswith("this cloud does not isolate shards")
    assert events(ws) == [("deploy", "end"), ("label", "start")]


def test_check_mode_records_no_phase(cloud, run_module, tmp_path):
    cloud.add_provider(HOST, traits={"COMPUTE_NODE"})
    ws = tmp_path / "ws"

    result = run_module(module, phased(ws), check_mode=True)

    assert label_of(result)["trait"] == TRAIT
    assert not (ws / phases.PHASES_FILE).exists()


def test_check_mode_before_the_provider_exists_tells_a_change(cloud, run_module):
    result = run_module(module, ARGS, check_mode=True)

    assert result["changed"] is True and result["label"] is None
    assert cloud.mutations == []


def test_the_flavor_is_private_to_the_jobs_project(cloud, run_module):
    cloud.add_provider(HOST, traits={"COMPUTE_NODE"})

    run_module(module, ARGS)

    flavor = flavor_named(cloud, FLAVOR)
    assert flavor.is_public is False and flavor.projects == [OWN_PROJECT]


def test_a_public_flavor_of_an_older_run_is_made_private_keeping_its_description(cloud, run_module):
    uuid, flavor = labelled(cloud)
    flavor.is_public = True

    result = run_module(module, ARGS)

    assert result["changed"] is True
    again = flavor_named(cloud, FLAVOR)
    assert again is not flavor and again.is_public is False
    assert again.description == OLD_DESCRIPTION


PROBE_ARGS = dict(ARGS, label_step=dict(flavor=SIZE, probe_image="cirros"))


def probe_ready(cloud, boot_result):
    """The shard's provider, the probe's image, and what the probe server turns into."""
    cloud.add_provider(HOST, traits={"COMPUTE_NODE"})
    cloud.add_image("cirros")
    cloud.boot_result = boot_result


def test_the_probe_proves_isolation_and_leaves_nothing(cloud, run_module):
    probe_ready(cloud, "ERROR")  # the scheduler refuses: no valid host

    result = run_module(module, PROBE_ARGS)

    assert label_of(result)["probe"]["refused"] is True
    (create,) = cloud.called("compute.create_server")
    assert create[2]["host"] == HOST and create[2]["name"] == f"{LABEL}-probe"
    probe_flavor = create[2]["flavor_id"]
    # Not the shard's flavor: no trait, so the shard must not take it.
    assert probe_flavor != flavor_named(cloud, FLAVOR).id
    assert cloud.servers == []
    assert [f.name for f in cloud.flavors] == [FLAVOR]


def test_the_probe_waits_for_the_fault_nova_records_after_the_error(cloud, run_module):
    # Eight jobs at once: the probe's first look found ERROR, and no fault yet.
    probe_ready(cloud, "ERROR")
    cloud.boot_fault_late = True

    result = run_module(module, PROBE_ARGS)

    assert result.get("failed") is not True, result.get("msg")
    assert label_of(result)["probe"]["refused"] is True


def test_the_probe_fails_the_task_on_a_cloud_that_does_not_isolate(cloud, run_module):
    probe_ready(cloud, "ACTIVE")  # placed on the shard

    result = run_module(module, PROBE_ARGS)

    assert result["failed"] is True
    assert result["msg"].startswith(
        f"this cloud does not isolate shards: a server whose flavor does not require {TRAIT} "
        f"was placed on the shard {HOST}"
    )
    assert cloud.servers == []
    assert [f.name for f in cloud.flavors] == [FLAVOR]


def test_the_probe_says_when_it_failed_for_another_reason(cloud, run_module):
    probe_ready(cloud, "ERROR")
    cloud.boot_fault = "Image cirros is not active."

    result = run_module(module, PROBE_ARGS)

    assert result["failed"] is True
    assert result["msg"] == (
        "the isolation probe failed for another reason than isolation: Image cirros is not active."
    )


def test_a_probe_that_cannot_be_created_leaves_no_flavor_and_says_why(
    cloud, run_module, monkeypatch
):
    probe_ready(cloud, "ERROR")

    def refused(**attrs):
        raise fake_cloud.http_error(
            403, "Policy doesn't allow compute:servers:create:requested_destination"
        )

    monkeypatch.setattr(cloud.compute, "create_server", refused)

    result = run_module(module, PROBE_ARGS)

    assert result["failed"] is True
    assert result["msg"].startswith(f"the isolation probe {LABEL}-probe failed: ")
    assert "requested_destination" in result["msg"]
    assert [f.name for f in cloud.flavors] == [FLAVOR]


def test_the_probe_waits_for_the_provider_s_inventory(cloud, clock, run_module):
    """A provider without its inventory yet refuses every server: the probe waits for
    it, and without it fails rather than take a refusal for isolation."""
    probe_ready(cloud, "ERROR")
    provider = cloud.provider_named(HOST)
    reported = provider["inventories"]
    provider["inventories"] = {}

    result = run_module(module, dict(PROBE_ARGS, timeout=5))

    assert result["failed"] is True
    assert result["msg"] == (
        f"resource provider {HOST} reported no inventory for a server of 1 vCPU and 128 MiB, "
        "so the isolation probe would prove nothing"
    )
    assert cloud.called("compute.create_server") == []

    # Once reported, the probe runs.
    provider["inventories"] = reported
    assert label_of(run_module(module, PROBE_ARGS))["probe"]["refused"] is True


def test_a_connection_error_while_labelling_is_the_labels_failure(
    cloud, run_module, monkeypatch, tmp_path
):
    """Not only the API's errors: keystoneauth's and requests' (the cloud went
    away mid-label) fail the label, not the service's log."""
    probe_ready(cloud, "ERROR")

    def unreachable(**attrs):
        raise ConnectionError("Unable to establish connection to http://cloud:8774")

    monkeypatch.setattr(cloud.compute, "create_server", unreachable)

    result = run_module(module, phased(tmp_path / "ws", "cirros"))

    assert result["failed"] is True and result["label_failed"] is True
    assert result["msg"] == (
        "labelling the shard failed: Unable to establish connection to http://cloud:8774"
    )
