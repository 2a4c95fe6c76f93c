"""shard_label: the shard's trait on its resource provider, and a flavor requiring it."""

from conftest import placement_get, provider

from shard_jobs.rules import labels


def test_trait_exists(conn, trait):
    assert trait in placement_get(conn, f"/traits?name=in:{trait}")["traits"]


def test_trait_on_the_shards_resource_provider(conn, label, trait):
    rp = provider(conn, label)
    assert rp is not None
    traits = placement_get(conn, f"/resource_providers/{rp['uuid']}/traits")["traits"]
    assert trait in traits


def test_no_other_provider_has_the_trait(conn, label, trait):
    holders = placement_get(conn, f"/resource_providers?required={trait}", "1.18")
    assert [rp["name"] for rp in holders["resource_providers"]] == [label]


def test_flavor_requires_the_trait(conn, label, trait):
    flavor = conn.compute.find_flavor(
        labels.flavor_name_for(label), get_extra_specs=True, ignore_missing=False
    )
    assert flavor.extra_specs == {f"trait:{trait}": "required"}
    assert (flavor.ram, flavor.vcpus, flavor.disk) == (128, 1, 0)
    assert labels.label_of_description(flavor.description) == label
    assert labels.created_of_description(flavor.description)


def test_phase_recorded(host, workspace):
    lines = host.file(str(workspace / "phases.jsonl")).content_string
    assert '"phase": "label", "event": "end"' in lines
