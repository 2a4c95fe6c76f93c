"""shard_compute_quota: room in the project's compute quota, read from nova's limits."""

import shard_compute_quota as module
from fake_cloud import compute_limits as limits


def test_room_left(cloud, run_module):
    limits(cloud, instances_used=3, total_cores_used=3, total_ram_used=384)
    result = run_module(module, dict(servers=2, vcpus=2, ram=128))

    assert result.get("failed") is not True
    assert result["changed"] is False
    assert result["limits"] == {
        "instances": {"max": 10, "used": 3, "needed": 2},
        "cores": {"max": 20, "used": 3, "needed": 4},
        "ram": {"max": 51200, "used": 384, "needed": 256},
    }
    assert cloud.mutations == []


def test_no_instance_left_is_one_line_naming_the_project_and_the_limit(cloud, run_module):
    limits(cloud, instances=0)
    result = run_module(module, dict(vcpus=1, ram=128))

    assert result["failed"] is True
    assert result["msg"] == (
        "target cloud has no room: the quota of project p-shard-ci is exhausted: "
        "instances 0 of 0 servers used, 1 more needed"
    )
    assert "\n" not in result["msg"]


def test_every_short_limit_is_named(cloud, run_module):
    limits(cloud, instances_used=10, total_cores_used=19, total_ram_used=51200)
    result = run_module(module, dict(vcpus=2, ram=64))

    assert result["failed"] is True
    assert "instances 10 of 10 servers used, 1 more needed" in result["msg"]
    assert "cores 19 of 20 cores used, 2 more needed" in result["msg"]
    assert "ram 51200 of 51200 MB used, 64 more needed" in result["msg"]


def test_unlimited_and_unreported_limits_never_fail(cloud, run_module):
    limits(cloud, instances=-1, instances_used=500, total_cores=None, total_ram=-1)
    result = run_module(module, dict(servers=3, vcpus=8, ram=4096))

    assert result.get("failed") is not True
    assert result["limits"]["instances"] == {"max": -1, "used": 500, "needed": 3}
    assert result["limits"]["cores"]["max"] is None


def test_check_mode_reads_too(cloud, run_module):
    limits(cloud, instances=1, instances_used=1)
    result = run_module(module, dict(), check_mode=True)

    assert result["failed"] is True
    assert "instances 1 of 1 servers used" in result["msg"]
