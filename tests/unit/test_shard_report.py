"""The shard_report module and module_utils/shard_phases.py: CPU snapshots, phases,
resources, the report files; module_utils/shard_report_page.py: report.html.

Snapshots are checked on a fake /proc; the commands (sample, report, finish,
reached) run for real on this machine's /proc, in a temporary workspace.
"""

import json
import os
import types

import pytest
import shard_report
from ansible.module_utils import shard_phases, shard_report_page
from ansible.module_utils import shard_processes as processes
from unit_helpers import jinja


@pytest.fixture(scope="module")
def sr():
    """The sampler and the event arithmetic (shard_phases), and the report (shard_report)."""
    return types.SimpleNamespace(**{**vars(shard_phases), **vars(shard_report)})


def _stat_line(pid, comm, ppid, utime, stime, cutime=0, cstime=0, start=1000):
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime priority nice threads itrealvalue starttime ...
    fields = ["S", ppid, 0, 0, 0, 0, 0, 0, 0, 0, 0, utime, stime, cutime, cstime]
    fields += [20, 0, 1, 0, start, 0, 0]
    return f"{pid} ({comm}) " + " ".join(str(f) for f in fields) + "\n"


@pytest.fixture
def fake_proc(tmp_path, sr):
    """A /proc with: the harness (10) and its child (11), the code under test (20)
    and its child (21), a cloud process (30), a stranger (40); 100 ticks a second."""
    proc = tmp_path / "proc"
    proc.mkdir()
    tck = sr.CLK_TCK
    procs = {
        10: ("shard", 1, 2 * tck, 1 * tck, 3 * tck, 0),
        11: ("ansible-playbook", 10, 4 * tck, 0, 0, 0),
        20: ("nova-compute", 1, 5 * tck, 1 * tck, 0, 0),
        21: ("privsep (x) y", 20, 1 * tck, 0, 0, 0),
        30: ("gunicorn", 1, 7 * tck, 0, 0, 0),
        40: ("other", 1, 50 * tck, 0, 0, 0),
    }
    for pid, (comm, ppid, ut, st, cut, cst) in procs.items():
        (proc / str(pid)).mkdir()
        (proc / str(pid) / "stat").write_text(
            _stat_line(pid, comm, ppid, ut, st, cut, cst, start=1000 + pid)
        )
    (proc / "self").mkdir()  # not a pid: ignored
    # user nice system idle iowait irq softirq steal
    (proc / "stat").write_text(f"cpu  {100 * tck} 0 {20 * tck} {500 * tck} 0 0 0 0 0 0\n")
    (proc / "loadavg").write_text("1.50 1.00 0.50 2/300 12345\n")
    ws = tmp_path / "ws"
    (ws / "run").mkdir(parents=True)
    processes.write_record(str(ws / "run" / "nova-compute.pid"), {"pid": 20, "start_time": 1020})
    # A stale pid file (another process now has that pid): not the service.
    processes.write_record(str(ws / "run" / "old.pid"), {"pid": 40, "start_time": 1})
    return proc, ws


def test_snapshot_groups(sr, fake_proc):
    proc, ws = fake_proc
    env = {"SHARD_RUN_PID": "10", "SHARD_RUN_CLOUD_PIDS": "30,999"}
    snap = sr.snapshot(str(ws), environ=env, proc=str(proc))
    assert snap["machine"] == 120.0 and snap["machine_total"] == 620.0
    # The service and its child, keyed by pid and start time.
    assert snap["code"] == {"20:1020": 7.0}
    # The harness: itself (own + children that exited) and its live child.
    assert snap["harness"] == 10.0
    assert snap["cloud"] == 7.0
    assert snap["load1"] == 1.5


def test_snapshot_without_harness_or_cloud(sr, fake_proc):
    proc, ws = fake_proc
    snap = sr.snapshot(str(ws), environ={}, proc=str(proc))
    assert "harness" not in snap and "cloud" not in snap


