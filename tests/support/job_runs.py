"""Shared by the e2e, faults and zuul tiers: a job run through ./shard run, and what
it left in the embedded cloud, seen by the cloud's operator with plain openstacksdk.

An importable module (pyproject.toml puts tests/support/ on pytest's pythonpath):
the tiers import it by name, and their conftest.py files import the fixture.
"""

import json
import os
import subprocess

import openstack
import pytest
import yaml

from shard_jobs import cloud, paths
from shard_jobs.rules import bus

# rabbitmqctl reaches the embedded cloud's broker (roles/embedded_cloud/vars).
RABBIT_ENV = {
    "RABBITMQ_NODENAME": "rabbit@localhost",
    "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
    "ERL_EPMD_ADDRESS": "127.0.0.1",
}

SHARD = str(paths.REPO / "shard")


def handout() -> dict:
    """What the embedded cloud hands out to jobs (their credentials)."""
    with open(cloud.load_manifest()["secret_file"]) as f:
        return yaml.safe_load(f)


def secret_file(path, credentials: dict) -> str:
    """CREDENTIALS written to PATH for ./shard run --secret-file: mode 0600 before any
    byte is written."""
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(credentials))
    return str(path)


def run_job(job, *args, timeout=1800, env=None):
    """`./shard run JOB ARGS --json` (no JOB when None: --from-zuul names it): (exit
    status, summary dict, stderr)."""
    proc = subprocess.run(
        [SHARD, "run", *([job] if job else []), "--json", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    summary = None
    start = proc.stdout.find("{\n")
    if start >= 0:
        summary = json.loads(proc.stdout[start:])
    return proc.returncode, summary, proc.stderr


@pytest.fixture(scope="session")
def admin_conn():
    """The operator's view of the embedded cloud, independent of the jobs under test."""
    manifest = cloud.load_manifest()
    assert manifest, "the embedded cloud is not up"
    os.environ["OS_CLIENT_CONFIG_FILE"] = manifest["clouds_yaml"]
    return openstack.connect(cloud=manifest["admin_cloud_name"])


def leftovers(conn, label):
    """Everything in the cloud that still carries a label, read with plain openstacksdk;
    and everything a project or user carrying it (tempest's accounts) still holds."""
    trait = "CUSTOM_" + label.upper().replace("-", "_")
    described = f"shard-jobs label={label} "
    projects = [p.id for p in conn.identity.projects() if described in f"{p.description} "]
    users = [
        u.id for u in conn.identity.users() if described in f"{getattr(u, 'description', '')} "
    ]
    found = {
        "projects": projects,
        "users": users,
        # What they hold: servers (deleted ones do not count), images, server groups, keypairs.
        "project_servers": [
            s.id for s in conn.compute.servers(all_projects=True) if s.project_id in projects
        ],
        "project_images": [
            i.id
            for hidden in (False, True)
            for i in conn.image.images(is_hidden=hidden)
            # (or named after the label, as tempest names what it creates)
            if i.owner in projects or (i.name or "").startswith(f"{label}-")
        ],
        "server_groups": [
            g.id for g in conn.compute.server_groups(all_projects=True) if g.project_id in projects
        ],
        "keypairs": [
            k["keypair"]["name"]
            for u in users
            for k in conn.compute.get(f"/os-keypairs?user_id={u}", microversion="2.10").json()[
                "keypairs"
            ]
        ],
        "servers": [
            s.id
            for s in conn.compute.servers(all_projects=True)
            if (s.metadata or {}).get("shard_label") == label
            or label in (s.tags or [])
            # tempest names what it creates after the label (resource_name_prefix):
            # its servers show here even if their project went first.
            or s.name.startswith(f"{label}-")
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
        # Every project's images (the admin's list), hidden ones listed apart.
        "images": [
            i.id
            for hidden in (False, True)
            for i in conn.image.images(is_hidden=hidden)
            if (i.properties or {}).get("shard_label") == label
        ],
    }
    return {k: v for k, v in found.items() if v}


def bus_leftovers(label, manifest=None):
    """The queues on the embedded cloud's message bus whose name carries a label (the
    shard's host), as its operator lists them (rabbitmqctl, every queue of the vhost the
    jobs' transport_url names): wider than what teardown deletes, so a queue it misses shows."""
    manifest = manifest or cloud.load_manifest()
    assert manifest, "the embedded cloud is not up"
    with open(manifest["secret_file"]) as f:
        _, vhost = bus.parse_transport_url(yaml.safe_load(f)["transport_url"])
    proc = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name"],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, **RABBIT_ENV),
        timeout=60,
    )
    names = proc.stdout.split()
    assert names and names[0] == "name", proc.stdout[:200]  # the header: the listing worked
    return sorted(n for n in names[1:] if bus.carries_host(n, label))
