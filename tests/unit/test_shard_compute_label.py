"""shard_compute_label: the label step of a nova-compute shard, in one module run."""

import re

import fake_cloud
import shard_compute_label as module
from fake_cloud import OWN_PROJECT

LABEL = "shard-0123456789ab"
HOST = LABEL
TRAIT = "CUSTOM_SHARD_0123456789AB"
FLAVOR = f"{LABEL}-flavor"
SIZE = dict(ram=128, vcpus=1, disk=0)
ARGS = dict(label=LABEL, provider=HOST, flavor=SIZE)
DESCRIPTION_RE = re.compile(
    rf"^shard-jobs label={LABEL} created=\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"
)
OLD_DESCRIPTION = f"shard-jobs label={LABEL} created=2026-11-25T13:00:00Z"

OTHER = "shard-998877665544"
OTHER_TRAIT = "CUSTOM_SHARD_998877665544"


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
    assert result["trait"] == TRAIT
    assert result["flavor"] == dict(
        id=flavor.id,
        name=FLAVOR,
        description=flavor.description,
        extra_specs={f"trait:{TRAIT}": "required"},
        ram=128,
        vcpus=1,
        disk=0,
    )
    assert result["provider"] == dict(
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
    assert second["flavor"]["id"] == first["flavor"]["id"]
    assert second["flavor"]["description"] == OLD_DESCRIPTION
    assert second["provider"]["traits"] == ["COMPUTE_NODE", TRAIT]


def test_sets_a_missing_or_different_extra_spec_and_keeps_the_others(cloud, run_module):
    uuid, flavor = labelled(cloud)
    flavor.extra_specs = {f"trait:{TRAIT}": "forbidden", "hw:cpu_policy": "shared"}

    result = run_module(module, ARGS)

    assert result["changed"] is True
    assert flavor.extra_specs == {f"trait:{TRAIT}": "required", "hw:cpu_policy": "shared"}
    assert result["flavor"]["extra_specs"] == flavor.extra_specs
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
    assert result["flavor"]["id"] == new.id


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
    assert result["flavor"]["id"] is None
    assert DESCRIPTION_RE.match(result["flavor"]["description"])
    assert result["flavor"]["extra_specs"] == {f"trait:{TRAIT}": "required"}
    assert result["provider"]["traits"] == ["COMPUTE_NODE", TRAIT]


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


def test_a_missing_provider_fails_before_any_write(cloud, run_module):
    result = run_module(module, ARGS)

    assert result["failed"] is True
    assert result["msg"].startswith(f"resource provider {HOST} not found in placement")
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


def test_present_needs_the_flavor_size(cloud, run_module):
    result = run_module(module, dict(label=LABEL, provider=HOST))

    assert result["failed"] is True
    assert "flavor" in result["msg"]


def test_absent_removes_only_this_labels(cloud, run_module):
    uuid, flavor = labelled(cloud)
    cloud.providers[uuid]["traits"].add("HW_CPU_X86_AVX2")
    other_uuid, other_flavor = labelled(cloud, OTHER, OTHER_TRAIT)
    plain = cloud.add_flavor("m1.tiny")

    result = run_module(module, dict(label=LABEL, provider=HOST, state="absent"))

    assert result.get("changed") is True, result
    assert flavor not in cloud.flavors
    assert TRAIT not in cloud.traits
    assert cloud.providers[uuid]["traits"] == {"COMPUTE_NODE", "HW_CPU_X86_AVX2"}
    assert result["flavor"]["id"] == flavor.id
    assert result["provider"] == dict(
        uuid=uuid, name=HOST, traits=["COMPUTE_NODE", "HW_CPU_X86_AVX2"]
    )
    # The other label's and the cloud's own are untouched.
    assert other_flavor in cloud.flavors and plain in cloud.flavors
    assert OTHER_TRAIT in cloud.traits
    assert cloud.providers[other_uuid]["traits"] == {"COMPUTE_NODE", OTHER_TRAIT}

    cloud.calls.clear()
    again = run_module(module, dict(label=LABEL, provider=HOST, state="absent"))
    assert again["changed"] is False and cloud.mutations == []
    assert again["flavor"] is None


def test_absent_leaves_a_flavor_of_that_name_without_the_label(cloud, run_module):
    cloud.add_provider(HOST, traits={"COMPUTE_NODE"})
    decoy = cloud.add_flavor(FLAVOR, description="somebody else's")

    result = run_module(module, dict(label=LABEL, provider=HOST, state="absent"))

    assert result["changed"] is False
    assert decoy in cloud.flavors
    assert cloud.mutations == []


def test_absent_without_the_provider_still_deletes_flavor_and_trait(cloud, run_module):
    cloud.traits.add(TRAIT)
    flavor = cloud.add_flavor(FLAVOR, description=OLD_DESCRIPTION)

    result = run_module(module, dict(label=LABEL, provider=HOST, state="absent"))

    assert result["changed"] is True
    assert result["provider"] is None
    assert flavor not in cloud.flavors and TRAIT not in cloud.traits


def test_absent_in_check_mode_changes_nothing(cloud, run_module):
    uuid, flavor = labelled(cloud)

    result = run_module(module, dict(label=LABEL, provider=HOST, state="absent"), check_mode=True)

    assert result["changed"] is True
    assert cloud.mutations == []
    assert result["provider"]["traits"] == ["COMPUTE_NODE"]
    assert flavor in cloud.flavors and TRAIT in cloud.traits


# -- private flavors, and the isolation probe --------------------------------


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


PROBE_ARGS = dict(ARGS, probe_image="cirros")


def probe_ready(cloud, boot_result):
    """A mapped shard host, the probe's image, and what the probe server turns into."""
    cloud.add_provider(HOST, traits={"COMPUTE_NODE"})
    cloud.mapped_hosts.add(HOST)
    cloud.add_image("cirros")
    cloud.boot_result = boot_result


def test_the_probe_proves_isolation_and_leaves_nothing(cloud, run_module):
    probe_ready(cloud, "ERROR")  # the scheduler refuses: no valid host

    result = run_module(module, PROBE_ARGS)

    assert result["probe"]["refused"] is True
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
    assert result["probe"]["refused"] is True


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
