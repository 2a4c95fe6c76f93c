"""Fixtures for end-to-end runs of jobs against the embedded cloud."""

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import openstack
import pytest

from shard_jobs import cloud, paths, runner

SHARD = str(paths.REPO / "shard")


def run_job(job, *args, timeout=1800):
    """`./shard run JOB ARGS --json`: (exit status, summary dict, stderr)."""
    proc = subprocess.run(
        [SHARD, "run", job, "--json", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    summary = None
    start = proc.stdout.find("{\n")
    if start >= 0:
        summary = json.loads(proc.stdout[start:])
    return proc.returncode, summary, proc.stderr


@pytest.fixture(scope="session")
def admin_conn():
    """The operator's view of the embedded cloud, independent of the modules under test."""
    manifest = cloud.load_manifest()
    assert manifest, "the embedded cloud is not up"
    os.environ["OS_CLIENT_CONFIG_FILE"] = manifest["clouds_yaml"]
    return openstack.connect(cloud=manifest["admin_cloud_name"])


def leftovers(conn, label):
    """Everything in the cloud that still carries a label, read with plain openstacksdk."""
    trait = "CUSTOM_" + label.upper().replace("-", "_")
    found = {
        "servers": [
            s.id
            for s in conn.compute.servers(all_projects=True)
            if (s.metadata or {}).get("shard_label") == label or label in (s.tags or [])
        ],
        "compute_services": [s.id for s in conn.compute.services() if s.host == label],
        "resource_providers": [r.id for r in conn.placement.resource_providers(name=label)],
        "flavors": [f.id for f in conn.compute.flavors() if label in (f.description or "")],
        "aggregates": [
            a.id
            for a in conn.compute.aggregates()
            if (a.metadata or {}).get("shard_label") == label
        ],
        "traits": [
            t
            for t in conn.placement.get("/traits", microversion="1.6").json()["traits"]
            if t == trait
        ],
    }
    return {k: v for k, v in found.items() if v}


@pytest.fixture(scope="session")
def nova_release_tree():
    """The source release the embedded cloud runs (what `./shard run` tests by default)."""
    return runner.release_source("nova", runner.LocalRun.pinned_version("nova"))


@pytest.fixture
def patched_nova(tmp_path, nova_release_tree):
    """A nova tree whose nova-compute logs a random marker when it starts."""
    marker = f"SHARD-E2E-MARKER-{uuid.uuid4().hex}"
    tree = tmp_path / "nova"
    shutil.copytree(nova_release_tree, tree, symlinks=True)
    compute = tree / "nova" / "cmd" / "compute.py"
    text = compute.read_text()
    anchor = "    logging.setup(CONF, 'nova')\n"
    assert anchor in text
    compute.write_text(
        text.replace(anchor, anchor + f"    logging.getLogger(__name__).warning({marker!r})\n", 1)
    )
    return tree, marker


@pytest.fixture
def logs_of():
    def _logs(summary) -> Path:
        return Path(summary["logs"])

    return _logs
