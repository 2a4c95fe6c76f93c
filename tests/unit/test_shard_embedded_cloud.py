"""shard_embedded_cloud: the embedded cloud's steps, on real files and real processes."""

import os
import signal
import socket
import stat
import sys

import pytest
import shard_embedded_cloud as module
from ansible.module_utils import shard_cloud_services as module_utils_cloud_services
from ansible.module_utils import shard_processes


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def cloud(tmp_path):
    """Module arguments of a one-process cloud in tmp_path; kills what is left afterwards."""
    port = free_port()
    server = f"{sys.executable} -m http.server --bind 127.0.0.1 {port}"
    services = {
        "host": "127.0.0.1",
        "etc_dir": str(tmp_path / "etc"),
        "run_dir": str(tmp_path / "run"),
        "log_dir": str(tmp_path / "log"),
        "processes": [
            {"name": "api", "command": server, "port": port, "probe": "/", "inputs": ["api.conf"]}
        ],
    }
    closed = free_port()  # nothing listens there: the logins are "unknown"
    login = {"host": "127.0.0.1", "port": closed, "user": "cloud", "password": "s3cret-pass"}
    converge = {
        "step": "converge",
        "services": services,
        "directories": [str(tmp_path / "run"), str(tmp_path / "log")],
        "files": {str(tmp_path / "etc" / "api.conf"): "[api]\npassword = file-secret-1\n"},
        "manifest": {"path": str(tmp_path / "cloud.json"), "data": {"cloud_name": "unit"}},
        "database": login,
        "data_account": dict(login, user="cloud_glance"),
        "message_bus": dict(login, vhost="unit"),
        "stamps_dir": str(tmp_path / "stamps"),
        "exists": [str(tmp_path / "stamps" / "done")],
    }
    yield {"services": services, "converge": converge, "port": port}
    record = shard_processes.read_record(str(tmp_path / "run" / "api.pid"))
    if record:
        os.killpg(record["pid"], signal.SIGKILL)


def test_inspect_finds_the_first_python_and_the_passwords(tmp_path, run_module):
    secrets = tmp_path / "secrets.yaml"
    missing = str(tmp_path / "venv" / "bin" / "python")

    first = run_module(
        module, {"step": "inspect", "secrets_file": str(secrets), "pythons": [missing]}
    )
    secrets.write_text("db: x\n")
    again = run_module(
        module,
        {"step": "inspect", "secrets_file": str(secrets), "pythons": [missing, sys.executable]},
    )

    assert first["secrets"] is None and first["python"] == sys.executable
    assert first["changed"] is False
    assert again["secrets"] == "db: x\n" and again["python"] == sys.executable


def test_converge_writes_the_state_once_and_check_mode_writes_nothing(cloud, tmp_path, run_module):
    conf = tmp_path / "etc" / "api.conf"

    checked = run_module(module, cloud["converge"], check_mode=True)
    assert checked["changed"] is True and str(conf) in checked["written"]
    assert not conf.exists() and not (tmp_path / "cloud.json").exists()

    first = run_module(module, cloud["converge"])
    second = run_module(module, cloud["converge"])

    assert first["changed"] is True and str(conf) in first["written"]
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert second["changed"] is False and second["written"] == []
    assert second["processes"]["api"] == {
        "pid": None,
        "fingerprint": first["processes"]["api"]["fingerprint"],
        "current": False,
    }
    assert second["exists"] == {str(tmp_path / "stamps" / "done"): False}
    assert second["database"]["status"] == "unknown"
    assert second["data_account"]["status"] == "unknown"
    # The rendered files hold passwords: never echoed back.
    assert "file-secret-1" not in repr(second) and "s3cret-pass" not in repr(second)


def test_converge_fingerprint_follows_the_inputs(cloud, tmp_path, run_module):
    before = run_module(module, cloud["converge"])["processes"]["api"]["fingerprint"]
    changed = dict(cloud["converge"], files={str(tmp_path / "etc" / "api.conf"): "[api]\n"})
    after = run_module(module, changed)["processes"]["api"]["fingerprint"]
    salted = run_module(module, dict(changed, fingerprint_salt="other packages"))

    assert before != after != salted["processes"]["api"]["fingerprint"]


def test_converge_fingerprint_follows_the_command(cloud, run_module):
    """A process whose programs move to another virtualenv (the cloud follows another nova
    commit) restarts, though no file it reads changed."""
    before = run_module(module, cloud["converge"])["processes"]["api"]["fingerprint"]
    services = dict(cloud["services"])
    services["processes"] = [dict(services["processes"][0])]
    services["processes"][0]["command"] = "/other-venv/bin/python -m http.server"
    moved = run_module(module, dict(cloud["converge"], services=services))
    services["processes"][0] = dict(cloud["services"]["processes"][0], environment={"A": "1"})
    env = run_module(module, dict(cloud["converge"], services=services))

    assert (
        len(
            {
                before,
                moved["processes"]["api"]["fingerprint"],
                env["processes"]["api"]["fingerprint"],
            }
        )
        == 3
    )


