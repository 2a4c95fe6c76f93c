"""shard_collect_logs: the shard's logs are in the job's log root, every secret masked."""

import pytest

from shard_jobs.rules import auth
from shard_jobs.rules import secrets as secret_rules


@pytest.fixture(scope="module")
def logs(state):
    from pathlib import Path

    return Path(state["zuul"]["executor"]["log_root"]) / "shard"


@pytest.fixture(scope="module")
def secrets(state):
    """The service's password (what its live configuration holds) first, then the job
    account's and the bus's (decoded from the transport URL, the one rule's way)."""
    secret = state["shard_cloud"]
    service = auth.service_account(secret)["auth"]
    return [
        service["password"],
        secret["cloud"]["auth"]["password"],
        *secret_rules.url_passwords(secret["transport_url"]),
    ]


def test_collected(host, logs):
    for name in (
        "nova-compute.log",
        "etc/nova-compute.conf",
        "pip-freeze-venv.txt",
        "source-venv.txt",
        "phases.jsonl",
        "phases.json",
    ):
        assert host.file(str(logs / name)).is_file, name


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


def test_the_live_configuration_is_untouched(host, workspace, secrets):
    """Masking happens on the copies only."""
    # A bool first: pytest would print both sides of an `in` (the password).
    kept = secrets[0] in host.file(str(workspace / "etc" / "nova-compute.conf")).content_string
    assert kept, "the live configuration lost the service's password"


def test_phase_timings(host, logs):
    import json

    phases = json.loads(host.file(str(logs / "phases.json")).content_string)
    for phase in ("preflight", "build", "deploy"):
        assert phases[phase]["seconds"] >= 0


def test_source_under_test_recorded(host, logs, state):
    assert host.file(str(logs / "source-venv.txt")).content_string.startswith(
        state["molecule_shard_commit"]
    )