def test_code_under_test_is_not_counted_as_harness(sr, fake_proc):
    """A service started by a module is its child until the module exits."""
    proc, ws = fake_proc
    stat = proc / "20" / "stat"
    stat.write_text(stat.read_text().replace("nova-compute) S 1 ", "nova-compute) S 11 "))
    snap = sr.snapshot(str(ws), environ={"SHARD_RUN_PID": "10"}, proc=str(proc))
    assert snap["harness"] == 10.0 and snap["code"] == {"20:1020": 7.0}


def _sample(machine, code=None, harness=None, cloud=None):
    out = {"machine": machine, "code": code or {}}
    if harness is not None:
        out["harness"] = harness
    if cloud is not None:
        out["cloud"] = cloud
    return out


def test_cpu_between(sr):
    samples = [
        _sample(100, {}, harness=10, cloud=50),
        _sample(110, {"1:5": 2.0}, harness=13, cloud=52),
        # The service was stopped: its last value counts.
        _sample(125, {}, harness=15, cloud=54),
    ]
    cpu = sr.cpu_between(samples)
    assert cpu == {
        "machine": 25,
        "code_under_test": 2.0,
        "target_cloud": 4,
        "harness": 5,
        "other": 14.0,
    }
    # Not measured: None; the rest never below zero.
    cpu = sr.cpu_between([_sample(10, {"1:5": 1.0}), _sample(11, {"1:5": 9.0})])
    assert cpu["target_cloud"] is None and cpu["harness"] is None
    assert cpu["code_under_test"] == 8.0 and cpu["other"] == 0.0
    assert sr.cpu_between([_sample(1)]) is None


def test_every_reader_names_the_groups_cpu_between_returns(sr):
    """The group names live in shard_phases: the report describes each group, says
    which were not measured, and the page has a title and a colour for each."""
    cpu = sr.cpu_between([_sample(1, harness=1, cloud=1), _sample(2, harness=2, cloud=2)])
    assert set(cpu) == {shard_phases.MACHINE, *shard_phases.GROUPS}
    assert set(shard_report.COVERS) == set(cpu)
    tree_groups = {group for group, _key in shard_phases.TREE_GROUPS}
    assert set(shard_report.NOT_MEASURED) == tree_groups
    unmeasured = sr.cpu_between([_sample(1), _sample(2)])
    assert {g for g, v in unmeasured.items() if v is None} == tree_groups
    assert tuple(shard_report_page.GROUP_TITLES) == shard_phases.GROUPS
    assert tuple(shard_report_page.COLOURS) == shard_phases.GROUPS


def _event(phase, event, at, machine=None, **kw):
    out = {"phase": phase, "event": event, "time": 1000.0 + at}
    if machine is not None:
        out["cpu"] = _sample(machine, **kw)
    return out


def test_phases_repeated_and_unfinished(sr):
    events = [
        _event("build", "start", 0, 0),
        _event("build", "end", 10, 15),
        _event("build", "start", 12, 16),
        _event("build", "end", 20, 30),
        _event("deploy", "start", 21, 31),
        # no end: the job failed in deploy
        _event("exercise", "end", 40, 50),  # an end without a start: ignored
    ]
    phases = sr.phases_of(events, 1000.0)
    assert [p["name"] for p in phases] == ["build", "build (2)", "deploy"]
    assert phases[0]["seconds"] == 10 and phases[0]["cpu"]["machine"] == 15
    assert phases[1]["start"] == 12 and phases[1]["seconds"] == 8
    assert phases[1]["cpu"]["machine"] == 14
    assert phases[2]["end"] is None and phases[2]["seconds"] is None
    # Old records (no CPU snapshot) still time the phases.
    plain = [{k: v for k, v in e.items() if k != "cpu"} for e in events]
    assert sr.phases_of(plain, 1000.0)[0] == {
        "name": "build",
        "start": 0.0,
        "end": 10.0,
        "seconds": 10.0,
        "cpu": None,
    }


