"""Fixtures for end-to-end runs of jobs against the embedded cloud."""

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import job_runs
import openstack
import openstack.config
import openstack.connection
import pytest
import yaml

from shard_jobs import sources

# The operator's view of the embedded cloud (a fixture).
admin_conn = job_runs.admin_conn


@pytest.fixture(scope="session")
def nova_release_tree():
    """The source release the embedded cloud runs (what `./shard run` tests by default)."""
    return sources.release_source("nova", sources.pinned_version("nova"))


def marked_copy(release_tree, tmp_path, module: str, anchor: str, statement: str):
    """(a copy of RELEASE_TREE whose MODULE logs a random marker after ANCHOR, the marker).

    STATEMENT is the logging call, with {marker} for the marker's repr.
    """
    marker = f"SHARD-E2E-MARKER-{uuid.uuid4().hex}"
    tree = tmp_path / release_tree.name.split("-")[0]
    shutil.copytree(release_tree, tree, symlinks=True)
    path = tree / module
    text = path.read_text()
    assert anchor in text, f"{anchor!r} not in {path}"
    path.write_text(text.replace(anchor, anchor + statement.format(marker=repr(marker)) + "\n", 1))
    return tree, marker


@pytest.fixture
def patched_nova(tmp_path, nova_release_tree):
    """A nova tree whose nova-compute logs a random marker when it starts."""
    return marked_copy(
        nova_release_tree,
        tmp_path,
        "nova/cmd/compute.py",
        "    logging.setup(CONF, 'nova')\n",
        "    logging.getLogger(__name__).warning({marker})",
    )


@pytest.fixture(scope="session")
def glance_release_tree():
    """The glance source release the embedded cloud runs (`./shard run`'s default)."""
    return sources.release_source("glance", sources.pinned_version("glance"))


@pytest.fixture
def patched_glance(tmp_path, glance_release_tree):
    """A glance tree whose API logs a random marker when it loads (no migration touched)."""
    return marked_copy(
        glance_release_tree,
        tmp_path,
        "glance/common/wsgi_app.py",
        '    logging.setup(CONF, "glance")\n',
        "    LOG.warning({marker})",
    )


@pytest.fixture
def logs_of():
    def _logs(summary) -> Path:
        return Path(summary["logs"])

    return _logs


# A cloud of its own for the upgrade job: nova refuses a compute older than the
# newest one that registered in its cell, so the "from" shard needs a cloud
# whose conductor has seen no newer compute (the default cloud has). Its ports
# lie below the kernel's ephemeral range (32768-60999), where no client
# connection can be holding one.
# The nova release before the pinned one: the upgrade job's previous-release
# (test_upgrade asserts that it chose this one). The upgrade cloud's ordinary
# compute runs it, as a cloud in the middle of its rolling upgrade does, so the
# cloud accepts the upgrade's "from" compute.
PREVIOUS_NOVA = "33.0.2"

UPGRADE_CLOUD = {
    "SHARD_CLOUD_VAR_COMPUTE_NOVA": PREVIOUS_NOVA,
    "SHARD_CLOUD_DIR": "/tmp/shard-jobs-upgrade-cloud",
    "SHARD_CLOUD_VAR_PORTS": json.dumps(
        {
            "keystone": 12000,
            "placement": 12778,
            "glance": 12292,
            "neutron": 12696,
            "nova_api": 12774,
        }
    ),
    "SHARD_CLOUD_VAR_DB_PREFIX": "shardupg_",
    "SHARD_CLOUD_VAR_DB_USER": "shard_upg",
    "SHARD_CLOUD_VAR_RABBIT_VHOST": "shard-upg",
    "SHARD_CLOUD_VAR_RABBIT_USER": "shard_upg",
    "SHARD_CLOUD_VAR_NAME": "shard-upgrade",
}


@pytest.fixture(scope="session")
def upgrade_cloud():
    """(environment for ./shard, admin connection) of a fresh cloud, destroyed afterwards."""
    # Nothing of the default cloud: admin_conn points OS_CLIENT_CONFIG_FILE at its clouds.yaml.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SHARD_CLOUD_") and k != "OS_CLIENT_CONFIG_FILE"
    }
    env.update(UPGRADE_CLOUD)
    shard = [job_runs.SHARD, "cloud"]
    subprocess.run(shard + ["destroy"], env=env, check=True, capture_output=True, timeout=600)
    try:
        subprocess.run(shard + ["up"], env=env, check=True, capture_output=True, timeout=1800)
        manifest = json.loads((Path(UPGRADE_CLOUD["SHARD_CLOUD_DIR"]) / "cloud.json").read_text())
        # The entry itself: OpenStackConfig would read OS_CLIENT_CONFIG_FILE's file instead.
        clouds = yaml.safe_load(Path(manifest["clouds_yaml"]).read_text())["clouds"]
        conn = openstack.connect(
            load_yaml_config=False, load_envvars=False, **clouds[manifest["admin_cloud_name"]]
        )
        yield env, conn
    finally:
        subprocess.run(shard + ["destroy"], env=env, capture_output=True, timeout=600)