def test_converge_refuses_a_port_held_by_another_program(cloud, tmp_path, run_module):
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", cloud["port"]))
        sock.listen()
        result = run_module(module, cloud["converge"])

    assert result["failed"] is True
    assert f"port {cloud['port']} on 127.0.0.1 needed by api is already in use" in result["msg"]
    assert not (tmp_path / "etc").exists(), "preflight comes before any write"


def test_start_verify_stop(cloud, tmp_path, run_module):
    found = run_module(module, cloud["converge"])["processes"]
    start = {
        "step": "start",
        "services": cloud["services"],
        "start": ["api"],
        "fingerprints": {"api": found["api"]["fingerprint"]},
    }

    planned = run_module(module, start, check_mode=True)
    assert (
        planned["changed"] is True
        and shard_processes.read_record(str(tmp_path / "run" / "api.pid")) is None
    )

    started = run_module(module, start)
    verified = run_module(
        module, {"step": "verify", "services": cloud["services"], "wait": ["api"]}
    )
    again = run_module(module, start)
    converged = run_module(module, cloud["converge"])

    assert started["changed"] is True and started["started"][0]["name"] == "api"
    assert verified["changed"] is False and "failed" not in verified
    assert again["changed"] is False and again["started"] == []
    assert converged["processes"]["api"]["current"] is True

    stop = {"step": "stop", "services": cloud["services"]}
    assert run_module(module, stop, check_mode=True)["stopped"] == ["api"]
    stopped = run_module(module, stop)
    assert stopped["changed"] is True and stopped["stopped"] == ["api"]
    assert run_module(module, stop)["changed"] is False


def test_start_and_verify_fail_when_a_process_exits(cloud, tmp_path, run_module):
    services = dict(cloud["services"])
    # Alive long enough for its start time to be recorded (one that is gone by
    # then gets a record that shard_processes.read_record takes as running).
    failing = tmp_path / "failing"
    failing.write_text("#!/bin/sh\nsleep 0.5\nexit 1\n")
    failing.chmod(0o755)
    services["processes"] = [dict(services["processes"][0], command=str(failing))]
    found = run_module(module, dict(cloud["converge"], services=services))["processes"]
    start = {
        "step": "start",
        "services": services,
        "start": ["api"],
        "fingerprints": {"api": found["api"]["fingerprint"]},
    }

    result = run_module(module, start)
    verified = run_module(module, {"step": "verify", "services": services, "wait": ["api"]})

    assert result["failed"] is True
    assert "api exited with status 1 while starting" in result["msg"]
    assert verified["failed"] is True and "api exited while starting" in verified["msg"]


class FakeGlanceHTTP:
    """keystone's token and glance's image list, create and upload, as module.http sees them."""

    def __init__(self):
        self.images = {}

    def __call__(self, method, url, body=None, headers=None, data=None):
        if url.endswith("/auth/tokens"):
            return 201, {"X-Subject-Token": "tok"}, {}
        path = url.split("/v2/images", 1)[1] if "/v2/images" in url else ""
        if method == "GET" and path.startswith("?name="):
            name = path[len("?name=") :]
            return 200, {}, {"images": [i for i in self.images.values() if i["name"] == name]}
        if method == "POST":
            image = dict(body, id=f"id-{len(self.images)}", status="queued")
            self.images[image["id"]] = image
            return 201, {}, image
        if method == "PUT":
            self.images[path.split("/")[1]]["status"] = "active"
            return 204, {}, None
        return 200, {}, {}


@pytest.fixture
def glance_with_image(monkeypatch, tmp_path):
    """(fake glance, image settings, the cloud's checks, a token): the tiny image made,
    the canary not yet."""
    fake = FakeGlanceHTTP()
    monkeypatch.setattr(module, "http", fake)
    monkeypatch.setattr(module_utils_cloud_services, "http", fake)
    data = tmp_path / "tiny.raw"
    data.write_bytes(b"\0" * 16)
    image = {"url": "http://glance", "name": "shard-tiny", "file": str(data), "canary": "canary"}
    checks = {
        "auth": {"auth_url": "http://k/v3", "username": "admin", "password": "p", "project": "a"},
        "urls": [],
        "image": image,
    }
    tok = module.checked_token(checks)
    module.ensure_image(image, tok)
    return fake, image, checks, tok


