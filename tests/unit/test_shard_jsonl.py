"""The one reader of JSON-lines files (module_utils/shard_jsonl.py)."""

import json

from shard_jobs.rules import jsonl, phases


def test_objects_in_file_order_skipping_what_is_not_one(tmp_path):
    path = tmp_path / "records.jsonl"
    lines = [json.dumps({"n": 2}), "", "not json", "[1, 2]", "  ", json.dumps({"n": 1}), '{"n": 3']
    path.write_text("\n".join(lines))

    # A cut last line, a blank one, a list: skipped; the rest as written.
    assert jsonl.read_jsonl(path) == [{"n": 2}, {"n": 1}]


def test_no_file_no_records(tmp_path):
    assert jsonl.read_jsonl(tmp_path / "none") == []


def test_phase_events_are_its_records_with_a_phase_and_a_time_oldest_first(tmp_path):
    path = tmp_path / phases.PHASES_FILE
    rows = [
        {"phase": "b", "event": "start", "time": 2.0},
        {"op": "list"},
        {"phase": "a", "event": "start", "time": 1.0},
        {"phase": "c", "event": "end"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + '\n{"phase": "d", "ti')

    assert [e["phase"] for e in phases.read_events(path)] == ["a", "b"]