def test_resources(sr):
    exercise = {"server": "s-1", "landed_on": "shard-x"}
    assert sr.resources_of(exercise, None)["state"] == "pending"
    teardown = {
        "found": {
            "servers": [{"id": "s-1", "name": "shard-x-server"}],
            "flavors": [{"id": "f-1", "name": "shard-x-flavor"}],
            "traits": [{"id": "CUSTOM_SHARD_X", "name": "CUSTOM_SHARD_X"}],
        },
        "left": {"traits": [{"id": "CUSTOM_SHARD_X", "name": "CUSTOM_SHARD_X"}], "servers": []},
        "error": None,
    }
    res = sr.resources_of(exercise, teardown)
    created = {(c["kind"], c["id"]): c["by"] for c in res["created"]}
    # The exercise's server was still there (it failed before deleting it): teardown did.
    assert created == {
        ("servers", "s-1"): "teardown",
        ("flavors", "f-1"): "teardown",
        ("traits", "CUSTOM_SHARD_X"): "teardown",
    }
    assert {(d["kind"], d["id"]) for d in res["deleted"]} == {
        ("servers", "s-1"),
        ("flavors", "f-1"),
    }
    assert [(item["kind"], item["id"]) for item in res["left"]] == [("traits", "CUSTOM_SHARD_X")]
    # Without a leak check nothing is known to be deleted by teardown.
    res = sr.resources_of({}, {"found": teardown["found"], "left": None})
    assert res["deleted"] == [] and res["state"] == "ok"


def test_final_verdict(sr):
    assert sr.final_verdict("SUCCESS", None) == "SUCCESS"
    assert sr.final_verdict("SUCCESS", {"error": None}) == "SUCCESS"
    assert sr.final_verdict("SUCCESS", {"error": "leak"}) == "POST_FAILURE"
    assert sr.final_verdict("FAILURE", {"error": "leak"}) == "POST_FAILURE"
    assert sr.final_verdict("RETRY", {"error": "leak"}) == "RETRY"


def test_html_escapes_and_draws(sr):
    events = [
        _event("<b>evil</b>", "start", 0, 0, code={}),
        _event("<b>evil</b>", "end", 3, 4, code={"1:1": 2.0}),
    ]
    report = sr.build_report(events, verdict="SUCCESS", job="j<", build="b" * 32, label="shard-x")
    page = shard_report_page.render(report)
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    assert "<b>evil</b>" not in page and "&lt;b&gt;evil&lt;/b&gt;" in page
    assert page.count("<svg") == 1 and "</svg>" in page and "</html>" in page
    assert '<span class="verdict">SUCCESS</span>' in page and "<title>j&lt; bbbbbbbbbbbb" in page
    assert report["cpu"]["code_share"] == 0.5 and "<strong>50.0%</strong>" in page
    # One bar, split by the CPU groups, in the timeline; one row in the phases' table.
    assert page.count('fill="#2e7d32"/>') == 1 and page.count("<td>&lt;b&gt;evil") == 1
    # No snapshots at all: still a page.
    empty = sr.build_report([], verdict="FAILURE")
    assert "No CPU snapshots" in shard_report_page.render(empty)


HOSTILE = '<script>alert("x")</script>'


def test_html_escapes_hostile_names_everywhere(sr):
    """A process, phase or resource name is data, never markup: with autoescaping
    off, the template would print each of these as a live <script> element."""
    events = [
        _event(HOSTILE, "start", 0, 0, code={}),
        _event(HOSTILE, "mark", 1),
        _event(HOSTILE, "end", 3, 4, code={"1:1": 2.0}),
    ]
    report = sr.build_report(
        events,
        verdict=HOSTILE,
        job=HOSTILE,
        build=HOSTILE,
        label=HOSTILE,
        exercise={"server": HOSTILE, "landed_on": HOSTILE},
        upgrade={"from": HOSTILE},
        teardown={"error": HOSTILE, "found": {"servers": [{"id": HOSTILE, "name": HOSTILE}]}},
        generated=[HOSTILE],
    )
    page = shard_report_page.render(report)
    assert "<script" not in page
    assert page.count("&lt;script&gt;") >= 12
    # The page's own markup is not escaped.
    assert "<svg" in page and "<title>" in page and "<table>" in page


