"""embedded_cloud: an isolated cloud runs next to the default one, and works."""

import json
from pathlib import Path

import openstack
import pytest
import yaml
from conftest import read_pid

PORTS = {
    "keystone": 25000,
    "placement": 28778,
    "glance": 29292,
    "neutron": 29696,
    "nova-api": 28774,
}
DATABASES = ["keystone", "placement", "glance", "neutron", "nova_api", "nova_cell0", "nova"]


@pytest.fixture(scope="module")
def cloud_dir(state) -> Path:
    return Path(state["molecule_shard_tmp"])


@pytest.fixture(scope="module")
def manifest(host, cloud_dir):
    return json.loads(host.file(str(cloud_dir / "cloud.json")).content_string)


@pytest.fixture(scope="module")
def handout(host, cloud_dir):
    f = host.file(str(cloud_dir / "shard-cloud-secret.yaml"))
    assert f.mode == 0o600
    return yaml.safe_load(f.content_string)


@pytest.fixture(scope="module")
def molecule_conn(handout):
    return openstack.connect(load_yaml_config=False, load_envvars=False, **handout["cloud"])


def test_every_service_runs_from_the_isolated_state(host, manifest, cloud_dir):
    assert manifest["state_dir"] == str(cloud_dir)
    names = [s["name"] for s in manifest["services"]]
    assert names == [*PORTS, "nova-conductor", "nova-scheduler"]
    for service in manifest["services"]:
        pid = read_pid(host, Path(service["pidfile"]))
        assert pid and host.file(f"/proc/{pid}").is_directory, service["name"]
        # It is the isolated cloud's: its output goes to the isolated state
        # directory (the gunicorn services' process title hides their command
        # line and environment).
        out = host.file(f"/proc/{pid}/fd/1").linked_to
        assert out == f"{cloud_dir}/log/{service['name']}.log", service["name"]


@pytest.mark.parametrize("service,port", PORTS.items())
def test_api_listens_on_its_own_port(host, service, port):
    assert host.socket(f"tcp://127.0.0.1:{port}").is_listening


def test_configuration_is_private(host, cloud_dir):
    for path in host.check_output(f"find {cloud_dir / 'etc'} -type f").splitlines():
        assert host.file(path).mode == 0o600, path
    assert host.file(str(cloud_dir / "clouds.yaml")).mode == 0o600


def test_handout(handout):
    assert handout["cloud_name"] == "shard-molecule"
    assert handout["cloud"]["auth"]["auth_url"] == "http://127.0.0.1:25000/v3"
    assert handout["transport_url"].startswith("rabbit://shard_molecule:")
    assert handout["transport_url"].endswith("@127.0.0.1:5672/shard-molecule")
    assert handout["image"] == "shard-tiny"


def test_the_handout_reaches_the_isolated_cloud(molecule_conn):
    endpoints = {e.url.split("/")[2] for e in molecule_conn.identity.endpoints()}
    assert endpoints == {f"127.0.0.1:{port}" for port in PORTS.values()}
    assert molecule_conn.image.find_image("shard-tiny", ignore_missing=False).status == "active"
    services = {s.binary: s.state for s in molecule_conn.compute.services()}
    assert services == {"nova-conductor": "up", "nova-scheduler": "up"}
    assert list(molecule_conn.network.networks()) == []


def test_databases_of_its_own(host):
    out = host.check_output("mysql -N -B -e \"SHOW DATABASES LIKE 'molecule\\_%'\"")
    assert sorted(out.split()) == sorted(f"molecule_{name}" for name in DATABASES)


def test_the_default_cloud_is_untouched(host, state):
    """Same processes as before the scenario, and its keystone still answers."""
    before = state["molecule_cloud_pids_before"]
    assert before, "no default cloud was running"
    for name, pid in before.items():
        assert host.file(f"/proc/{pid}").exists, f"default cloud's {name} ({pid}) is gone"
    assert host.socket("tcp://127.0.0.1:5000").is_listening
