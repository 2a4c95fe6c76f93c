"""The rolling upgrade's sampler (module_utils/shard_rolling.py): its figures,
and what it does each second against a stand-in for the cloud."""

import re
import shutil
import subprocess
import sys
import types

import yaml

from shard_jobs import paths
from shard_jobs.rules import jsonl, rolling


def test_summary_of_the_records():
    records = [
        {"sample": 0, "op": "list", "ok": True, "upgrading": ""},
        {"sample": 0, "op": "show", "ok": True, "upgrading": ""},
        {"sample": 1, "op": "list", "ok": False, "error": "HttpException: 503", "upgrading": "h1"},
        {"sample": 1, "op": "show", "ok": True, "upgrading": "h1"},
        {"sample": 2, "op": "stop", "ok": True, "upgrading": "h2"},
        {"sample": 2, "op": "list", "ok": False, "error": "HttpException: 503", "upgrading": "h2"},
    ]
    out = rolling.summarize(records)
    assert (out["calls"], out["ok"], out["success_rate"], out["samples"]) == (6, 4, 0.6667, 3)
    assert out["by_call"]["list"] == {"calls": 3, "ok": 1, "success_rate": 0.3333}
    assert out["by_upgrading"] == {
        "h1": {"calls": 2, "ok": 1, "success_rate": 0.5},
        "h2": {"calls": 2, "ok": 1, "success_rate": 0.5},
    }
    assert out["errors"] == ["HttpException: 503"]
    assert rolling.summarize([])["success_rate"] is None


def test_the_sampler_runs_as_a_script_with_the_files_the_role_copies_beside_it(tmp_path):
    """On the node it is a plain script: what it imports must be among the role's files,
    which the layout task puts beside it."""
    files = paths.ROLES / "shard_upgrade" / "files"
    tasks = yaml.safe_load((paths.ROLES / "shard_upgrade" / "tasks" / "rolling.yaml").read_text())
    block = next(t for t in tasks if "block" in t)["block"]
    layout = next(t for t in block if t["name"].startswith("Lay out the sampler's directory"))
    looked_up = r"lookup\('ansible.builtin.file', '([^']+)', rstrip=false\)"
    copied = re.findall(looked_up, layout["shard_files"]["files"])
    assert sorted(copied) == sorted(p.name for p in files.iterdir())
    for name in copied:
        shutil.copy(files / name, tmp_path / name)
    # An interpreter with ansible, but without this repository's module_utils on its
    # path (-E: no PYTHONPATH): the node's case, where the imports fall back to the copies.
    out = subprocess.run(
        [sys.executable, "-E", "-s", str(tmp_path / "shard_rolling.py"), "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "rolling upgrade's sampler" in out.stdout


class FakeCompute:
    def __init__(self, statuses):
        self.statuses = statuses
        self.calls = []

    def servers(self):
        self.calls.append("list")
        return []

    def get_server(self, server_id):
        self.calls.append(f"show {server_id}")
        return types.SimpleNamespace(id=server_id, status=self.statuses[server_id], task_state=None)

    def stop_server(self, server_id):
        self.calls.append(f"stop {server_id}")
        self.statuses[server_id] = "SHUTOFF"

    def start_server(self, server_id):
        self.calls.append(f"start {server_id}")
        self.statuses[server_id] = "ACTIVE"

    def wait_for_server(self, server, **kwargs):
        assert kwargs["interval"] <= 0.5
        self.calls.append(f"wait {server.id}")


def test_each_second_it_lists_shows_and_acts_only_off_the_shard_being_upgraded(tmp_path):
    compute = FakeCompute({"a": "ACTIVE", "b": "ACTIVE"})
    upgrading = tmp_path / "upgrading"
    upgrading.write_text("h1\n")
    out = tmp_path / "samples.jsonl"
    servers = [{"server": "a", "host": "h1"}, {"server": "b", "host": "h2"}]
    with open(out, "w") as records:
        sampler = rolling.Sampler(
            types.SimpleNamespace(compute=compute), servers, upgrading, records
        )
        sampler.once()
        sampler.once()
        upgrading.write_text("h2\n")
        sampler.once()
        # At the end, what it stopped is started again and waited for.
        sampler.restore()
    assert compute.calls[:8] == [
        "list",
        "show a",
        "show b",
        "stop b",
        "list",
        "show a",
        "show b",
        "start b",
    ]
    assert compute.calls[8:12] == ["list", "show a", "show b", "stop a"]
    assert compute.statuses == {"a": "ACTIVE", "b": "ACTIVE"}
    rows = jsonl.read_jsonl(out)
    assert {r["upgrading"] for r in rows} == {"h1", "h2"}
    assert all(r["ok"] for r in rows) and rolling.summarize(rows)["samples"] == 3


def test_no_action_reaches_a_shard_whose_upgrade_began_while_the_sample_ran(tmp_path):
    compute = FakeCompute({"a": "ACTIVE", "b": "ACTIVE"})
    upgrading = tmp_path / "upgrading"
    upgrading.write_text("h1\n")
    servers = [{"server": "a", "host": "h1"}, {"server": "b", "host": "h2"}]
    show = compute.get_server

    def show_then_switch(server_id):
        # The upgrade moves on to h2 while the sample shows its servers.
        if server_id == "b":
            upgrading.write_text("h2\n")
        return show(server_id)

    compute.get_server = show_then_switch
    with open(tmp_path / "samples.jsonl", "w") as records:
        rolling.Sampler(types.SimpleNamespace(compute=compute), servers, upgrading, records).once()
    assert compute.calls == ["list", "show a", "show b"]
