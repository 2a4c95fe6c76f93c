"""./shard run --ara: the runner hands ARA's callback to every playbook, and the report.

The wiring is checked without running a job: LocalRun.run_playbook's environment
(ansible-playbook is not started), then ARA itself on a one-task playbook.
"""

import subprocess
from pathlib import Path

import pytest
from unit_helpers import run_settings

from shard_jobs import ansible, ara_records, paths, runner


@pytest.fixture
def started(monkeypatch):
    """The ansible-playbook runs that LocalRun starts: (command, environment) pairs."""
    calls = []

    class FakeProcess:
        pid = 0

        def __init__(self, cmd, env=None, **kwargs):
            calls.append((cmd, env))

        def wait(self):
            return 0

    monkeypatch.setattr(runner.subprocess, "Popen", FakeProcess)
    return calls


def _run_one_playbook(tmp_path, settings):
    run = runner.LocalRun(settings)
    run.dir = tmp_path
    run.log_root = tmp_path / "logs"
    run.private = tmp_path / "private"
    run.work = tmp_path / "work"
    for d in (run.log_root, run.private, run.work):
        d.mkdir()
    run.secret_values = {}
    assert run.run_playbook("run", 0, run.job.run[0], {}) == 0
    return run


def test_ara_env_of_every_playbook(tmp_path, started):
    run = _run_one_playbook(tmp_path, run_settings(ara=True))
    [(_, env)] = started
    plugins = env["ANSIBLE_CALLBACK_PLUGINS"].split(":")
    # The progress callback stays (ANSIBLE_CALLBACK_PLUGINS overrides ansible.cfg's list).
    assert plugins[0] == str(runner.PROGRESS)
    assert (Path(plugins[1]) / "ara_default.py").is_file()
    assert "ara_default" in env["ANSIBLE_CALLBACKS_ENABLED"].split(",")
    assert env["ARA_API_CLIENT"] == "offline"
    assert env["ARA_DATABASE_NAME"] == str(run.log_root / "ara" / "ansible.sqlite")
    assert (run.log_root / "ara").is_dir()
    # ARA's settings (its Django secret key) stay out of the collected logs.
    assert env["ARA_BASE_DIR"] == str(run.private / "ara")
    # The job's secrets reach ansible-playbook as extra vars: never recorded.
    assert "extra_vars" in env["ARA_IGNORED_ARGUMENTS"].split(",")
    assert env["ARA_DEFAULT_LABELS"] == "shard-nova-compute,0123456789ab"


def test_no_ara_without_the_option(tmp_path, started):
    _run_one_playbook(tmp_path, run_settings())
    [(_, env)] = started
    assert not any(k.startswith("ARA_") for k in env)
    assert "ANSIBLE_CALLBACK_PLUGINS" not in env or "ara" not in env["ANSIBLE_CALLBACK_PLUGINS"]


def test_no_report_without_records(tmp_path):
    assert ara_records.generate(tmp_path / "logs", tmp_path / "private") == (
        None,
        "ARA recorded nothing",
    )


def test_ara_records_a_playbook_without_its_secrets_and_reports(tmp_path):
    """ARA itself, as the runner sets it up, on a one-task playbook (a few seconds)."""
    logs, private = tmp_path / "logs", tmp_path / "private"
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text(
        "- name: Recorded\n  hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: Use the secret\n      ansible.builtin.debug:\n"
        "        msg: '{{ secret }}'\n      no_log: true\n"
    )
    env = ansible.base_env(ara_records.env(logs, private, runner.PROGRESS, ["unit"]))
    env["ANSIBLE_STDOUT_CALLBACK"] = "default"
    proc = subprocess.run(
        [paths.bin_path("ansible-playbook"), "-i", "localhost,", "-c", "local"]
        + ["-e", "secret=SHARD-UNIT-SECRET", str(playbook)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    database = logs / "ara" / "ansible.sqlite"
    assert b"Use the secret" in database.read_bytes()
    assert b"SHARD-UNIT-SECRET" not in database.read_bytes()
    index, why = ara_records.generate(logs, private)
    assert index == logs / "ara-report" / "index.html", why
    assert list((logs / "ara-report" / "playbooks").glob("*.html"))
