"""Which profiles exist (module_utils/shard_profiles.py): one rule for ./shard run and the
shard role, which refuse the same names with the same line."""

import pytest
from unit_helpers import jinja

from shard_jobs import paths, runner
from shard_jobs.rules import profiles
from shard_jobs.settings import RunError

ROOT = str(paths.ROLES / "shard" / "profiles")


def test_the_profiles_of_the_repository_are_known():
    assert profiles.known_profiles(ROOT) == ["glance-api", "nova-compute"]
    assert profiles.profile_error("nova-compute", ROOT) is None
    assert profiles.profile_path("glance-api", ROOT) == f"{ROOT}/glance-api"


@pytest.mark.parametrize(
    "name", ["no-such-profile", "../../etc", "nova-compute/", "Nova-compute", "nova-compute\n", 3]
)
def test_anything_else_is_refused_in_one_line_naming_the_known_ones(name):
    error = profiles.profile_error(name, ROOT)
    assert error == (
        f"unknown shard profile {str(name)[:60]!r}; known profiles: glance-api, nova-compute"
    )


def test_a_profile_dir_is_taken_when_it_holds_a_profile(tmp_path):
    assert profiles.profile_error("anything", ROOT, str(tmp_path)).startswith("unknown shard")
    (tmp_path / "profile.yaml").write_text("name: mine\n")
    assert profiles.profile_error("anything", ROOT, str(tmp_path)) is None
    assert profiles.profile_path("anything", ROOT, str(tmp_path)) == str(tmp_path)


def test_the_runner_refuses_with_the_rule_s_line():
    run = runner.LocalRun.__new__(runner.LocalRun)
    run.job = type("Job", (), {"variables": {"shard_profile": "../../etc"}})()
    with pytest.raises(RunError) as refused:
        run.profile()
    assert str(refused.value) == profiles.profile_error("../../etc", ROOT)
    run.job.variables["shard_profile"] = "glance-api"
    assert run.profile()["name"] == "glance-api"


def test_the_role_refuses_with_the_rule_s_line(tmp_path):
    result = jinja(
        "[bad | shard_profile_error(root, ''), good | shard_profile_error(root, ''),"
        " bad | shard_profile_error(root, mine), bad | shard_profile_path(root, ''),"
        " bad | shard_profile_path(root, mine)]",
        bad="no-such-profile",
        good="nova-compute",
        root=ROOT,
        mine=str(tmp_path),
    )
    assert not result.get("failed"), result
    assert result["msg"] == [
        profiles.profile_error("no-such-profile", ROOT),
        "",
        profiles.profile_error("no-such-profile", ROOT, str(tmp_path)),
        f"{ROOT}/no-such-profile",
        str(tmp_path),
    ]
