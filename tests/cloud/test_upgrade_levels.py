"""[upgrade_levels] compute = auto on the embedded cloud the environment names.

The cloud this tier brought up (paths.CLOUD_DIR: ~/.shard-jobs/cloud, or the
SHARD_CLOUD_DIR of the environment), not the isolated cloud of
test_embedded_cloud.py. With ``auto``, each control-plane process caps the
RPC it sends to computes at what the oldest nova-compute of the cloud
understands: nova 34.0.0's nova/compute/rpcapi.py (_determine_version_cap)
reads the minimum nova-compute service version of all cells at the process's
first compute RPC, logs "Automatically selected compute RPC version X from
minimum service version N" and keeps it (LAST_VERSION and the router) until
the process restarts. Unset, the cap is none: the newest RPC goes to every
compute, an older one included.

The test makes nova-conductor (a build) and nova-api (a delete) send a compute
RPC, then checks what each logged against the cloud's database and nova's own
service version history. It assumes no compute of another release joined or
left since those processes started (true after the tier's bring-up).
"""

import configparser
import json
import re
import subprocess
import uuid
from pathlib import Path

import openstack
import pymysql
import pytest
import yaml
from cloud_helpers import wait_for

from shard_jobs import cloud

SELECTED = re.compile(
    r"Automatically selected compute RPC version (?P<rpc>[0-9.]+) "
    r"from minimum service version (?P<service>[0-9]+)"
)


@pytest.fixture(scope="module")
def manifest():
    found = cloud.load_manifest()
    if not found:
        pytest.fail("no embedded cloud: './shard cloud up' first", pytrace=False)
    return found


def min_compute_version(manifest) -> int:
    """The oldest nova-compute's service version, as nova reads it (deleted and forced
    down services left out)."""
    state = Path(manifest["state_dir"])
    password = yaml.safe_load((state / "secrets.yaml").read_text())["db"]
    db = manifest["database"]
    cell = next(name for name in db["names"] if name.endswith("nova"))
    conn = pymysql.connect(
        host=db["host"], port=db["port"], user=db["user"], password=password, database=cell
    )
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT MIN(version) FROM services WHERE `binary` = 'nova-compute' "
                "AND deleted = 0 AND forced_down = 0"
            )
            return cur.fetchone()[0]
    finally:
        conn.close()


def compute_rpc_of(manifest, service_version: int) -> str:
    """The compute RPC version nova's history gives that service version."""
    code = (
        "import json, sys; from nova.objects import service; "
        "print(json.dumps(service.SERVICE_VERSION_HISTORY[int(sys.argv[1])]['compute_rpc']))"
    )
    out = subprocess.run(
        [f"{manifest['venv']}/bin/python", "-c", code, str(service_version)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def last_selected(log: Path):
    found = SELECTED.findall(log.read_text(errors="replace")) if log.exists() else []
    return found[-1] if found else None


def test_the_control_plane_is_configured_as_during_a_rolling_upgrade(manifest):
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(Path(manifest["state_dir"]) / "etc" / "nova" / "nova-common.conf")
    assert conf.get("upgrade_levels", "compute") == "auto"


def test_conductor_and_api_cap_compute_rpc_at_the_oldest_compute(manifest, monkeypatch):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", manifest["clouds_yaml"])
    conn = openstack.connect(cloud=manifest["admin_cloud_name"])
    logs = Path(manifest["state_dir"]) / "log"
    name = f"upgrade-levels-{uuid.uuid4().hex[:8]}"
    # Right after a bring-up the ordinary compute may not have reported in yet.
    wait_for(lambda: min_compute_version(manifest), 120, "a nova-compute in the cloud", 1)
    flavor = server = None
    try:
        flavor = conn.compute.create_flavor(name=name, ram=64, vcpus=1, disk=0)
        image = conn.image.find_image(manifest["image"], ignore_missing=False)
        # A build: the conductor casts build_and_run_instance to the compute.
        server = conn.compute.create_server(
            name=name, flavor_id=flavor.id, image_id=image.id, networks="none"
        )
        server = conn.compute.wait_for_server(server, wait=180)
        # A delete: nova-api casts terminate_instance to the compute.
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=180)
        server = None
    finally:
        if server is not None:
            conn.compute.delete_server(server, ignore_missing=True)
            conn.compute.wait_for_delete(server, wait=180)
        if flavor is not None:
            conn.compute.delete_flavor(flavor)

    minimum = min_compute_version(manifest)
    assert minimum, "no nova-compute in the cloud"
    expected = (compute_rpc_of(manifest, minimum), str(minimum))
    for process in ("nova-conductor", "nova-api"):
        log = logs / f"{process}.log"
        selected = wait_for(lambda log=log: last_selected(log), 30, f"{process}'s cap in {log}", 1)
        assert selected == expected, f"{process} capped compute RPC at {selected}"
