"""The profiles' steps that record their phase themselves (docs/source/shards.rst)."""

import pytest
import yaml

from shard_jobs import paths

PROFILES = sorted((paths.ROLES / "shard" / "profiles").glob("*/profile.yaml"))
MARK = "_shard_step_phase"
# The label phase of a registered step that also labels the shard (roles/shard_deploy).
LABEL_MARK = "_shard_label_phase"


def steps_in_order(path):
    """The tasks a step file runs when nothing fails, in order: blocks flattened (not their
    rescue or always), a static include_tasks replaced by the tasks of its file."""

    def walk(items, here):
        for task in items or []:
            if "block" in task:
                yield from walk(task["block"], here)
                continue
            include = task.get("ansible.builtin.include_tasks")
            if isinstance(include, dict):
                include = include.get("file")
            if isinstance(include, str) and "{{" not in include:
                target = here / include
                yield from walk(yaml.safe_load(target.read_text()), target.parent)
                continue
            yield task

    return list(walk(yaml.safe_load(path.read_text()), path.parent))


def records(task):
    """Whether a task records the step's phase: a module given the mark as its phase
    option, or a shard_report event of the mark's phase."""
    return any(
        isinstance(args, dict) and MARK in str(args.get("phase", "")) for args in task.values()
    )


def labels(task):
    """Whether a task labels the shard, recording the label phase from LABEL_MARK."""
    return any(isinstance(args, dict) and LABEL_MARK in str(args) for args in task.values())


def check(path, step, has_label_step=False):
    """What is wrong with a step file's phase record, or None."""
    tasks = steps_in_order(path)
    labelling = [t["name"] for t in tasks if labels(t)]
    if labelling and (step != "registered" or has_label_step):
        return f"{labelling} record the label phase, but the profile has a label step"
    # One module run records the end of deploy, then the label phase: the last.
    if labelling and (len(labelling) != 1 or not (records(tasks[-1]) and labels(tasks[-1]))):
        return f"the label phase is recorded by {labelling}, not by the step's last task"
    recording = [t["name"] for t in tasks if records(t)]
    if len(recording) != 1:
        return f"{len(recording)} tasks record the phase: {recording}"
    # label: its one task starts and ends the phase; registered: the last task ends it.
    if step == "label" and len(tasks) != 1:
        return f"the label step has {len(tasks)} tasks; its one module records start and end"
    if step == "registered" and not records(tasks[-1]):
        return f"the end is recorded by {recording[0]!r}, not by the step's last task"
    return None


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.parent.name)
@pytest.mark.parametrize("step", ["registered", "label"])
def test_each_recording_step_records_its_phase_at_the_right_place(profile, step):
    steps = yaml.safe_load(profile.read_text()).get("steps", {})
    if step in steps:
        assert check(profile.parent / steps[step], step, "label" in steps) is None


def test_the_nova_compute_registered_step_labels_the_shard():
    # No label step of its own: its registered step's one module labels it.
    path = paths.ROLES / "shard" / "profiles" / "nova-compute" / "profile.yaml"
    steps = yaml.safe_load(path.read_text())["steps"]
    assert "label" not in steps
    assert labels(steps_in_order(path.parent / steps["registered"])[-1])


def test_the_check_finds_a_missing_or_early_record(tmp_path):
    step = tmp_path / "registered.yaml"
    step.write_text("- name: Wait\n  shard_compute_service:\n    host: x\n")
    assert check(step, "registered") == "0 tasks record the phase: []"
    step.write_text(
        "- block:\n"
        "    - name: Wait\n      shard_image_info:\n        phase: '{{ _shard_step_phase }}'\n"
        "    - name: Check\n      ansible.builtin.assert:\n        that: [true]\n"
        "  rescue:\n    - name: Say why\n      ansible.builtin.fail:\n        msg: x\n"
    )
    assert check(step, "registered") == "the end is recorded by 'Wait', not by the step's last task"
    step.write_text("- name: Wait\n  shard_image_info:\n    phase: '{{ _shard_step_phase }}'\n")
    assert check(step, "registered") is None


def test_the_check_finds_a_label_phase_out_of_place(tmp_path):
    step = tmp_path / "registered.yaml"
    both = "phase: '{{ _shard_step_phase }}'\n    label_step: '{{ _shard_label_phase }}'\n"
    step.write_text(f"- name: Wait and label\n  shard_compute_service:\n    {both}")
    assert check(step, "registered") is None
    assert check(step, "registered", has_label_step=True) == (
        "['Wait and label'] record the label phase, but the profile has a label step"
    )
    step.write_text(
        "- name: Wait\n  shard_compute_service:\n    label_step: '{{ _shard_label_phase }}'\n"
        "- name: End\n  shard_report:\n    phase: '{{ _shard_step_phase }}'\n"
    )
    assert check(step, "registered") == (
        "the label phase is recorded by ['Wait'], not by the step's last task"
    )


def test_only_deploy_asks_the_registered_step_to_label():
    """The upgrade re-runs the registered step on a labelled shard: it must not label or
    probe again, nor record a second label phase, so it never passes the label phase."""

    def passes_label_phase(path):
        found = []

        def walk(node):
            if isinstance(node, dict):
                if LABEL_MARK in (node.get("vars") or {}):
                    found.append(node.get("name"))
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(yaml.safe_load(path.read_text()))
        return found

    deploy = paths.ROLES / "shard_deploy" / "tasks" / "main.yaml"
    assert passes_label_phase(deploy), "shard_deploy no longer asks its registered step to label"
    for path in sorted((paths.ROLES / "shard_upgrade" / "tasks").glob("*.yaml")):
        assert passes_label_phase(path) == [], path
