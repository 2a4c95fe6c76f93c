"""shard: the names of a run and its profile, derived from the zuul variable."""

import json

import pytest

from shard_jobs import paths
from shard_jobs.rules import labels, profiles

PROFILES = paths.ROLES / "shard" / "profiles"


@pytest.fixture(scope="module")
def resolved(host, state):
    return json.loads(host.file(f"{state['molecule_shard_tmp']}/resolved.json").content_string)


def test_names_derive_from_the_build(resolved, build, state):
    label = labels.label_for(build)
    assert resolved["label"] == resolved["host"] == label
    assert resolved["trait"] == labels.trait_for(label)
    assert resolved["workspace"] == f"{state['shard_workspace_root']}/{label}"
    assert resolved["venv"] == f"{resolved['workspace']}/venv"
    assert resolved["clouds_yaml"] == f"{resolved['workspace']}/clouds.yaml"


def test_profile_and_options(resolved, state):
    assert resolved["profile_name"] == "nova-compute"
    assert resolved["package"] == "nova"
    assert resolved["profile_path"].endswith("/roles/shard/profiles/nova-compute")
    options = resolved["options"]
    assert options["flavor_ram"] == 256  # the job's override
    assert options["compute_driver"] == "fake.FakeDriverWithoutFakeNodes"  # the profile's
    assert options["image"] == state["shard_cloud"]["image"]  # from the operator's handout


def test_project_under_test_found_in_zuul_projects(resolved, state, src_dir):
    project = resolved["project"]
    assert project["canonical_name"] == "opendev.org/openstack/nova"
    assert project["src_dir"] == str(src_dir)
    assert project["commit"] == state["molecule_shard_commit"]


def test_cloud_name_from_the_secret(resolved, state):
    assert resolved["cloud_name"] == state["shard_cloud"]["cloud_name"]


@pytest.fixture(scope="module")
def refused(host, state):
    return json.loads(host.file(f"{state['molecule_shard_tmp']}/refused.json").content_string)


def test_bad_input_refused(refused):
    assert len(refused) == 2
    assert refused[0].startswith("invalid build id 'not-a-build'")
    assert refused[1].startswith("unknown shard profile 'no-such-profile'; known profiles:")


def test_unknown_profile_lists_the_known_ones(refused):
    # The rule of ./shard run too (module_utils/shard_profiles.py).
    assert refused[1] == profiles.profile_error("no-such-profile", str(PROFILES))


def test_creates_nothing_on_the_node(host, state):
    assert not host.file(state["shard_workspace_root"]).exists
