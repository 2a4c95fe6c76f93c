"""Fixtures of the zuul tier: one real Zuul for the whole session (see zuul_site.py)."""

import importlib.util
import os
import time

import openstack
import pytest
import zuul_site

from shard_jobs import cloud, paths


def _load_e2e_helpers():
    """tests/e2e/conftest.py's leftovers(): what still carries a label, read with openstacksdk."""
    spec = importlib.util.spec_from_file_location(
        "e2e_helpers", paths.REPO / "tests" / "e2e" / "conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


leftovers = _load_e2e_helpers().leftovers


@pytest.fixture(scope="session")
def site():
    """Zuul with ZooKeeper, sshd, MariaDB and local git repositories; stopped at the end."""
    started = time.monotonic()
    s = zuul_site.Site()
    try:
        s.prepare()
        zuul_site.say(f"prepared in {time.monotonic() - started:.0f}s: {s.work}")
        s.start()
        zuul_site.say(f"Zuul is up after {time.monotonic() - started:.0f}s: {s.web_url}")
        yield s
    finally:
        s.stop()
        left = s.listeners()
        assert not left, f"ports still listening after the Zuul site stopped: {left}"
        zuul_site.say(f"stopped; logs and job dirs kept in {s.work}")


@pytest.fixture(scope="session")
def admin_conn():
    """The operator's view of the embedded cloud, independent of the jobs under test."""
    manifest = cloud.load_manifest()
    assert manifest, "the embedded cloud is not up"
    os.environ["OS_CLIENT_CONFIG_FILE"] = manifest["clouds_yaml"]
    return openstack.connect(cloud=manifest["admin_cloud_name"])
