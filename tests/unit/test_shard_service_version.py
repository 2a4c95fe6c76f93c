"""shard_service_version (and module_utils/shard_versions): a service version from a
source tree or an installed virtualenv."""

import json
import os
import subprocess
import sys

import shard_service_version as module
import yaml

from shard_jobs import paths

PATTERN = r"^SERVICE_VERSION = (\d+)$"
FILE = "nova/objects/service.py"
SOURCE = "# the history\nSERVICE_VERSION_HISTORY = ()\nSERVICE_VERSION = 72\nOTHER = 1\n"


def test_a_source_tree(tmp_path, run_module):
    (tmp_path / "nova/objects").mkdir(parents=True)
    (tmp_path / FILE).write_text(SOURCE)

    result = run_module(module, dict(root=str(tmp_path), file=FILE, pattern=PATTERN))

    assert result["service_version"] == 72 and result["changed"] is False


def test_a_virtualenv(tmp_path, run_module):
    site = tmp_path / "lib/python3.11/site-packages"
    (site / "nova/objects").mkdir(parents=True)
    (site / FILE).write_text(SOURCE.replace("72", "74"))

    result = run_module(module, dict(root=str(tmp_path), file=FILE, pattern=PATTERN))

    assert result["service_version"] == 74


def test_nothing_found_is_none(tmp_path, run_module):
    (tmp_path / "nova/objects").mkdir(parents=True)
    (tmp_path / FILE).write_text("SERVICE_VERSION = 'unknown'\n")

    assert (
        run_module(module, dict(root=str(tmp_path), file=FILE, pattern=PATTERN))["service_version"]
        is None
    )
    assert (
        run_module(module, dict(root=str(tmp_path / "none"), file=FILE, pattern=PATTERN))[
            "service_version"
        ]
        is None
    )


def _playbook(tmp_path, play, **hosts):
    """ansible-playbook of one play on local hosts (name=host vars), as the roles find the
    modules, with zuul_return as ./shard run provides it; the JSON callback's output."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"all": {"hosts": {name: dict(local, **v) for name, v in hosts.items()}}}
    (tmp_path / "play.yaml").write_text(yaml.safe_dump([play]))
    (tmp_path / "hosts.yaml").write_text(yaml.safe_dump(inventory))
    env = dict(
        os.environ,
        ANSIBLE_LIBRARY=str(paths.LIBRARY),
        ANSIBLE_MODULE_UTILS=str(paths.REPO / "module_utils"),
        ANSIBLE_ACTION_PLUGINS=str(paths.REPO / "shard_jobs" / "ansible_plugins" / "action"),
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="true",
    )
    command = [paths.bin_path("ansible-playbook"), "-i", str(tmp_path / "hosts.yaml")]
    return subprocess.run(
        [*command, str(tmp_path / "play.yaml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )


def _nova_tree(root, version):
    (root / "nova/objects").mkdir(parents=True)
    (root / FILE).write_text(SOURCE.replace("72", str(version)))
    return root


def test_the_guard_refuses_a_change_older_than_the_cloud_accepts(tmp_path):
    """shard_guard's skew.yaml, as its main entry point runs it: the change's tree read
    by the nova-compute profile's rule; older than the minimum: refused in one line and
    not retried; the minimum itself, or no version found: no refusal."""
    profile = yaml.safe_load((paths.ROLES / "shard/profiles/nova-compute/profile.yaml").read_text())
    play = {
        "hosts": "all",
        "gather_facts": False,
        "vars": {
            "_shard_profile": {
                "service": {"name": "nova-compute"},
                "service_version": profile["service_version"],
            },
            "_shard_guard_minimum": "74",
            "zuul": {"executor": {"result_data_file": "{{ result_file }}"}},
        },
        "tasks": [
            {
                "ansible.builtin.include_tasks": str(paths.ROLES / "shard_guard/tasks/skew.yaml"),
                "vars": {
                    "shard_guard_skew_root": "{{ tree }}",
                    "shard_guard_skew_what": "the change's nova",
                },
            }
        ],
    }
    hosts = {
        name: dict(tree=str(tree), result_file=str(tmp_path / f"{name}.json"))
        for name, tree in (
            ("older", _nova_tree(tmp_path / "older", 73)),
            ("same", _nova_tree(tmp_path / "same", 74)),
            ("unknown", tmp_path / "no-tree"),
        )
    }
    proc = _playbook(tmp_path, play, **hosts)
    stats = json.loads(proc.stdout)["stats"]
    assert stats["older"]["failures"] == 1
    assert stats["same"]["failures"] == 0 and stats["unknown"]["failures"] == 0
    assert (
        "this cloud refuses nova-compute older than v74 (minimum_service_versions in its "
        "credentials): the change's nova has service version 73"
    ) in proc.stdout
    assert json.loads((tmp_path / "older.json").read_text())["data"] == {"zuul": {"retry": False}}
    assert not (tmp_path / "same.json").exists()


def test_the_embedded_cloud_hands_out_its_computes_version(tmp_path):
    """The embedded_cloud role's own read task (state.yaml), with the role's defaults and
    vars: the module reads the ordinary compute's nova on the cloud's host, by the
    nova-compute profile's rule, into the handout's minimum_service_versions; a host
    without nova yet hands out none."""
    installed = tmp_path / "installed"
    site = installed / "lib/python3.12/site-packages"
    (site / "nova/objects").mkdir(parents=True)
    (site / FILE).write_text(SOURCE.replace("72", "61"))
    role = paths.ROLES / "embedded_cloud"
    state = yaml.safe_load((role / "tasks" / "state.yaml").read_text())
    (read,) = [task for task in state if "shard_service_version" in task]
    play = {
        "hosts": "all",
        "gather_facts": False,
        # The role's vars; of its defaults, those the read uses, set here (vars_files
        # would win over these).
        "vars_files": [str(role / "vars" / "main.yaml")],
        "vars": {
            "role_path": str(role),
            "embedded_cloud_venv": "{{ venv }}",
            "embedded_cloud_compute_nova": "",
            "embedded_cloud_python": sys.executable,
        },
        "tasks": [
            read,
            {
                "ansible.builtin.debug": {
                    "msg": "{{ _embedded_cloud_handout_data.minimum_service_versions }}"
                }
            },
        ],
    }
    proc = _playbook(
        tmp_path,
        play,
        installed=dict(venv=str(installed)),
        fresh=dict(venv=str(tmp_path / "not-yet")),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = json.loads(proc.stdout)["plays"][0]["tasks"][1]["hosts"]
    assert shown["installed"]["msg"] == {"nova-compute": 61}
    assert shown["fresh"]["msg"] == {}
