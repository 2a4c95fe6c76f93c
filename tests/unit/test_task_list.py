"""The tasks a job ran, from a local run's job-output.txt and a Zuul build's job-output.json."""

import json

from shard_jobs import task_list

LOCAL = """\
ok: [controller] Gathering Facts (0.5s)
{
  "changed": false
}
changed: [controller] shard : Create the build's workspace (0.4s)
{}
ok: [controller] Install the OpenStack client used by the cloud tasks (0.0s)
ok: [controller] Step 2 : check the bus (0.1s)
"""


def test_a_local_run_s_tasks_without_their_role(tmp_path):
    roles = tmp_path / "roles"
    (roles / "shard").mkdir(parents=True)
    log = tmp_path / "job-output.txt"
    log.write_text(LOCAL)
    assert task_list.from_local(log, roles) == [
        ("Gathering Facts", "controller"),
        ("Create the build's workspace", "controller"),
        ("Install the OpenStack client used by the cloud tasks", "controller"),
        # " : " in a task's own name: no role of that name, so the name stays whole.
        ("Step 2 : check the bus", "controller"),
    ]


def _task(name, hosts, role=None):
    task = {"task": {"name": name, "id": "x"}, "hosts": hosts}
    if role:
        task["role"] = {"name": role}
    return task


def test_a_zuul_build_s_tasks_of_one_project_skipped_ones_left_out(tmp_path):
    build = [
        {
            "playbook": "opendev.org/shard-config/playbooks/base/pre.yaml",
            "plays": [{"tasks": [_task("Gathering Facts", {"controller": {}})]}],
        },
        {
            "playbook": "opendev.org/shard-jobs/playbooks/shard/pre-run.yaml",
            "plays": [
                {
                    "tasks": [
                        _task("Load the profile", {"controller": {"changed": False}}, "shard"),
                        _task("Step 2 : check the bus", {"controller": {}}, "shard"),
                        _task("Not this time", {"controller": {"skipped": True}}, "shard"),
                        _task("On two", {"a": {}, "b": {"skipped": True}, "c": {}}),
                    ]
                }
            ],
        },
    ]
    path = tmp_path / "job-output.json"
    path.write_text(json.dumps(build))
    assert task_list.from_zuul(path, "shard-jobs") == [
        ("Load the profile", "controller"),
        ("Step 2 : check the bus", "controller"),
        ("On two", "a"),
        ("On two", "c"),
    ]
    assert task_list.from_zuul(path, "shard-config") == [("Gathering Facts", "controller")]
    assert task_list.from_zuul(path, "shard") == []
