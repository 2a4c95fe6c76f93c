"""./shard run and zuul_return: a pre-run that returns zuul.retry: false fails, as under Zuul.

Zuul retries a build whose pre-run failed, unless the playbook returned
zuul.retry: false (shard_guard does, for a change that alters the database
schema). The local runner reads the same result data file, which its stand-in
zuul_return action plugin writes.
"""

import json
import subprocess

import pytest
from unit_helpers import run_settings

from shard_jobs import ansible, paths, runner


def _run(tmp_path):
    run = runner.LocalRun(run_settings())
    run.dir = tmp_path
    run.work = tmp_path / "work"
    run.work.mkdir()
    return run


@pytest.fixture
def playbooks(monkeypatch):
    """Fake run_playbook: the pre-run fails (optionally returning data); records the calls."""
    calls = []

    def install(run, returned=None):
        def fake(phase, index, playbook, extra):
            calls.append((phase, playbook.path, extra))
            if phase == "pre-run":
                if returned is not None:
                    (run.work / "results.json").write_text(json.dumps(returned))
                return 2
            return 0

        monkeypatch.setattr(run, "run_playbook", fake)
        return calls

    return install


def test_a_failed_pre_run_is_retried(tmp_path, playbooks):
    run = _run(tmp_path)
    calls = playbooks(run)
    assert run.execute() == "RETRY"
    post = [extra for phase, _, extra in calls if phase == "post-run"]
    assert post and all(extra["zuul_will_retry"] is True for extra in post)
    assert not [c for c in calls if c[0] == "run"]


def test_a_pre_run_that_returned_retry_false_fails(tmp_path, playbooks):
    run = _run(tmp_path)
    calls = playbooks(run, {"data": {"zuul": {"retry": False}}, "secret_data": {}})
    assert run.execute() == "FAILURE"
    post = [extra for phase, _, extra in calls if phase == "post-run"]
    # Post-run and cleanup still run (logs, teardown), told there is no retry.
    assert post and all(extra["zuul_will_retry"] is False for extra in post)
    assert not [c for c in calls if c[0] == "run"]


def test_other_returned_data_does_not_change_the_result(tmp_path, playbooks):
    run = _run(tmp_path)
    playbooks(run, {"data": {"zuul": {"retry": True}, "x": 1}, "secret_data": {}})
    assert run.execute() == "RETRY"


def test_the_stand_in_zuul_return_merges_into_the_result_data_file(tmp_path):
    """The action plugin the runner's ansible.cfg loads, on a real playbook."""
    results = tmp_path / "results.json"
    playbook = tmp_path / "play.yaml"
    playbook.write_text(
        "- hosts: localhost\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - zuul_return:\n"
        "        data: {zuul: {retry: true}, a: {b: 1}}\n"
        "    - zuul_return:\n"
        "        data: {zuul: {retry: false}, a: {c: 2}}\n"
    )
    env = ansible.base_env({"ANSIBLE_ACTION_PLUGINS": str(runner.ACTIONS)})
    zuul = json.dumps({"zuul": {"executor": {"result_data_file": str(results)}}})
    proc = subprocess.run(
        [
            paths.bin_path("ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            zuul,
            str(playbook),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(results.read_text())
    assert data["data"] == {"zuul": {"retry": False}, "a": {"b": 1, "c": 2}}
    assert data["secret_data"] == {}


def test_the_runner_configuration_loads_the_stand_in(tmp_path):
    run = _run(tmp_path)
    run.private = tmp_path / "private"
    run.private.mkdir()
    cfg = run.ansible_cfg().read_text()
    assert f"action_plugins = {runner.ACTIONS}" in cfg
    assert (runner.ACTIONS / "zuul_return.py").is_file()
