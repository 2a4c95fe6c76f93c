"""shard_guard: a change without migrations goes through, and the guard built nothing."""

import json


def _events(host, workspace):
    return [
        json.loads(line)
        for line in host.file(str(workspace / "phases.jsonl")).content_string.splitlines()
    ]


def test_the_guard_ran_to_its_end(host, workspace):
    # Its one module (shard_guard) records the start and, nothing refused, the end;
    # converge and the idempotence check each run it once.
    guard = [e["event"] for e in _events(host, workspace) if e["phase"] == "guard"]
    assert guard and guard[-1] == "end"
    assert guard == ["start", "end"] * (len(guard) // 2)


def test_it_ran_before_anything_was_built_or_started(host, workspace):
    assert not host.file(str(workspace / "venv")).exists
    assert not host.file(str(workspace / "current")).exists
    assert not host.file(str(workspace / "run" / "nova-compute.pid")).exists
    phases = {e["phase"] for e in _events(host, workspace)}
    assert not phases & {"build", "deploy", "label", "exercise"}


def test_the_prepared_change_has_no_new_migration(host, src_dir):
    # What the guard compared: the tree differs from its release tag, but not
    # in the migration directories.
    tag = host.check_output(f"git -C {src_dir} describe --tags --abbrev=0")
    changed = host.check_output(f"git -C {src_dir} diff --name-only {tag} HEAD")
    assert changed == "nova/molecule_marker.py"
