"""./shard run starts ansible-playbook as Zuul's executor does: the run's ansible.cfg and
nothing of the user's ANSIBLE_* settings, no terminal, and the executor's extra variables
(zuul_execution_*, and in post-run zuul_success and zuul_will_retry, as strings)."""

import subprocess
from pathlib import Path

import yaml
from test_runner_ara import _run_one_playbook, started  # noqa: F401 (a fixture)
from unit_helpers import run_settings

from shard_jobs import runner


def test_the_user_s_ansible_settings_do_not_reach_the_playbook(tmp_path, started, monkeypatch):  # noqa: F811
    monkeypatch.setenv("ANSIBLE_STDOUT_CALLBACK", "default")
    monkeypatch.setenv("ANSIBLE_GATHERING", "explicit")
    monkeypatch.setenv("SHARD_UNRELATED", "kept")
    run = _run_one_playbook(tmp_path, run_settings())
    [(_, env)] = started
    assert "ANSIBLE_STDOUT_CALLBACK" not in env and "ANSIBLE_GATHERING" not in env
    assert env["ANSIBLE_CONFIG"] == str(run.private / "ansible.cfg")
    assert env["SHARD_UNRELATED"] == "kept"


def test_a_playbook_has_no_terminal(tmp_path, monkeypatch):
    kwargs = {}

    class FakeProcess:
        pid = 0

        def __init__(self, cmd, **kw):
            kwargs.update(kw)

        def wait(self):
            return 0

    monkeypatch.setattr(runner.subprocess, "Popen", FakeProcess)
    _run_one_playbook(tmp_path, run_settings())
    assert kwargs["stdin"] is subprocess.DEVNULL


def test_the_executor_s_variables_of_a_run_playbook(tmp_path, started):  # noqa: F811
    run = _run_one_playbook(tmp_path, run_settings())
    [(cmd, _)] = started
    extra = [a[1:] for a in cmd if a.startswith("@") and "extra-run-0" in a]
    assert extra, cmd
    values = yaml.safe_load(Path(extra[0]).read_text())
    assert values == {
        "zuul_execution_phase": "run",
        "zuul_execution_phase_index": "0",
        "zuul_execution_trusted": "False",
        "zuul_execution_canonical_name_and_path": (
            f"opendev.org/shard-jobs/shard-jobs/{run.job.run[0].path}"
        ),
        "zuul_execution_branch": "master",
    }


def test_post_run_results_are_strings_as_the_executor_passes_them():
    playbook = runner.zuul_config.Playbook(path="playbooks/shard/cleanup.yaml", cleanup=True)
    values = runner.execution_vars(
        "post-run", 1, playbook, {"zuul_success": False, "zuul_will_retry": True}
    )
    assert values["zuul_success"] == "False" and values["zuul_will_retry"] == "True"
    assert values["zuul_execution_phase"] == "post"
    assert values["zuul_execution_phase_index"] == "1"


def test_after_a_failed_post_run_playbook_the_next_ones_see_no_success(monkeypatch, tmp_path):
    run = runner.LocalRun(run_settings(job="shard-nova-compute-upgrade"))
    run.work = tmp_path
    seen = []

    def fake(phase, index, playbook, extra):
        seen.append((phase, playbook.path, dict(extra)))
        # Everything passes but the first post-run playbook.
        return 2 if playbook.path.endswith("upgrade-post-run.yaml") else 0

    monkeypatch.setattr(run, "run_playbook", fake)
    assert run.execute() == "POST_FAILURE"
    post = [(path, extra["zuul_success"]) for phase, path, extra in seen if phase == "post-run"]
    assert post == [
        ("playbooks/shard/upgrade-post-run.yaml", True),
        ("playbooks/shard/cleanup.yaml", False),
    ]


def test_where_collections_are_is_kept(tmp_path, started, monkeypatch):  # noqa: F811
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(tmp_path / "collections"))
    _run_one_playbook(tmp_path, run_settings())
    [(_, env)] = started
    assert env["ANSIBLE_COLLECTIONS_PATH"] == str(tmp_path / "collections")
