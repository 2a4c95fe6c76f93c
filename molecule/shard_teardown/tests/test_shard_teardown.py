"""shard_teardown: nothing carrying the build's label is left, in the cloud or on the node;
the shard's logs are in the job's log root, every secret masked."""

import json
from pathlib import Path

import pytest
from conftest import leftovers

from shard_jobs.rules import auth
from shard_jobs.rules import secrets as secret_rules


@pytest.fixture(scope="module")
def logs(state):
    return Path(state["zuul"]["executor"]["log_root"]) / "shard"


@pytest.fixture(scope="module")
def secrets(state):
    """The service's password (what its live configuration held) first, then the job
    account's and the bus's (decoded from the transport URL, the one rule's way)."""
    secret = state["shard_cloud"]
    service = auth.service_account(secret)["auth"]
    return [
        service["password"],
        secret["cloud"]["auth"]["password"],
        *secret_rules.url_passwords(secret["transport_url"]),
    ]


def test_nothing_labelled_left_in_the_cloud(conn, label):
    assert leftovers(conn, label) == {}


def test_teardown_found_and_deleted_what_the_run_created(state):
    """The prepared run left a shard behind (its compute service, provider, aggregate,
    flavor, trait); teardown's report says it found each and left nothing."""
    report = Path(state["zuul"]["executor"]["log_root"]) / "shard" / "teardown.json"
    teardown = json.loads(report.read_text())
    found = {kind for kind, items in teardown["found"].items() if items}
    assert {"compute_services", "flavors", "traits", "aggregates"} <= found, teardown["found"]
    assert not any(teardown["left"].values()), teardown["left"]
    assert teardown["error"] is None


def test_workspace_removed(host, workspace):
    assert not host.file(str(workspace)).exists


def test_shard_process_stopped(host, workspace):
    assert [p.pid for p in host.process.filter() if str(workspace) in p.args] == []


def test_logs_collected(host, logs):
    for name in (
        "nova-compute.log",
        "etc/nova-compute.conf",
        "pip-freeze-venv.txt",
        "source-venv.txt",
        "phases.jsonl",
        "phases.json",
        "teardown.json",
        "report.json",
        "report.html",
    ):
        assert host.file(str(logs / name)).is_file, name


def test_the_service_log_has_its_stop(host, logs):
    """Collected after teardown stopped the service, not before."""
    log = host.file(str(logs / "nova-compute.log")).content_string
    # nova's last line after teardown's SIGTERM.
    assert "nova-compute service graceful shutdown finished" in log, log[-2000:]


def test_nothing_readable_by_others(host, logs):
    for path in host.check_output(f"find {logs}").splitlines():
        assert host.file(path).mode & 0o077 == 0, path


def test_config_secrets_masked(host, logs, state):
    conf = host.file(str(logs / "etc" / "nova-compute.conf")).content_string
    # The whole user information goes, whatever characters the password holds.
    host = state["shard_cloud"]["transport_url"].rsplit("@", 1)[1]
    assert f"transport_url = rabbit://****@{host}" in conf
    assert conf.count("password = ****") == 3  # placement, neutron, service_user
    # What is not secret stays readable: the account the service runs with.
    assert f"username = {auth.service_account(state['shard_cloud'])['auth']['username']}" in conf


def test_no_secret_anywhere_in_the_logs(host, logs, secrets):
    for secret in secrets:
        found = host.run(f"grep -rlF -- {secret!r} {logs}")
        assert found.rc == 1, f"a secret is in {found.stdout.strip()}"


def test_phase_timings_end_with_the_teardown(host, logs):
    phases = json.loads(host.file(str(logs / "phases.json")).content_string)
    for phase in ("preflight", "build", "deploy", "teardown"):
        assert phases[phase]["seconds"] >= 0, phase
    assert list(phases)[-1] == "teardown"


def test_source_under_test_recorded(host, logs, state):
    assert host.file(str(logs / "source-venv.txt")).content_string.startswith(
        state["molecule_shard_commit"]
    )