def test_the_canary_image_is_made_again_when_missing(glance_with_image):
    fake, image, checks, tok = glance_with_image
    # The image is there, the canary not: the cloud is not in order, verify makes it.
    assert module.check_cloud(checks) == {
        "status": "failed",
        "reason": "the canary image is missing",
    }
    canary_id, created = module.ensure_image(image, tok, name="canary", visibility="private")
    assert created and fake.images[canary_id]["visibility"] == "private"
    assert fake.images[canary_id]["status"] == "active"
    assert module.check_cloud(checks) == {"status": "ok"}
    assert module.ensure_image(image, tok, name="canary", visibility="private") == (
        canary_id,
        False,
    )


def test_cloud_up_converges_when_the_canary_is_missing(monkeypatch, tmp_path):
    """./shard cloud up's fast path looks for the canary; missing, it converges."""
    from shard_jobs import cloud, paths
    from shard_jobs.rules import cloud_services

    (tmp_path / "secrets.yaml").write_text("admin: pw\n")
    monkeypatch.setattr(paths, "CLOUD_DIR", tmp_path)
    fake = FakeGlanceHTTP()
    monkeypatch.setattr(cloud_services, "http", fake)
    manifest = {
        "canary_image": "canary",
        "services": [
            {"name": "keystone", "endpoint": "http://k"},
            {"name": "glance", "endpoint": "http://g"},
        ],
    }
    assert cloud._canary_problem(manifest) == "the canary image canary is missing"
    fake.images["x"] = {"id": "x", "name": "canary", "status": "active"}
    assert cloud._canary_problem(manifest) is None
    # Cannot tell (keystone refuses): decides nothing.
    monkeypatch.setattr(cloud_services, "http", lambda *a, **k: (401, {}, None))
    assert cloud._canary_problem(manifest) is None


def test_a_canary_that_is_there_but_not_active_is_never_made_twice(glance_with_image):
    """A deactivated canary is the operator's to look at: converge says so and
    creates no second image of that name (the jobs would find the name ambiguous)."""
    fake, image, checks, tok = glance_with_image
    canary_id, _ = module.ensure_image(image, tok, name="canary", visibility="private")
    fake.images[canary_id]["status"] = "deactivated"
    # Not in order, by the same rule as ./shard cloud up's fast path.
    assert module.check_cloud(checks)["reason"] == "the canary image is missing"
    with pytest.raises(RuntimeError, match=f"image canary \\({canary_id}\\) is deactivated"):
        module.ensure_image(image, tok, name="canary", visibility="private")
    assert [i["id"] for i in fake.images.values() if i["name"] == "canary"] == [canary_id]


def test_the_cloud_s_inputs_are_found_by_reading_its_code():
    """What ./shard cloud up fingerprints: the modules the role's tasks name and every
    module_utils file they (and its filter plugins) import, however deep."""
    from shard_jobs import cloud, paths

    found = {str(p.relative_to(paths.REPO)) for p in cloud.input_code()}
    assert {
        "library/shard_embedded_cloud.py",
        "library/shard_identity_catalog.py",
        # Imported by shard_embedded_cloud.
        "module_utils/shard_processes.py",
        # Imported by shard_processes, not by any module itself.
        "module_utils/shard_waits.py",
        # Imported by the filter plugin the role links.
        "module_utils/shard_secrets.py",
    } <= found
    assert "library/shard_server.py" not in found  # a job's module, not the cloud's


def test_verify_waits_until_nova_s_control_plane_reports_up(monkeypatch):
    """A service record is written a moment after the process starts: the cloud is
    ready only once the conductor and the scheduler report up (as pre-flight wants)."""
    answers = [
        (200, {}, {"services": [{"binary": "nova-conductor", "state": "up"}]}),
        (503, {}, None),
        (
            200,
            {},
            {
                "services": [
                    {"binary": "nova-conductor", "state": "up"},
                    {"binary": "nova-scheduler", "state": "down"},
                ]
            },
        ),
        (
            200,
            {},
            {
                "services": [
                    {"binary": "nova-conductor", "state": "up"},
                    {"binary": "nova-scheduler", "state": "up"},
                ]
            },
        ),
    ]
    calls = []

    def http(method, url, headers=None, **kwargs):
        calls.append((method, url, headers["X-Auth-Token"]))
        return answers[len(calls) - 1]

    monkeypatch.setattr(module, "http", http)
    module.wait_for_control_plane("http://nova/v2.1/os-services", "tok", 5)
    assert len(calls) == 4 and calls[0] == ("GET", "http://nova/v2.1/os-services", "tok")

    # Never up: the wait ends with what it saw last.
    monkeypatch.setattr(module, "http", lambda *a, **k: answers[2])
    with pytest.raises(
        RuntimeError, match="^nova's control plane is not up: nova-scheduler is down$"
    ):
        module.wait_for_control_plane("http://nova/v2.1/os-services", "tok", 0.05)