def test_the_rolling_upgrade_s_figures_are_kept_and_shown(sr):
    events = [_event("upgrade", "start", 0, 0, code={}), _event("upgrade", "end", 3, 4, code={})]
    rolling = {
        "shards": [
            {"label": "shard-0123456789ab", "index": 0, "downtime_seconds": 12.5, "survived": True},
            {"label": HOSTILE, "index": 1, "downtime_seconds": 9.1},
        ],
        "api": {"calls": 200, "ok": 197, "success_rate": 0.985},
        "servers": 2,
        "servers_survived": 1,
    }
    report = sr.build_report(
        events, verdict="FAILURE", job="j", label="shard-x", upgrade={"rolling": rolling, "x": 1}
    )
    assert report["upgrade"] == {"rolling": rolling}
    page = shard_report_page.render(report)
    assert "Rolling upgrade of 2 shards" in page
    assert "1 of 2 servers survived with their\nallocations" in page
    assert "the API answered 197 of\n200 calls\n(98.5%)" in page
    assert "<td>shard-0123456789ab</td>\n<td>12.5</td>\n<td>yes</td>" in page
    assert "<td>9.1</td>\n<td>no</td>" in page and "<script" not in page


def test_the_filter_renders_the_same_page_on_the_controller(sr):
    """The roles render the page through the shard role's filter, in Ansible's own
    templating: the same page, escaped once (not twice, not undone)."""
    events = [_event(HOSTILE, "start", 0, 0, code={}), _event(HOSTILE, "end", 3, 4, code={})]
    report = sr.build_report(events, verdict="SUCCESS", job=HOSTILE, label="shard-x")
    result = jinja("report | shard_report_html", report=report)
    assert result["msg"] == shard_report_page.render(report)


@pytest.fixture
def cmd(run_module):
    """cmd("sample", workspace=ws, phase="x", event="start") -> the module's result, less
    Ansible's bookkeeping (invocation)."""

    def run(command, **options):
        args = {k: str(v) if isinstance(v, os.PathLike) else v for k, v in options.items()}
        result = run_module(shard_report, dict(args, command=command))
        assert not result.get("failed"), result
        return {k: v for k, v in result.items() if k != "invocation"}

    return run


def test_commands_end_to_end(cmd, tmp_path, monkeypatch):
    ws = tmp_path / "shard-0123456789ab"
    out = ws / "zuul-logs"
    monkeypatch.setenv("SHARD_RUN_PID", str(os.getpid()))
    monkeypatch.delenv("SHARD_RUN_CLOUD_PIDS", raising=False)
    for phase in ("preflight", "build", "deploy", "label", "exercise"):
        for event in ("start", "end"):
            done = cmd("sample", workspace=ws, phase=phase, event=event)
            assert done == {"changed": False}
    lines = (ws / "phases.jsonl").read_text().splitlines()
    # The line reads as before CPU snapshots (molecule's checks look for this).
    assert '"phase": "label", "event": "end"' in lines[7]
    (ws / "result.json").write_text(json.dumps({"server": "s-1", "landed_on": "h"}))

    cmd("begin", workspace=ws, phase="teardown")
    teardown = {"found": {"servers": [], "flavors": [{"id": "f", "name": "n"}]}, "left": {}}
    done = cmd(
        "finish",
        workspace=ws,
        out=out,
        teardown=dict(teardown, error=None),
        success=True,
        job="shard-nova-compute",
        build="0123456789ab" * 2,
    )
    page = done.pop("report")
    assert done == {"changed": False, "written": True, "verdict": "SUCCESS"}
    report = json.loads((out / "report.json").read_text())
    # The result carries the report to the controller, less its events.
    assert page == {k: v for k, v in report.items() if k != "events"}
    assert report["job"] == "shard-nova-compute" and report["label"] == ws.name
    assert report["exercise"] == {"server": "s-1", "landed_on": "h"}
    times = json.loads((out / "phases.json").read_text())
    assert list(times) == ["preflight", "build", "deploy", "label", "exercise", "teardown"]
    assert all(t["seconds"] >= 0 for t in times.values())
    assert all(p["seconds"] is not None for p in report["phases"])
    assert report["teardown"] == {"state": "ok", "error": None}
    assert {c["kind"] for c in report["resources"]["deleted"]} == {"servers", "flavors"}
    assert report["cpu"]["groups"]["harness"]["seconds"] is not None
    assert report["cpu"]["groups"]["target_cloud"]["seconds"] is None
    assert len(report["generated"]) == 1
    assert json.loads((out / "teardown.json").read_text())["left"] == {}
    assert oct((out / "report.json").stat().st_mode & 0o777) == "0o600"
    assert "Teardown error" not in shard_report_page.render(page)

    # A teardown that failed makes it a post failure.
    done = cmd("finish", workspace=ws, out=out, teardown=dict(teardown, error="leak"), success=True)
    assert done["verdict"] == "POST_FAILURE"
    assert "Teardown error: leak" in shard_report_page.render(done["report"])


