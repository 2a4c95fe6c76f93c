"""shard_provider_traits: adding and removing traits of a provider, keeping the others."""

import shard_provider_traits as module

HOST = "shard-0123abcd4567"
TRAIT = "CUSTOM_SHARD_0123ABCD4567"


def puts(cloud):
    return [c for c in cloud.calls if c[0] == "placement.put"]


def test_present_adds_the_trait_and_keeps_the_others(cloud, run_module):
    cloud.traits.add(TRAIT)
    uuid = cloud.add_provider(HOST, traits={"COMPUTE_NODE", "HW_CPU_X86_AVX2"}, generation=5)

    result = run_module(module, dict(provider=HOST, traits=[TRAIT]))

    assert result["changed"] is True
    assert result["traits"] == ["COMPUTE_NODE", TRAIT, "HW_CPU_X86_AVX2"]
    assert result["provider"] == dict(uuid=uuid, name=HOST, generation=6)
    (call,) = puts(cloud)
    assert call[1] == (f"/resource_providers/{uuid}/traits",)
    assert call[2]["json"] == {
        "traits": ["COMPUTE_NODE", TRAIT, "HW_CPU_X86_AVX2"],
        "resource_provider_generation": 5,
    }
    assert call[2]["microversion"] == "1.6"
    assert cloud.providers[uuid]["traits"] == {"COMPUTE_NODE", "HW_CPU_X86_AVX2", TRAIT}


def test_present_is_a_no_op_when_the_trait_is_there(cloud, run_module):
    cloud.traits.add(TRAIT)
    cloud.add_provider(HOST, traits={"COMPUTE_NODE", TRAIT})

    result = run_module(module, dict(provider=HOST, traits=[TRAIT]))

    assert result["changed"] is False
    assert result["traits"] == ["COMPUTE_NODE", TRAIT]
    assert cloud.mutations == []


def test_provider_by_uuid(cloud, run_module):
    cloud.traits.add(TRAIT)
    uuid = cloud.add_provider(HOST)

    result = run_module(module, dict(provider=uuid, traits=[TRAIT]))

    assert result["changed"] is True
    assert result["provider"]["name"] == HOST


def test_absent_removes_only_these(cloud, run_module):
    cloud.traits.update({TRAIT, "CUSTOM_OTHER"})
    uuid = cloud.add_provider(HOST, traits={"COMPUTE_NODE", TRAIT, "CUSTOM_OTHER"})

    result = run_module(module, dict(provider=HOST, traits=[TRAIT], state="absent"))

    assert result["changed"] is True
    assert result["traits"] == ["COMPUTE_NODE", "CUSTOM_OTHER"]
    assert cloud.providers[uuid]["traits"] == {"COMPUTE_NODE", "CUSTOM_OTHER"}


def test_absent_is_a_no_op_when_the_trait_is_gone(cloud, run_module):
    cloud.add_provider(HOST, traits={"COMPUTE_NODE"})

    # The trait itself no longer exists either: it is absent all the same.
    result = run_module(module, dict(provider=HOST, traits=[TRAIT], state="absent"))

    assert result["changed"] is False
    assert result["traits"] == ["COMPUTE_NODE"]
    assert cloud.mutations == []


def test_present_fails_clearly_on_an_undefined_trait(cloud, run_module):
    cloud.traits.add(TRAIT)
    cloud.add_provider(HOST)

    result = run_module(module, dict(provider=HOST, traits=[TRAIT, "CUSTOM_NOPE"]))

    assert result["failed"] is True
    assert result["msg"] == (
        "trait(s) not defined in placement: CUSTOM_NOPE "
        "(create them first, e.g. with openstack.cloud.trait)"
    )
    assert cloud.mutations == []


def test_missing_provider_fails_clearly(cloud, run_module):
    result = run_module(module, dict(provider=HOST, traits=[TRAIT]))

    assert result["failed"] is True
    assert result["msg"] == f"resource provider {HOST} not found in placement"


def test_retries_on_generation_conflict(cloud, clock, run_module):
    # nova-compute updates the provider twice between our read and our write.
    cloud.traits.add(TRAIT)
    uuid = cloud.add_provider(HOST, traits={"COMPUTE_NODE"}, generation=1)
    cloud.conflicts = 2

    result = run_module(module, dict(provider=HOST, traits=[TRAIT]))

    assert result["changed"] is True
    generations = [c[2]["json"]["resource_provider_generation"] for c in puts(cloud)]
    assert generations == [1, 2, 3]  # each retry re-read the generation
    assert cloud.providers[uuid]["traits"] == {"COMPUTE_NODE", TRAIT}


def test_gives_up_clearly_on_endless_conflicts(cloud, clock, run_module):
    cloud.traits.add(TRAIT)
    cloud.add_provider(HOST)
    cloud.conflicts = 100

    result = run_module(module, dict(provider=HOST, traits=[TRAIT]))

    assert result["failed"] is True
    assert result["msg"] == (
        f"cannot update traits of resource provider {HOST}: it kept changing during 10 "
        "attempts (resource provider generation conflict (HTTP 409))"
    )
    assert len(puts(cloud)) == 10


def test_check_mode_tells_but_does_not_write(cloud, run_module):
    cloud.traits.add(TRAIT)
    uuid = cloud.add_provider(HOST, traits={"COMPUTE_NODE"})

    result = run_module(module, dict(provider=HOST, traits=[TRAIT]), check_mode=True)

    assert result["changed"] is True
    assert result["traits"] == ["COMPUTE_NODE", TRAIT]
    assert cloud.mutations == []
    assert cloud.providers[uuid]["traits"] == {"COMPUTE_NODE"}
