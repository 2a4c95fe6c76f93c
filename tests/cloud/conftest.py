"""Fixtures of the `cloud` tier (see cloud_helpers.py): the isolated cloud of the session."""

import fcntl
from pathlib import Path

import pytest
import yaml
from cloud_helpers import BASE, LOCK, IsolatedCloud


@pytest.fixture(scope="session")
def iso() -> IsolatedCloud:
    """The isolated cloud, destroyed before the first test and after the last.

    Its state directory has a fixed place, so that the first destroy also stops
    whatever an interrupted session left running.
    """
    BASE.mkdir(parents=True, exist_ok=True)
    LOCK.touch(exist_ok=True)
    with LOCK.open() as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cloud = IsolatedCloud(BASE)
        # From nothing: whatever an earlier session left (databases, vhost, users).
        result = cloud.shard("destroy")
        assert result.rc == 0, result
        try:
            yield cloud
        finally:
            result = cloud.shard("destroy")
            assert result.rc == 0, result


@pytest.fixture(scope="session")
def secret(iso) -> dict:
    """What the cloud hands out to shard jobs (shard-cloud-secret.yaml)."""
    return yaml.safe_load(Path(iso.manifest["secret_file"]).read_text())