def test_finish_assembles_what_a_reviewer_needs_and_never_the_real_configuration(cmd, tmp_path):
    ws, out = tmp_path / "shard-0123456789ab", tmp_path / "shard-0123456789ab" / "zuul-logs"
    assert cmd("finish", workspace=ws, out=out, teardown={}) == {
        "changed": False,
        "written": False,
        "why": "no workspace",
    }
    assert not ws.exists()
    for rel, text in {
        "log/nova-compute.log": "started\nCaught SIGTERM, handling\n",
        "etc/nova/nova.conf": "password = real\n",
        "etc-masked/nova/nova.conf": "password = ****\n",
        "pip-freeze-venv.txt": "nova==34.0.0\n",
        "source-venv.txt": "abc123 A change\n",
        "result.json": "{}",
        "rolling/samples.jsonl": "{}\n",
        "rolling/summary.json": "{}",
        "rolling/servers.json": "[]",
        "clouds.yaml": "secret\n",
    }.items():
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(text)
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier attempt")
    cmd("begin", workspace=ws, phase="teardown")

    done = cmd("finish", workspace=ws, out=out, teardown={}, success=True)

    assert done["written"] is True and done["verdict"] == "SUCCESS"
    found = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert found == [
        "etc/nova/nova.conf",
        "nova-compute.log",
        "phases.json",
        "phases.jsonl",
        "pip-freeze-venv.txt",
        "report.json",
        "result.json",
        "rolling/samples.jsonl",
        "rolling/summary.json",
        "source-venv.txt",
        "teardown.json",
    ]
    assert (out / "etc" / "nova" / "nova.conf").read_text() == "password = ****\n"
    assert all(p.stat().st_mode & 0o077 == 0 for p in [out, *out.rglob("*")])
    # The copy of the record in the logs has the end of the teardown too.
    assert '"phase": "teardown", "event": "end"' in (out / "phases.jsonl").read_text()
    report = json.loads((out / "report.json").read_text())
    assert [p["name"] for p in report["phases"]] == ["teardown"]
    assert report["phases"][-1]["seconds"] is not None


def test_finish_after_a_cancelled_build(cmd, tmp_path):
    ws = tmp_path / "shard-0123456789ab"
    out = ws / "zuul-logs"
    # A build cancelled during deploy: the phase never ended.
    cmd("sample", workspace=ws, phase="deploy", event="start")
    cmd("begin", workspace=ws, phase="teardown")
    done = cmd("finish", workspace=ws, out=out, teardown={}, success=False)
    assert done.pop("report")["verdict"] == "FAILURE"
    assert done == {"changed": False, "written": True, "verdict": "FAILURE"}
    report = json.loads((out / "report.json").read_text())
    assert [p["name"] for p in report["phases"]] == ["deploy", "teardown"]
    assert report["phases"][0]["end"] is None
    # Without the job's result (outside Zuul's post-run), the verdict says so.
    assert cmd("finish", workspace=ws, out=out, teardown={})["verdict"] == "UNKNOWN"


