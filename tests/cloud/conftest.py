"""Fixtures of the `cloud` tier (see cloud_helpers.py): the isolated cloud of the session."""

import fcntl
import shutil
from pathlib import Path

import pytest
import yaml
from cloud_helpers import BASE, LOCK, IsolatedCloud


def _remove_venvs(cloud: IsolatedCloud) -> None:
    """The services' virtualenv and those layered on it (a nova commit's, another nova
    release's for the ordinary compute), named after it."""
    for venv in [cloud.venv, *cloud.venv.parent.glob(cloud.venv.name + "-*")]:
        shutil.rmtree(venv, ignore_errors=True)
    # And their lock files (shard_virtualenv's <path>.lock), which a new run makes again.
    for lock in cloud.venv.parent.glob(cloud.venv.name + "*.lock"):
        lock.unlink(missing_ok=True)


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
        # destroy keeps the services' virtualenv (a package cache): this tier's
        # goes too, so that every session installs the services from nothing.
        _remove_venvs(cloud)
        try:
            yield cloud
        finally:
            # For the record (pytest -s shows them); no test asserts on them.
            for what, seconds in cloud.timings.items():
                print(f"cloud up, {what}: {seconds:.1f}s")
            result = cloud.shard("destroy")
            _remove_venvs(cloud)
            assert result.rc == 0, result


@pytest.fixture(scope="session")
def secret(iso) -> dict:
    """What the cloud hands out to shard jobs (shard-cloud-secret.yaml)."""
    return yaml.safe_load(Path(iso.manifest["secret_file"]).read_text())
