"""embedded_cloud: an isolated cloud runs next to the default one, and works."""

import json
import time
from pathlib import Path

import openstack
import pytest
import yaml
from conftest import read_pid

from shard_jobs.rules import secrets as secret_rules

APIS = ["keystone", "placement", "glance", "neutron", "nova-api"]
DATABASES = ["keystone", "placement", "glance", "neutron", "nova_api", "nova_cell0", "nova"]


@pytest.fixture(scope="module")
def settings(state) -> dict:
    """Its name, ports, database prefix and bus user (vars/cloud.yml)."""
    return state["molecule_cloud"]


@pytest.fixture(scope="module")
def ports(settings) -> dict:
    """API name (as the manifest names it) -> port."""
    return {name.replace("_", "-"): port for name, port in settings["ports"].items()}


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
    assert names == [*APIS, "nova-conductor", "nova-scheduler", "nova-compute"]
    for service in manifest["services"]:
        pid = read_pid(Path(service["pidfile"]))
        assert pid and host.file(f"/proc/{pid}").is_directory, service["name"]
        # It is the isolated cloud's: its output goes to the isolated state
        # directory (the gunicorn services' process title hides their command
        # line and environment).
        out = host.file(f"/proc/{pid}/fd/1").linked_to
        assert out == f"{cloud_dir}/log/{service['name']}.log", service["name"]


def test_apis_listen_on_their_own_ports(host, manifest, ports):
    assert sorted(ports) == sorted(APIS)
    assert {s["name"]: s.get("port") for s in manifest["services"] if s.get("port")} == ports
    for port in ports.values():
        assert host.socket(f"tcp://127.0.0.1:{port}").is_listening, port


def test_configuration_is_private(host, cloud_dir):
    for path in host.check_output(f"find {cloud_dir / 'etc'} -type f").splitlines():
        assert host.file(path).mode == 0o600, path
    assert host.file(str(cloud_dir / "clouds.yaml")).mode == 0o600


def test_handout(handout, settings, ports):
    assert handout["cloud_name"] == settings["name"]
    assert handout["cloud"]["auth"]["auth_url"] == f"http://127.0.0.1:{ports['keystone']}/v3"
    # Bools first, messages without values: the URL holds the bus password, and
    # pytest would print both sides of a comparison.
    url = handout["transport_url"]
    user_first = url.startswith(f"rabbit://{settings['rabbit_user']}:")
    assert user_first, "the transport URL does not start with the bus user"
    # Two names of the one local broker (a cluster to oslo.messaging), each with the
    # password percent-encoded: it holds '@' and ':' (tasks/state.yaml).
    hosts = secret_rules.url_hosts(url)
    assert [(h["host"], h["port"]) for h in hosts] == [("127.0.0.1", 5672), ("localhost", 5672)]
    vhost_last = url.endswith(f"@localhost:5672/{settings['rabbit_vhost']}")
    assert vhost_last, "the transport URL does not end with the vhost"
    passwords = secret_rules.url_passwords(url)
    assert len(passwords) == len(hosts), "a host of the transport URL has no password"
    for password in passwords:
        delimiters = {"@", ":"} <= set(password)
        assert delimiters, "the password holds no URL delimiter"
    assert handout["image"] == "shard-tiny"


def test_the_handout_reaches_the_isolated_cloud(molecule_conn, ports):
    endpoints = {e.url.split("/")[2] for e in molecule_conn.identity.endpoints()}
    assert endpoints == {f"127.0.0.1:{port}" for port in ports.values()}
    assert molecule_conn.image.find_image("shard-tiny", ignore_missing=False).status == "active"
    # The ordinary compute reports in within seconds of its start.
    for _ in range(60):
        services = {s.binary: s.state for s in molecule_conn.compute.services()}
        if services.get("nova-compute") == "up":
            break
        time.sleep(1)
    assert services == {"nova-conductor": "up", "nova-scheduler": "up", "nova-compute": "up"}
    assert list(molecule_conn.network.networks()) == []


def test_databases_of_its_own(host, settings):
    prefix = settings["db_prefix"]
    pattern = prefix.replace("_", "\\_")
    out = host.check_output(f"mysql -N -B -e \"SHOW DATABASES LIKE '{pattern}%'\"")
    assert sorted(out.split()) == sorted(f"{prefix}{name}" for name in DATABASES)


def test_the_default_cloud_is_untouched(host, state):
    """Same processes as before the scenario, and its keystone still answers."""
    before = state["molecule_cloud_pids_before"]
    assert before, "no default cloud was running"
    for name, pid in before.items():
        assert host.file(f"/proc/{pid}").exists, f"default cloud's {name} ({pid}) is gone"
    assert host.socket("tcp://127.0.0.1:5000").is_listening