def test_reached_reads_the_started_phases_even_from_a_cut_line(cmd, tmp_path):
    ws = tmp_path / "shard-0123456789ab"
    assert cmd("reached", workspace=ws) == {"changed": False, "recorded": False, "reached": []}
    cmd("sample", workspace=ws, phase="preflight", event="start")
    cmd("sample", workspace=ws, phase="preflight", event="end")
    assert cmd("reached", workspace=ws)["reached"] == ["preflight"]
    # A run killed while it wrote the deploy start: half a line, still a start.
    with open(ws / "phases.jsonl", "a") as f:
        f.write('{"phase": "deploy", "event": "start", "time": 17')
    assert cmd("reached", workspace=ws) == {
        "changed": False,
        "recorded": True,
        "reached": ["preflight", "deploy"],
    }


@pytest.mark.parametrize(
    ("success", "will_retry", "verdict"),
    [
        (None, False, "UNKNOWN"),
        (True, False, "SUCCESS"),
        (False, True, "RETRY"),
        (False, False, "FAILURE"),
    ],
)
def test_verdict_from_zuul_s_post_run_variables(success, will_retry, verdict):
    assert shard_report.verdict_of({"success": success, "will_retry": will_retry}) == verdict


def test_begin_looks_and_starts_in_one_run(cmd, tmp_path):
    ws = tmp_path / "shard-0123456789ab"
    client = tmp_path / "client-python"
    # No workspace: nothing recorded, nothing created, the looks still answer.
    done = cmd("begin", workspace=ws, phase="teardown", paths=[str(client)])
    assert done == {
        "changed": False,
        "recorded": False,
        "reached": [],
        "workspace_exists": False,
        "exists": {str(client): False},
        "started": False,
        "converged": False,
    }
    assert not ws.exists()
    cmd("sample", workspace=ws, phase="deploy", event="start")
    client.write_text("")
    done = cmd("begin", workspace=ws, phase="teardown", paths=[str(client)])
    # What the run reached before this start, then the start itself.
    assert done["reached"] == ["deploy"] and done["started"] is True
    assert done["exists"] == {str(client): True} and done["workspace_exists"] is True
    assert cmd("reached", workspace=ws)["reached"] == ["deploy", "teardown"]


def test_begin_records_no_start_once_the_step_converged(cmd, tmp_path):
    ws = tmp_path / "shard-0123456789ab"
    ws.mkdir()
    result = ws / "result.json"
    result.write_text("{}")
    done = cmd("begin", workspace=ws, phase="exercise", unless_exists=result)
    assert done["started"] is False and done["converged"] is True
    assert cmd("reached", workspace=ws) == {"changed": False, "recorded": False, "reached": []}
    result.unlink()
    done = cmd("begin", workspace=ws, phase="exercise", unless_exists=result)
    assert done["started"] is True and done["converged"] is False


def test_begin_in_check_mode_only_looks(run_module, tmp_path):
    ws = tmp_path / "shard-0123456789ab"
    ws.mkdir()
    done = run_module(
        shard_report,
        {"command": "begin", "workspace": str(ws), "phase": "teardown"},
        check_mode=True,
    )
    assert done["started"] is False and done["workspace_exists"] is True
    assert not (ws / "phases.jsonl").exists()


def test_begin_answers_under_the_path_the_task_gave(cmd, tmp_path, monkeypatch):
    # A site's shard_cache_dir may start with ~: the task looks its answer up
    # with the same unexpanded expression.
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "client").write_text("")
    done = cmd("begin", workspace=tmp_path / "ws", phase="teardown", paths=["~/client", "~/none"])
    assert done["exists"] == {"~/client": True, "~/none": False}


def test_begin_reads_what_the_run_reached_from_the_build_s_record(cmd, tmp_path):
    # A rolling upgrade's second shard, after a run that stopped in pre-run: its
    # own workspace never existed, the build's record says deploy never began.
    build, other = tmp_path / "shard-0123456789ab", tmp_path / "shard-0123456789ac"
    cmd("sample", workspace=build, phase="preflight", event="start")
    done = cmd("begin", workspace=other, record=build, phase="teardown")
    assert done["recorded"] is True and done["reached"] == ["preflight"]
    assert done["workspace_exists"] is False and not other.exists()
    # Without the build's record either: nothing tells, so teardown looks.
    assert cmd("begin", workspace=other, phase="teardown")["recorded"] is False
