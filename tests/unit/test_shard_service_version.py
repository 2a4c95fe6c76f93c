"""shard_service_version (and module_utils/shard_versions): a service version from a
source tree or an installed virtualenv. The guard's use of it (and of the skew rule):
test_shard_guard.py."""

import json
import sys
from pathlib import Path

import pytest
import shard_service_version as module
import yaml
from ansible.module_utils import shard_versions as rules
from unit_helpers import playbook

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


def handout_play(venv, compute_nova, newer):
    """The embedded_cloud role's nova service version reads (state.yaml), with the role's
    vars and, of its defaults, those the reads use (vars_files would win over these), then
    the handout's minimum_service_versions and maximum_service_versions."""
    role = paths.ROLES / "embedded_cloud"
    state = yaml.safe_load((role / "tasks" / "state.yaml").read_text())
    return {
        "hosts": "all",
        "gather_facts": False,
        "vars_files": [str(role / "vars" / "main.yaml")],
        "vars": {
            "role_path": str(role),
            "embedded_cloud_venv": venv,
            "embedded_cloud_compute_nova": compute_nova,
            "embedded_cloud_sources": {},
            "embedded_cloud_newer_service_versions": newer,
            "embedded_cloud_python": sys.executable,
        },
        "tasks": [
            *[task for task in state if "shard_service_version" in task],
            {
                "ansible.builtin.debug": {
                    "msg": "{{ [_embedded_cloud_handout_data.minimum_service_versions,"
                    " _embedded_cloud_handout_data.maximum_service_versions] }}"
                }
            },
        ],
    }


def test_the_embedded_cloud_hands_out_its_computes_version(tmp_path):
    """The embedded_cloud role's own read tasks (state.yaml), with the role's defaults and
    vars: the module reads the ordinary compute's nova on the cloud's host, by the
    nova-compute profile's rule, into the handout's minimum_service_versions, and the
    control plane's (the same nova here: read once) plus the allowed skew into its
    maximum_service_versions; a host without nova yet hands out neither."""
    installed = tmp_path / "installed"
    site = installed / "lib/python3.12/site-packages"
    (site / "nova/objects").mkdir(parents=True)
    (site / FILE).write_text(SOURCE.replace("72", "61"))
    play = handout_play("{{ venv }}", compute_nova="", newer=2)
    assert len(play["tasks"]) == 3  # the two reads, then the handout's bounds
    proc = playbook(
        tmp_path,
        play,
        installed=dict(venv=str(installed)),
        fresh=dict(venv=str(tmp_path / "not-yet")),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tasks = json.loads(proc.stdout)["plays"][0]["tasks"]
    # One nova for both: the control plane's read is skipped.
    assert tasks[1]["hosts"]["installed"].get("skipped") is True
    shown = tasks[2]["hosts"]
    assert shown["installed"]["msg"] == [{"nova-compute": 61}, {"nova-compute": 63}]
    assert shown["fresh"]["msg"] == [{}, {}]


def test_the_embedded_cloud_reads_its_control_plane_apart_from_an_older_compute(tmp_path):
    """An ordinary compute of an older release (embedded_cloud_compute_nova): the handout's
    minimum is its version, the maximum the control plane's plus the allowed skew."""
    venv = tmp_path / "venv"
    for root, version in ((venv, "74"), (Path(f"{venv}-compute-nova-33.0.2"), "72")):
        site = root / "lib/python3.12/site-packages"
        (site / "nova/objects").mkdir(parents=True)
        (site / FILE).write_text(SOURCE.replace("72", version))
    play = handout_play(str(venv), compute_nova="33.0.2", newer=1)
    proc = playbook(tmp_path, play, host={})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = json.loads(proc.stdout)["plays"][0]["tasks"][2]["hosts"]["host"]
    assert shown["msg"] == [{"nova-compute": 72}, {"nova-compute": 75}]


@pytest.mark.parametrize(
    ("minimum", "maximum", "version", "refused"),
    [
        (74, 75, 74, ""),
        (74, 75, 75, ""),
        (74, 75, 73, "older than v74"),
        (74, 75, 76, "up to v75"),
        (None, 75, 60, ""),
        (74, None, 99, ""),
        (74, 75, None, ""),
    ],
)
def test_the_skew_rule_both_ways(minimum, maximum, version, refused):
    """Within [minimum, maximum] (either unstated: no bound) or no version read: nothing;
    outside: the line of that side, the newer one saying which cloud the change needs."""
    line = rules.skew_refusal(
        "nova-compute", minimum, version, "the change's nova", maximum=maximum, project="nova"
    )
    assert (refused in line) if refused else line == ""
    if refused == "up to v75":
        assert line.endswith(
            "the change's nova has service version 76; it needs a cloud whose nova is at "
            "least that new (one that follows the branch, upgraded)"
        )


def test_bounds_parse_as_whole_numbers():
    assert rules.parse_bound(" 75 ") == 75 and rules.parse_bound(75) == 75
    assert rules.parse_bound("") is None and rules.parse_bound(None) is None
    with pytest.raises(ValueError):
        rules.parse_bound("v75")
