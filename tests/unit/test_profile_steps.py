"""The profiles' steps that record their phase themselves (docs/source/shards.rst)."""

import pytest
import yaml

from shard_jobs import paths

PROFILES = sorted((paths.ROLES / "shard" / "profiles").glob("*/profile.yaml"))
# The steps whose module records the phase (roles/shard_deploy, roles/shard_label).
RECORDING_STEPS = ("registered", "label")
MARK = "_shard_step_phase"


def tasks(items):
    """Every task of a task list, blocks and their rescue/always included."""
    for task in items or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from tasks(task.get(key))


def recording(path):
    """The tasks of a step file (and the task files it includes) whose module passes the mark."""
    found = []
    for task in tasks(yaml.safe_load(path.read_text())):
        include = task.get("ansible.builtin.include_tasks")
        if isinstance(include, str) and "{{" not in include:
            found += recording(path.parent / include)
            continue
        for args in task.values():
            if isinstance(args, dict) and MARK in str(args.get("phase", "")):
                found.append(task["name"])
    return found


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.parent.name)
def test_each_recording_step_passes_the_phase_to_one_module(profile):
    steps = yaml.safe_load(profile.read_text()).get("steps", {})
    for step in RECORDING_STEPS:
        if step in steps:
            found = recording(profile.parent / steps[step])
            assert len(found) == 1, f"{profile.parent.name} step {step}: {found}"


def test_the_check_finds_a_step_that_does_not_pass_it(tmp_path):
    step = tmp_path / "label.yaml"
    step.write_text("- name: Label\n  shard_compute_label:\n    label: x\n")
    assert recording(step) == []
    step.write_text("- name: Label\n  shard_compute_label:\n    phase: '{{ _shard_step_phase }}'\n")
    assert recording(step) == ["Label"]
