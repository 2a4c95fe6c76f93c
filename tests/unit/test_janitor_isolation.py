"""The janitor isolates errors per label and fails at the end (roles/shard_janitor).

The isolation is the role's: its deletion task loops over the expired labels
with ignore_errors, the report records each label's result and a last task
fails naming the labels that failed. These tests run those very tasks (read
from the role's task file) with ansible-playbook, a stand-in for the
shard_teardown_cloud module and the search's result as a fact: no cloud.
"""

import json
import os
import subprocess

import yaml

from shard_jobs import paths

ROLE_TASKS = paths.ROLES / "shard_janitor" / "tasks" / "main.yaml"
BROKEN = "shard-aaaaaaaaaaaa"
GOOD = "shard-bbbbbbbbbbbb"

# Deletes (records) the label it is given; raises for BROKEN, as a module whose
# client hit an unexpected error does.
STUB = """#!/usr/bin/python
import json, os
from ansible.module_utils.basic import AnsibleModule

module = AnsibleModule(argument_spec=dict(
    cloud=dict(), label=dict(), order=dict(type="list"), leak_check=dict(type="bool"),
    timeout=dict(type="int")))
label = module.params["label"]
if label == %(broken)r:
    raise RuntimeError("the compute API went away while deleting " + label)
with open(os.environ["DELETED"], "a") as f:
    f.write(label + "\\n")
module.exit_json(changed=True, deleted=["server " + label], left={})
"""


def deletion_tasks():
    """The role's tasks from the deletion on (the search's result is a fact here)."""
    for task in yaml.safe_load(ROLE_TASKS.read_text()):
        for inner in task.get("block", []):
            if "block" in inner and any("shard_teardown_cloud" in t for t in inner["block"]):
                return [t for t in inner["block"] if "shard_labelled_resources" not in t]
    raise AssertionError(f"no deletion task in {ROLE_TASKS}")


def run_janitor(tmp_path, expired):
    (tmp_path / "library").mkdir()
    (tmp_path / "library" / "shard_teardown_cloud.py").write_text(STUB % {"broken": BROKEN})
    report = tmp_path / "report.json"
    play = {
        "name": "The janitor's deletion, isolated per label",
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {
            "_shard_cloud_name": "target",
            "shard_janitor_order": ["servers", "flavors"],
            "shard_janitor_dry_run": False,
            "shard_janitor_older_than": "3h",
            "shard_janitor_report": str(report),
            "shard_wait_timeout": 5,
            "_shard_janitor_found": {
                "expired": expired,
                "resources": {},
                "count": len(expired),
                "unsearched": [],
            },
        },
        "tasks": deletion_tasks(),
    }
    (tmp_path / "play.yaml").write_text(yaml.safe_dump([play]))
    deleted = tmp_path / "deleted"
    deleted.touch()
    env = dict(
        os.environ,
        DELETED=str(deleted),
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="true",
        ANSIBLE_PYTHON_INTERPRETER=paths.bin_path("python"),
    )
    proc = subprocess.run(
        [paths.bin_path("ansible-playbook"), "-i", "localhost,", "-c", "local", "play.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    results = json.loads(proc.stdout)["plays"][0]["tasks"]
    last = results[-1]["hosts"]["localhost"]
    return proc.returncode, last, deleted.read_text().split(), report


def test_a_failing_label_does_not_stop_the_others_and_fails_the_run(tmp_path):
    rc, last, deleted, report = run_janitor(tmp_path, [BROKEN, GOOD])

    # The other label was cleaned, after the failing one.
    assert deleted == [GOOD]
    # The run failed at the end, naming the label that failed (and only it).
    assert rc != 0
    assert last.get("failed") is True
    assert last["msg"].startswith(f"1 of 2 expired label(s) could not be cleaned up: {BROKEN} ")
    assert GOOD not in last["msg"]
    # The report records both: what was deleted, and the error.
    results = json.loads(report.read_text())["results"]
    assert results[GOOD] == {"deleted": [f"server {GOOD}"], "left": {}, "error": None}
    assert results[BROKEN]["error"]


def test_labels_that_all_succeed_pass(tmp_path):
    rc, last, deleted, report = run_janitor(tmp_path, [GOOD])

    assert rc == 0, last
    assert deleted == [GOOD]
    assert json.loads(report.read_text())["results"][GOOD]["error"] is None
