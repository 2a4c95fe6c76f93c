"""shard_preflight: the node is ready to reach the target cloud."""

import hashlib

import yaml


def test_workspace_is_private(host, workspace):
    ws = host.file(str(workspace))
    assert ws.is_directory
    assert ws.mode == 0o700


def test_clouds_yaml_holds_the_secret_cloud_and_is_0600(host, workspace, state):
    f = host.file(str(workspace / "clouds.yaml"))
    assert f.is_file
    assert f.mode == 0o600
    assert f.user == host.user().name
    secret = state["shard_cloud"]
    clouds = yaml.safe_load(f.content_string)["clouds"]
    assert list(clouds) == [secret["cloud_name"]]
    same = clouds[secret["cloud_name"]] == secret["cloud"]
    assert same, "clouds.yaml's entry is not the credentials' (values not shown: secret)"


def test_constraints_shipped(host, workspace):
    f = host.file(str(workspace / "constraints.txt"))
    assert f.is_file
    assert "openstacksdk==" in f.content_string


def client_python(host, workspace, cache_dir):
    """The OpenStack client's interpreter, keyed as roles/shard/vars/main.yaml keys it
    (shard_python, python3 here, the packages and the constraints;
    tests/unit/test_role_vars.py)."""
    constraints = host.file(str(workspace / "constraints.txt")).content_string
    key = hashlib.sha1(("python3:openstacksdk amqp:" + constraints).encode()).hexdigest()[:16]
    return cache_dir / f"openstack-client-{key}" / "bin" / "python"


def test_openstack_client_installed_under_the_constraints(host, workspace, cache_dir):
    python = client_python(host, workspace, cache_dir)
    out = host.check_output(f"{python} -c 'import openstack.version as v; print(v.__version__)'")
    pins = host.file(str(workspace / "constraints.txt")).content_string.splitlines()
    assert f"openstacksdk=={out.strip()}" in pins


def test_client_reaches_the_cloud_with_that_clouds_yaml(host, workspace, cache_dir, state):
    python = client_python(host, workspace, cache_dir)
    cmd = host.run(
        f"OS_CLIENT_CONFIG_FILE={workspace / 'clouds.yaml'} {python} -c "
        f"\"import openstack; c = openstack.connect(cloud='{state['shard_cloud']['cloud_name']}');"
        " print(c.compute.get('/').status_code)\""
    )
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout.strip() == "200"


def test_phase_recorded(host, workspace):
    events = [
        yaml.safe_load(line)
        for line in host.file(str(workspace / "phases.jsonl")).content_string.splitlines()
    ]
    assert {"start", "end"} <= {e["event"] for e in events if e["phase"] == "preflight"}
