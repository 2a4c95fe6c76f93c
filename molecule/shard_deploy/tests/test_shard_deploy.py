"""shard_deploy: nova-compute runs from the build, with its rendered config, in the cloud."""

import configparser
from pathlib import Path

import pytest
from conftest import provider, read_pid

from shard_jobs.rules import auth as auth_rules


@pytest.fixture(scope="module")
def conf_file(workspace):
    return workspace / "etc" / "nova-compute.conf"


@pytest.fixture(scope="module")
def conf(host, conf_file):
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(host.file(str(conf_file)).content_string)
    return parser


def test_config_rendered_private(host, conf_file):
    f = host.file(str(conf_file))
    assert f.is_file
    assert f.mode == 0o600
    assert f.user == host.user().name


def test_config_values(conf, state, label, workspace):
    secret = state["shard_cloud"]
    # The account the service runs with (service_auth when the credentials hold one).
    auth = auth_rules.service_account(secret)["auth"]
    assert conf["DEFAULT"]["host"] == label
    same_bus = conf["DEFAULT"]["transport_url"] == secret["transport_url"]
    assert same_bus, "transport_url is not the credentials' (values not shown: secret)"
    assert conf["DEFAULT"]["compute_driver"] == "fake.FakeDriverWithoutFakeNodes"
    assert conf["DEFAULT"]["state_path"] == str(workspace / "state")
    for section in ("placement", "neutron", "service_user"):
        assert conf[section]["auth_url"] == auth["auth_url"]
        assert conf[section]["username"] == auth["username"]
        # A bool first: pytest would print both sides of == (the password).
        same = conf[section]["password"] == auth["password"]
        assert same, f"[{section}] password is not the service account's"
        assert conf[section]["project_name"] == auth["project_name"]
        assert conf[section]["region_name"] == secret["cloud"].get("region_name", "RegionOne")
    # A compute reaches the cloud through its bus and APIs only.
    assert not conf.has_section("database") and not conf.has_section("api_database")


def test_nova_compute_runs_from_the_build(host, workspace):
    pid = read_pid(workspace / "run" / "nova-compute.pid")
    assert pid, "no pid file"
    proc = host.process.get(pid=pid)
    args = proc.args.split()
    assert f"{workspace}/current/bin/nova-compute" in args[:2], proc.args
    assert args[-2:] == ["--config-file", f"{workspace}/etc/nova-compute.conf"]
    assert host.file(f"{workspace}/current").linked_to == str(workspace / "venv")
    # It runs in the build's workspace.
    assert Path(host.file(f"/proc/{pid}/cwd").linked_to) == workspace


def test_nova_compute_log(host, workspace):
    log = host.file(str(workspace / "log" / "nova-compute.log"))
    assert log.is_file
    assert log.size > 0


def test_the_cloud_sees_the_shard(conn, label):
    services = [s for s in conn.compute.services(binary="nova-compute") if s.host == label]
    assert [s.state for s in services] == ["up"]
    rp = provider(conn, label)
    assert rp is not None
    aggregates = [a for a in conn.compute.aggregates() if a.name == label]
    assert len(aggregates) == 1
    assert aggregates[0].hosts == [label]
    assert aggregates[0].metadata.get("shard_label") == label
