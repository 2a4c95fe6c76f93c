"""shard_resource_provider_info: reading one provider from placement's REST answers."""

import pytest
import shard_resource_provider_info as module
from ansible.module_utils import shard_openstack
from fake_cloud import ns, response

HOST = "shard-0123abcd4567"
UUID = "4e8e5957-649f-477b-9e5b-f1f75b21c03c"
OTHER_UUID = "7d5d8e0d-0fd8-4a3c-9f0e-1a4a8f1f3a11"
SERVER = "0c1b9e5e-d3a4-4fb4-a8b3-3c2d1c57c0a1"

INVENTORIES = {
    "VCPU": {
        "total": 8,
        "reserved": 0,
        "min_unit": 1,
        "max_unit": 8,
        "step_size": 1,
        "allocation_ratio": 4.0,
    },
    "MEMORY_MB": {
        "total": 16384,
        "reserved": 512,
        "min_unit": 1,
        "max_unit": 16384,
        "step_size": 1,
        "allocation_ratio": 1.0,
    },
}


class FakePlacement:
    """conn.placement: answers GETs from a table of url -> (status, body), records them."""

    def __init__(self):
        self.answers = {}
        self.calls = []

    def get(self, url, **kwargs):
        self.calls.append((url, kwargs))
        if url.startswith("/resource_providers?"):  # a query: no match is an empty list
            status, body = self.answers.get(url, (200, {"resource_providers": []}))
        else:
            status, body = self.answers.get(url, (404, {"errors": [{"status": 404}]}))
        return response(status, body, url="http://placement.example" + url)

    @property
    def urls(self):
        return [url for url, _ in self.calls]

    def provider(self, uuid=UUID, name=HOST, generation=7):
        """A provider with inventories, traits and usages, found by name."""
        rp = {"uuid": uuid, "name": name, "generation": generation}
        self.answers[f"/resource_providers?name={name}"] = (200, {"resource_providers": [rp]})
        self.answers[f"/resource_providers/{uuid}"] = (200, rp)
        base = f"/resource_providers/{uuid}"
        self.answers[base + "/inventories"] = (
            200,
            {"inventories": INVENTORIES, "resource_provider_generation": generation},
        )
        self.answers[base + "/traits"] = (
            200,
            {
                "traits": ["HW_CPU_X86_AVX2", "COMPUTE_NODE", "CUSTOM_SHARD_0123ABCD4567"],
                "resource_provider_generation": generation,
            },
        )
        self.answers[base + "/usages"] = (
            200,
            {"usages": {"VCPU": 1, "MEMORY_MB": 64}, "resource_provider_generation": generation},
        )
        return rp


@pytest.fixture
def placement(monkeypatch):
    fake = FakePlacement()
    monkeypatch.setattr(shard_openstack.openstack, "connect", lambda **kw: ns(placement=fake))
    return fake


def test_reads_a_provider_by_name(placement, run_module):
    placement.provider()

    result = run_module(module, dict(provider=HOST))

    assert result["changed"] is False
    assert result["resource_provider"] == {"uuid": UUID, "name": HOST, "generation": 7}
    assert result["inventories"] == INVENTORIES
    assert result["traits"] == ["COMPUTE_NODE", "CUSTOM_SHARD_0123ABCD4567", "HW_CPU_X86_AVX2"]
    assert result["usages"] == {"VCPU": 1, "MEMORY_MB": 64}
    assert result["allocations"] == {}
    assert placement.urls == [
        f"/resource_providers?name={HOST}",
        f"/resource_providers/{UUID}/inventories",
        f"/resource_providers/{UUID}/traits",
        f"/resource_providers/{UUID}/usages",
    ]
    # Only reads, at the microversion whose answers the module decodes.
    for _, kwargs in placement.calls:
        assert kwargs == {"microversion": "1.28", "raise_exc": False}


def test_falls_back_to_the_uuid(placement, run_module):
    placement.provider()

    result = run_module(module, dict(provider=UUID))

    assert result["resource_provider"]["name"] == HOST
    assert placement.urls[:3] == [
        f"/resource_providers?name={UUID}",
        f"/resource_providers/{UUID}",
        f"/resource_providers/{UUID}/inventories",
    ]


def test_a_missing_provider_fails_clearly(placement, run_module):
    result = run_module(module, dict(provider=HOST))

    assert result["failed"] is True
    assert result["msg"] == f"no resource provider named {HOST}"
    assert placement.urls == [f"/resource_providers?name={HOST}", f"/resource_providers/{HOST}"]


def test_allocations_of_the_consumers_against_this_provider(placement, run_module):
    placement.provider()
    placement.answers[f"/allocations/{SERVER}"] = (
        200,
        {
            "allocations": {
                UUID: {"resources": {"VCPU": 1, "MEMORY_MB": 64}, "generation": 7},
                OTHER_UUID: {"resources": {"DISK_GB": 1}, "generation": 3},
            },
            "consumer_generation": 1,
            "project_id": "p",
            "user_id": "u",
        },
    )
    elsewhere = "5b6d4c3e-0000-4000-8000-00000000e15e"
    placement.answers[f"/allocations/{elsewhere}"] = (
        200,
        {"allocations": {OTHER_UUID: {"resources": {"VCPU": 2}, "generation": 3}}},
    )
    gone = "9f8e7d6c-0000-4000-8000-0000000000ff"  # placement answers {} for these
    placement.answers[f"/allocations/{gone}"] = (200, {"allocations": {}})

    result = run_module(module, dict(provider=HOST, consumers=[SERVER, elsewhere, gone]))

    assert result["changed"] is False
    assert result["allocations"] == {
        SERVER: {"VCPU": 1, "MEMORY_MB": 64},
        elsewhere: {},
        gone: {},
    }
    assert placement.urls[-3:] == [
        f"/allocations/{SERVER}",
        f"/allocations/{elsewhere}",
        f"/allocations/{gone}",
    ]


def test_a_consumer_placement_does_not_know_has_no_allocations(placement, run_module):
    placement.provider()

    result = run_module(module, dict(provider=HOST, consumers=[SERVER]))

    assert result["allocations"] == {SERVER: {}}


def test_an_error_answer_fails_clearly(placement, run_module):
    placement.answers[f"/resource_providers?name={HOST}"] = (403, {"errors": [{"status": 403}]})

    result = run_module(module, dict(provider=HOST))

    assert result["failed"] is True
    assert result["msg"] == f"placement GET /resource_providers?name={HOST} answered HTTP 403"


def test_check_mode_reads_all_the_same(placement, run_module):
    placement.provider()

    result = run_module(module, dict(provider=HOST, consumers=[SERVER]), check_mode=True)

    assert result["changed"] is False
    assert result["traits"] == ["COMPUTE_NODE", "CUSTOM_SHARD_0123ABCD4567", "HW_CPU_X86_AVX2"]
    assert len(placement.calls) == 5
