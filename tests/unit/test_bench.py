"""./shard bench without running anything: statistics, tables, parsing, process counting."""

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from shard_jobs import bench_floor, cli, commands, paths, runner, settings, tool_venv
from shard_jobs.bench import launch, run_files, sampling, session, split, summary, table
from shard_jobs.rules import phases, waits


def test_format_table_aligns_columns():
    text = table.format_table(["variant", "wall s"], [["shard", "65.3"], ["from-scratch", "9.0"]])
    assert text.splitlines() == [
        "variant       wall s",
        "------------  ------",
        "shard           65.3",
        "from-scratch     9.0",
    ]


def _run(wall, cpu, ok=True, code=1.0, **kw):
    return dict(
        ok=ok,
        wall_s=wall,
        cpu_s=cpu,
        peak_mem_mib=100,
        openstack_processes=1,
        code_cpu_s=code,
        code_share=code / cpu if code else None,
        **kw,
    )


def test_summarize_takes_medians_of_the_runs_that_passed():
    runs = [_run(60, 100), _run(70, 120), _run(65, 90, code=None), _run(2, 3, ok=False)]
    s = summary.summarize(runs)
    assert s["runs"] == 4 and s["ok"] == 3
    assert s["wall_s"] == 65 and s["wall_s_range"] == [60, 70]
    assert s["cpu_s"] == 100
    # A run without a value does not count for that column.
    assert s["code_cpu_s"] == 1.0 and s["code_cpu_s_range"] == [1.0, 1.0]
    assert s["code_share"] == pytest.approx((0.01 + 1 / 120) / 2, abs=1e-4)
    # None passed: the numbers of those that ran.
    s = summary.summarize([_run(2, 3, ok=False), _run(4, 5, ok=False)])
    assert s["ok"] == 0 and s["wall_s"] == 3
    assert summary.median([]) is None


def test_ratios():
    medians = {
        "shard": {"wall_s": 60.0, "cpu_s": 100.0},
        "from-scratch-fresh": {"wall_s": 240.0, "cpu_s": 500.0},
        "from-scratch-preinstalled": {"wall_s": 120.0, "cpu_s": 400.0},
        "floor": {"wall_s": 15.0, "cpu_s": None},
        "shard-tempest": {"wall_s": 90.0, "cpu_s": 90.0},
        "from-scratch-tempest": {"wall_s": 300.0, "cpu_s": 450.0},
    }
    assert summary.ratios(medians) == {
        "shard/from-scratch-fresh": {"wall_s": 0.25, "cpu_s": 0.2},
        "shard/from-scratch-preinstalled": {"wall_s": 0.5, "cpu_s": 0.25},
        "shard/floor": {"wall_s": 4.0, "cpu_s": None},
        "shard-tempest/from-scratch-tempest": {"wall_s": 0.3, "cpu_s": 0.2},
    }
    # A variant that did not run has no ratio.
    assert summary.ratios({"shard": medians["shard"]})["shard-tempest/from-scratch-tempest"] == {
        "wall_s": None,
        "cpu_s": None,
    }


def test_overhead_against_the_floor():
    shard = [
        {"ok": True, "job_wall_s": 50.0, "phases": {"build": 5.0, "deploy": 8.0, "guard": 1.0}},
        {"ok": True, "job_wall_s": 70.0, "phases": {"build": 7.0, "deploy": 10.0, "guard": 1.0}},
        {"ok": False, "job_wall_s": 500.0, "phases": {"build": 99.0}},
    ]
    # The floor's clone of the source is no phase of the shard run: outside.
    floor = [{"floor_s": 12.0, "steps": {"source": 1.5, "build": 2.0, "deploy": 4.0}}]
    rows = {r["step"]: r for r in summary.overhead(shard, floor)}
    assert rows["build"] == {"step": "build", "shard_s": 6.0, "floor_s": 2.0, "beyond_floor_s": 4.0}
    assert rows["deploy"]["floor_s"] == 4.0 and rows["deploy"]["beyond_floor_s"] == 5.0
    # No counterpart in the floor.
    assert rows["guard"]["floor_s"] == 0.0 and rows["guard"]["beyond_floor_s"] == 1.0
    # Wall time in no phase (ansible-playbook starts, ./shard run's preparation).
    assert rows["outside the phases"]["shard_s"] == 60.0 - 6.0 - 9.0 - 1.0
    assert rows["outside the phases"]["floor_s"] == 12.0 - 2.0 - 4.0


# A repository of tasks, as TaskIndex reads one.
ROLE_TASKS = """
- name: Record the start of the phase
  ansible.builtin.include_role:
    name: shard
- name: Render the configuration
  ansible.builtin.import_tasks: render.yaml
- name: Say which {{ what }} it is
  ansible.builtin.set_fact:
    x: 1
- name: Check it
  ansible.builtin.assert:
    that: [true]
- name: Render the configuration
  ansible.builtin.template:
    src: a.j2
    dest: /x
- name: Copy on the node
  ansible.builtin.copy:
    src: /a
    dest: /b
    remote_src: true
- name: Wait for it
  shard_wait:
    x: 1
  register: waited
  until: waited is success
  retries: 5
- block:
    - name: Start every service
      ansible.builtin.command: "start {{ item }}"
      loop: [a, b, c]
  rescue:
    - name: Fail with the reason
      ansible.builtin.fail:
        msg: no
"""
PROFILE_TASKS = """
- name: Boot a server on the shard
  shard_server:
    name: x
"""
PLAYBOOK = """
- hosts: all
  tasks:
    - name: Build the "from" version
      ansible.builtin.include_role:
        name: shard_build
    - name: Record the last good
      ansible.builtin.copy:
        content: x
        dest: /y
"""


def _repo(tmp_path) -> Path:
    repo = tmp_path / "repo"
    (repo / "roles" / "shard_deploy" / "tasks").mkdir(parents=True)
    (repo / "roles" / "shard_deploy" / "tasks" / "main.yaml").write_text(ROLE_TASKS)
    profile = repo / "roles" / "shard" / "profiles" / "nova-compute"
    (profile / "tasks").mkdir(parents=True)
    (profile / "tasks" / "exercise.yaml").write_text(PROFILE_TASKS)
    # A profile's data is no task list.
    (profile / "profile.yaml").write_text("- name: Not a task\n  shard_server: {}\n")
    (repo / "playbooks").mkdir()
    (repo / "playbooks" / "run.yaml").write_text(PLAYBOOK)
    return repo


def _result(status, task, result, seconds=0.5):
    return f"{status}: [controller] {task} ({seconds}s)\n" + json.dumps(result, indent=2) + "\n"


# job-output.txt as our callback writes it; the module processes of each result.
JOB_OUTPUT = "".join(
    [
        _result("ok", "Gathering Facts", {"ansible_facts": {}}),  # setup: 1
        _result("ok", "shard_deploy : Validating arguments against arg spec 'main' - x", {}),  # 0
        _result("ok", "Record the start of the phase", {"include": "x"}),  # 0
        _result("ok", "shard_deploy : Say which nova-compute it is", {"ansible_facts": {}}),  # 0
        _result("ok", "shard_deploy : Check it", {"msg": "All assertions passed"}),  # 0
        _result("changed", "shard_deploy : Render the configuration", {"changed": True}),  # 2
        _result("changed", "shard_deploy : Copy on the node", {"changed": True}),  # 1
        _result("ok", "shard_deploy : Wait for it", {"attempts": 3}),  # 3
        _result(  # a loop: two items ran (a skipped one did not), one of them twice
            "changed",
            "shard_deploy : Start every service",
            {"results": [{"attempts": 2}, {"skipped": True}, {"censored": "x"}]},
        ),  # 3
        _result("failed", "shard_deploy : Fail with the reason", {"msg": "no"}),  # 0
        _result("changed", "shard_label : Boot a server on the shard", {"changed": True}),  # 1
        _result("ok", 'Build the "from" version', {}),  # 0
        _result("changed", "Record the last good", {"changed": True}),  # 2
        _result("ok", "shard_deploy : Something the tree no longer has", {}),  # unknown: 0
        "failed (ignored): [controller] shard_deploy : Check it (0.0s)\nnot json\n",  # 0
    ]
)
JOB_OUTPUT_PROCESSES = 1 + 2 + 1 + 3 + 3 + 1 + 2


def test_task_results_reads_each_result(tmp_path):
    log = tmp_path / "job-output.txt"
    log.write_text(JOB_OUTPUT)
    results = run_files.task_results(log)
    assert len(results) == 15
    assert results[0] == {
        "status": "ok",
        "task": "Gathering Facts",
        "host": "controller",
        "seconds": 0.5,
        "result": {"ansible_facts": {}},
    }
    assert results[8]["result"]["results"][1] == {"skipped": True}
    assert results[-1]["status"] == "failed (ignored)" and results[-1]["result"] == {}
    assert run_files.task_results(tmp_path / "missing") == []


def test_task_index_knows_what_each_task_runs(tmp_path):
    index = run_files.TaskIndex(_repo(tmp_path))
    # The template task, not the static import of the same name (no result of its own).
    assert index.processes("shard_deploy : Render the configuration") == 2
    assert index.processes("shard_deploy : Copy on the node") == 1
    assert index.processes("shard_deploy : Say which glance-api it is") == 0
    assert index.processes("shard_deploy : Start every service") == 1
    assert index.processes("shard_deploy : Fail with the reason") == 0
    # A profile's step, included by a life-cycle role; a play's own tasks.
    assert index.processes("shard_exercise : Boot a server on the shard") == 1
    assert index.processes("Record the last good") == 2
    assert index.processes('Build the "from" version') == 0
    assert index.processes("Gathering Facts") == 1
    assert index.processes("shard : Validating arguments against arg spec 'main' - y") == 0
    assert index.processes("shard_deploy : Not a task") is None


def test_a_task_name_means_one_thing_in_this_repository():
    # Counting goes by name: two tasks of one role with the same name must
    # start as many module processes (or be told apart by their names).
    index = run_files.TaskIndex()
    meanings = {}
    for role, pattern, processes in index.entries:
        meanings.setdefault((role, pattern.pattern), set()).add(processes)
    assert len(meanings) > 50
    assert {k: v for k, v in meanings.items() if len(v) > 1} == {}


def test_read_run_from_its_run_directory(tmp_path):
    build = "0123456789abcdef0123456789abcdef"
    logs = tmp_path / "runs" / build / "logs"
    (logs / "shard").mkdir(parents=True)
    (logs / "job-output.txt").write_text(JOB_OUTPUT)
    (logs / "summary.json").write_text(
        json.dumps(
            {
                "result": "SUCCESS",
                "playbooks": [{"rc": 0}, {"rc": 0}, {"rc": 0}],
                "phases": {"deploy": {"seconds": 99.0}},
            }
        )
    )
    (logs / "shard" / "report.json").write_text(
        json.dumps(
            {
                "verdict": "SUCCESS",
                "phases": [
                    {"name": "build", "seconds": 3.0},
                    {"name": "deploy", "seconds": 8.0},
                    {"name": "build", "seconds": 2.5},  # the upgrade job builds twice
                    {"name": "teardown", "seconds": None},  # never ended
                ],
                "cpu": {
                    "groups": {
                        "code_under_test": {"seconds": 2.2},
                        "target_cloud": {"seconds": 5.5},
                        # Not measured (Ansible on an executor): None, as the report says.
                        "harness": {"seconds": None},
                        "other": {"seconds": 36.3},
                    },
                    "machine": {"seconds": 44.0},
                    "code_share": 0.05,
                },
            }
        )
    )
    run = run_files.read_run(build, tmp_path / "runs", run_files.TaskIndex(_repo(tmp_path)))
    assert run["result"] == "SUCCESS" and run["verdict"] == "SUCCESS"
    assert run["code_cpu_s"] == 2.2 and run["report_code_share"] == 0.05
    assert run["report_cpu_s"] == 44.0
    assert (run["cloud_cpu_s"], run["harness_cpu_s"], run["other_cpu_s"]) == (5.5, None, 36.3)
    # The report's phases, not the summary's (written before teardown).
    assert run["phases"] == {"build": 5.5, "deploy": 8.0}
    assert run["playbooks"] == 3
    assert run["tasks"] == 15
    assert run["module_processes"] == JOB_OUTPUT_PROCESSES
    assert run["unknown_tasks"] == ["shard_deploy : Something the tree no longer has"]
    # A run that left nothing (it failed before writing anything).
    empty = run_files.read_run("f" * 32, tmp_path / "runs")
    assert empty["result"] is None and empty["tasks"] is None and empty["phases"] == {}


def test_a_shard_variant_reads_the_files_not_the_terminal(tmp_path):
    build = "0123456789abcdef0123456789abcdef"
    logs = tmp_path / "runs" / build / "logs"
    logs.mkdir(parents=True)
    (logs / "summary.json").write_text(json.dumps({"result": "FAILURE"}))
    (tmp_path / "terminal.out").write_text('{\n  "result": "SUCCESS"\n}\n')
    finished = {
        "rc": 0,
        "job": "shard-glance-api",
        "build": build,
        "job_wall_s": 9.0,
        "output": str(tmp_path / "terminal.out"),
    }
    run = launch.shard_run_result(finished, tmp_path / "runs")
    # Whatever the exit status and the terminal say: the run's own summary.
    assert run["ok"] is False and run["result"] == "FAILURE" and "rc" not in run
    assert run["job"] == "shard-glance-api" and run["job_wall_s"] == 9.0
    finished = dict(finished, rc=2, build="e" * 32)
    assert launch.shard_run_result(finished, tmp_path / "runs")["result"] == "exit 2"


def _bench_args(*argv):
    return cli.build_parser().parse_args(["bench", *argv])


def test_bench_settings_are_typed_once_from_the_command_line(tmp_path):
    assert settings.BenchSettings.from_args(_bench_args()) == settings.BenchSettings(
        variants=("from-scratch-fresh", "from-scratch-preinstalled", "shard", "floor"),
        repeat=3,
        scaling=(1, 2, 4, 8),
        out=None,
        json=False,
    )
    given = _bench_args(
        *["--only", "floor,shard", "--repeat", "1", "--scaling", "none"],
        *["--out", str(tmp_path / "b.json"), "--json"],
    )
    # The variants in the bench's own order, whatever --only's.
    assert settings.BenchSettings.from_args(given) == settings.BenchSettings(
        variants=("shard", "floor"), repeat=1, scaling=(), out=tmp_path / "b.json", json=True
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--scaling", "0,2", "--only", "nope"],
            "bench: bad --scaling '0,2': job counts from 1 to 16",
        ),
        (["--only", "from-scratch", "--repeat", "0"], "bench: bad --only from-scratch: now"),
        (["--repeat", "0"], "bench: --repeat must be at least 1"),
    ],
)
def test_bad_bench_input_is_one_line_and_starts_nothing(capsys, monkeypatch, argv, message):
    def started(*_args):
        raise AssertionError("a bench was started")

    monkeypatch.setattr(session.Bench, "__init__", started)
    assert commands.bench(_bench_args(*argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_the_session_runs_as_its_settings_say(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "HOME", tmp_path / "home")
    ran = []

    def variant(self, name, n):
        ran.append((name, n))
        return _run(10, 20)

    monkeypatch.setattr(session.Bench, "variant", variant)
    out = tmp_path / "out" / "bench.json"
    given = settings.BenchSettings(variants=("floor",), repeat=2, scaling=(), out=out, json=True)
    # floor asks for the default cloud first: already there.
    monkeypatch.setattr(session.subprocess, "run", lambda *a, **kw: SimpleNamespace(returncode=0))
    monkeypatch.setattr("shard_jobs.cloud.load_manifest", lambda _dir: {"secret_file": "s"})
    assert session.main(given) == 0
    assert ran == [("floor", 1), ("floor", 2)]
    result = json.loads(out.read_text())
    # --json: the result alone on standard output, as written to --out.
    assert json.loads(capsys.readouterr().out) == result
    assert result["variants"] == ["floor"] and result["repeat"] == 2
    assert result["summary"]["floor"]["runs"] == 2 and "scaling" in result


def test_parse_only():
    assert settings.parse_only(None) == [
        "from-scratch-fresh",
        "from-scratch-preinstalled",
        "shard",
        "floor",
    ]
    assert settings.parse_only("shard, shard-glance-api") == ["shard", "shard-glance-api"]
    with pytest.raises(settings.RunError, match="now from-scratch-preinstalled"):
        settings.parse_only("from-scratch")
    for bad in ("shard,nope", ""):
        with pytest.raises(settings.RunError, match="choose among"):
            settings.parse_only(bad)


# ---------------------------------------------------------------- the floor's build


class _Commands:
    """bench_floor's commands, recorded instead of run."""

    def __init__(self, monkeypatch, tmp_path, fail=None):
        self.calls = []
        self.tmp = tmp_path
        self.fail = fail
        monkeypatch.setattr(bench_floor, "_run", self.run)

    def run(self, cmd, what, env=None, cwd=None):
        cmd = [str(c) for c in cmd]
        self.calls.append((cmd, env))
        if self.fail and self.fail in what:
            raise bench_floor.FloorError(f"{what} failed (exit 1): boom")
        if cmd[1:3] == ["-m", "venv"]:
            Path(cmd[-1]).mkdir(parents=True)
        if cmd[1:2] == ["-c"] and "sys.version" in cmd[2]:
            return "3.11.7 (main)\n"
        if cmd[1:2] == ["-c"] and "purelib" in cmd[2]:
            site = self.tmp / "site" / Path(cmd[0]).parent.parent.name
            site.mkdir(parents=True, exist_ok=True)
            return f"{site}\n"
        return ""


def test_floor_build_is_the_jobs_build(monkeypatch, tmp_path):
    commands = _Commands(monkeypatch, tmp_path)
    bench_floor.build(tmp_path / "src", tmp_path / "deps", tmp_path / "venv", "/py/python3")
    cmds = [c for c, _env in commands.calls]
    # A virtualenv without pip, layered on the dependencies (the job's .pth)...
    assert cmds[0] == ["/py/python3", "-m", "venv", "--without-pip", str(tmp_path / "venv")]
    pth = tmp_path / "site" / "venv" / "_shard_layer.pth"
    assert pth.read_text() == f"{tmp_path / 'site' / 'deps'}\n"
    # ... and the project from its source, editable, without dependencies.
    install, env = commands.calls[-1]
    assert install == [
        str(tmp_path / "venv" / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-e",
        str(tmp_path / "src"),
    ]
    assert env["SKIP_GENERATE_AUTHORS"] == "1" and env["SKIP_WRITE_GIT_CHANGELOG"] == "1"


def test_floor_deps_made_once_per_requirements(monkeypatch, tmp_path):
    commands = _Commands(monkeypatch, tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    (src / "requirements.txt").write_text("oslo.config\n")
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("oslo.config==9.0.0\n")
    cache = tmp_path / "cache"
    deps = bench_floor.prepare_deps(src, constraints, cache, "/py/python3")
    assert deps.parent == cache and (deps / tool_venv.STAMP).exists()
    made = [c for c, _env in commands.calls if "-m" in c]
    pip = [str(deps / "bin" / "python"), "-m", "pip", "install", "-q", "-c", str(constraints)]
    assert made == [
        ["/py/python3", "-m", "venv", str(deps)],
        [*pip, "pip"],
        [*pip, "setuptools", "pbr", "-r", str(src / "requirements.txt")],
    ]
    # Made: the next build finds it (only the interpreter's version is asked).
    commands.calls.clear()
    assert bench_floor.prepare_deps(src, constraints, cache, "/py/python3") == deps
    assert all("sys.version" in c[2] for c, _env in commands.calls)
    # Other requirements: another one.
    (src / "requirements.txt").write_text("oslo.config\nrequests\n")
    assert bench_floor.prepare_deps(src, constraints, cache, "/py/python3") != deps


def test_floor_times_the_build_as_a_step(monkeypatch, tmp_path):
    commands = _Commands(monkeypatch, tmp_path)
    monkeypatch.setattr(bench_floor.openstack, "connect", lambda **_kw: object())
    monkeypatch.setattr(bench_floor, "prepare_deps", lambda *a, **kw: tmp_path / "deps")
    done = []
    for name in ("registered", "label_it", "exercise", "stop", "remove"):
        monkeypatch.setattr(
            bench_floor.Floor, name, lambda self, name=name: done.append(name) or self.label
        )

    def start(self):
        done.append("start")
        self.proc = SimpleNamespace(pid=4242)

    monkeypatch.setattr(bench_floor.Floor, "start", start)
    secret = {"cloud": {}}
    floor = bench_floor.Floor(secret, None, tmp_path / "w", 10, src=tmp_path / "nova")
    result = floor.run()
    assert result["ok"] and result["built"]
    assert list(result["steps"]) == ["source", "build", "deploy", "label", "exercise", "teardown"]
    # nova-compute runs from the build, built from the floor's own clone.
    assert floor.venv == tmp_path / "w" / floor.label / "venv"
    clone = [c for c, _env in commands.calls if c[:2] == ["git", "clone"]]
    assert clone[0][-2:] == [str(tmp_path / "nova"), str(tmp_path / "w" / floor.label / "src")]
    assert done == ["start", "registered", "label_it", "exercise", "stop", "remove"]
    # A failed build: no deploy, and teardown still runs.
    commands.fail, done[:] = "installing", []
    result = bench_floor.Floor(secret, None, tmp_path / "w", 10, src=tmp_path / "nova").run()
    assert not result["ok"] and "boom" in result["error"]
    assert "deploy" not in result["steps"] and done == ["stop", "remove"]


@pytest.mark.parametrize(
    "argv, program",
    [
        (["/venv/bin/python3", "/venv/bin/nova-compute", "--config-file", "x"], "nova-compute"),
        (["/venv/bin/keystone-manage", "bootstrap"], "keystone-manage"),
        (["/venv/bin/python", "/venv/bin/neutron-db-manage", "upgrade"], "neutron-db-manage"),
        (
            ["nova-conductor: master process [/venv/bin/nova-conductor --config-file x]"],
            "nova-conductor",
        ),
        (["gunicorn: worker [neutron]"], "neutron"),
        (["gunicorn: master [glance-api]" + " " * 40], "glance-api"),
        # A title padded with NULs, as psutil reads it; one padded with spaces,
        # which psutil splits at them.
        (["gunicorn: master [keystone]", "", ""], "keystone"),
        (["gunicorn:", "worker", "[placement]", "", ""], "placement"),
        (["nova-conductor:", "master", "process", "[/venv/bin/nova-conductor]"], "nova-conductor"),
        (["/venv/bin/python", "/venv/bin/gunicorn", "--name", "placement", "-b", "x"], "placement"),
        (["/venv/bin/python", "/venv/bin/gunicorn", "app:app"], None),
        (["/venv/bin/python", "-m", "pip", "install", "-e", "/src/openstack/nova"], None),
        (["/usr/bin/python3", "/root/.ansible/tmp/AnsiballZ_shard_process.py"], None),
        (["ansible-playbook: worker [nova]"], None),
        ([], None),
    ],
)
def test_openstack_program(argv, program):
    assert sampling.openstack_program(argv) == program


class _FakeProcess:
    """A process as psutil shows it: what the sampler asks of one."""

    def __init__(self, pid, ppid, argv, cwd="/", environ=None, start=None, rss=4096):
        self.pid = pid
        self.info = {"ppid": ppid, "create_time": start or 1000.0 + pid}
        self._argv, self._cwd, self._environ, self._rss = argv, cwd, environ or {}, rss

    def cmdline(self):
        return self._argv

    def cwd(self):
        return self._cwd

    def environ(self):
        return self._environ

    def memory_info(self):
        return SimpleNamespace(rss=self._rss)


class _FakeMachine:
    """psutil's view of the machine, for the sampler: its processes and memory."""

    def __init__(self, monkeypatch):
        self.processes = {}
        self.memory = SimpleNamespace(total=1000 * 1024, available=600 * 1024)
        monkeypatch.setattr(psutil, "process_iter", self.process_iter)
        monkeypatch.setattr(psutil, "virtual_memory", lambda: self.memory)

    def process_iter(self, attrs):
        assert set(attrs) == {"ppid", "create_time"}
        return iter(list(self.processes.values()))

    def add(self, pid, ppid, argv, **kw):
        self.processes[pid] = _FakeProcess(pid, ppid, argv, **kw)
        return self.processes[pid]


def test_sampler_counts_the_runs_openstack_processes(monkeypatch, tmp_path):
    machine = _FakeMachine(monkeypatch)
    # Running before: not started by the run.
    machine.add(10, 1, ["/venv/bin/nova-compute"], cwd=str(tmp_path))
    machine.add(5, 1, ["/venv/bin/python", "-m", "shard_jobs", "bench"])
    sampler = sampling.Sampler(["shard-0123456789ab"], root=5)
    # Started during the run: a daemon of the run's (its cwd names the run's label),
    # one with a worker (which counts with its master), one still below the bench
    # process (its launcher waits for it), one of someone else's, and a program
    # of the run that is not OpenStack.
    machine.add(20, 1, ["/venv/bin/nova-compute"], cwd=str(tmp_path / "shard-0123456789ab"))
    machine.add(30, 1, ["gunicorn: master [glance]   "], environ={"X": "/x/shard-0123456789ab"})
    machine.add(31, 30, ["gunicorn: worker [glance]   "])
    machine.add(35, 5, ["/usr/bin/python3", "AnsiballZ_shard_process.py"])
    machine.add(36, 35, ["gunicorn: master [keystone]   "])
    machine.add(40, 1, ["/venv/bin/nova-compute"], cwd=str(tmp_path / "shard-ffffffffffff"))
    machine.add(50, 5, ["/usr/bin/python3", "x.py"], cwd=str(tmp_path / "shard-0123456789ab"))
    # Gone, or not ours to read, between the listing and the question: not counted.
    gone = machine.add(70, 5, ["/venv/bin/nova-compute"])
    gone.cmdline = lambda: (_ for _ in ()).throw(psutil.NoSuchProcess(70))
    hidden = machine.add(71, 1, ["/venv/bin/nova-compute"])
    hidden.cwd = hidden.environ = lambda: (_ for _ in ()).throw(psutil.AccessDenied(71))
    machine.memory = SimpleNamespace(total=1000 * 1024, available=200 * 1024)
    sampler.sample()
    result = sampler.result()
    assert result["openstack_processes"] == 4
    assert result["openstack_programs"] == {"glance": 2, "keystone": 1, "nova-compute": 1}
    assert result["peak_mem_mib"] == round(400 * 1024 / 2**20)
    assert sampler.rss_peak == 4 * 4096
    # Seen once, counted once.
    sampler.sample()
    assert sampler.result()["openstack_processes"] == 4
    # A service that renamed itself and left its launcher: its pid file names it.
    machine.add(60, 1, ["gunicorn: master [placement]   "])
    machine.add(61, 60, ["gunicorn: worker [placement]   "])
    sampler.sample()
    assert sampler.result()["openstack_processes"] == 4
    sampler.adopt([60, 10, 999])  # 10 ran before: not the run's; 999 is gone
    assert sampler.result()["openstack_programs"]["placement"] == 2
    assert sampler.result()["openstack_processes"] == 6
    # A recycled pid is another process: 20 again, started later, is not the
    # run's, and its memory is not the run's (five of the six still run).
    machine.add(20, 1, ["/venv/bin/nova-compute"], start=5000.0)
    sampler.sample()
    assert sampler.result()["openstack_processes"] == 6 and sampler.rss_peak == 5 * 4096


def test_the_sampler_sees_real_processes_through_psutil(tmp_path):
    def nova_compute(*args):
        proc = subprocess.Popen(["bash", "-c", "exec -a nova-compute sleep 60", *args])
        for _ in range(100):  # until bash has exec'd
            with contextlib.suppress(psutil.Error):
                if psutil.Process(proc.pid).cmdline()[:1] == ["nova-compute"]:
                    return proc
            time.sleep(0.05)
        raise AssertionError("sleep did not start")

    before = nova_compute()
    try:
        sampler = sampling.Sampler(["no-scope"])
        during = nova_compute()
        try:
            sampler.sample()
        finally:
            during.kill()
            during.wait()
    finally:
        before.kill()
        before.wait()
    # The one started below this process while sampling; the other ran before.
    assert sampler.result()["openstack_programs"] == {"nova-compute": 1}
    assert sampler.rss_peak > 0


def test_machine_figures_keep_their_meaning():
    # Busy CPU: the phase sampler's rule over /proc/stat, read just before and after.
    low = phases.machine_seconds()[0]
    busy = sampling.machine_busy()
    high = phases.machine_seconds()[0]
    assert low - 1e-6 <= busy <= high + 1e-6
    # Memory in use: MemTotal - MemAvailable, within what moves between two reads.
    with open("/proc/meminfo") as f:
        info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    assert abs(sampling.memory_used() - (info["MemTotal"] - info["MemAvailable"])) < 2**26


def test_machine_busy_leaves_out_idle_and_iowait(tmp_path, monkeypatch):
    tck = phases.CLK_TCK
    (tmp_path / "stat").write_text(f"cpu  1 2 4 1000 500 8 16 32 {64 * tck} {128 * tck}\n")
    real = phases.machine_seconds
    monkeypatch.setattr(phases, "machine_seconds", lambda proc="/proc": real(str(tmp_path)))
    assert sampling.machine_busy() == pytest.approx(63 / tck)


def test_parse_scaling():
    assert settings.parse_scaling("1,2,4,8") == [1, 2, 4, 8]
    assert settings.parse_scaling("none") == [] and settings.parse_scaling("") == []
    for bad in ("a", "0,2", "100"):
        with pytest.raises(settings.RunError):
            settings.parse_scaling(bad)


def test_slowest_tasks(tmp_path):
    log = tmp_path / "job-output.txt"
    log.write_text(
        "ok: [controller] Gathering Facts (0.6s)\n{}\n"
        "changed: [controller] shard_teardown : Stop nova-compute (11.6s)\n"
        "skipping: [controller] shard : x (0.0s)\n"
        "ok: [controller] shard_exercise : Boot a server (2.9s)\n"
    )
    assert run_files.slowest_tasks(log, count=2) == [
        {"task": "shard_teardown : Stop nova-compute", "seconds": 11.6},
        {"task": "shard_exercise : Boot a server", "seconds": 2.9},
    ]
    assert run_files.slowest_tasks(tmp_path / "missing") == []


FLOOR_GROUPS = {"cloud_cpu_s": 3.0, "harness_cpu_s": 4.0, "other_cpu_s": 21.0}


def test_render_a_whole_result():
    runs = {
        "from-scratch-fresh": [_run(240, 500, code=2.0, tasks=120, module_processes=60)],
        "from-scratch-preinstalled": [_run(120, 300, code=2.0, tasks=110, module_processes=50)],
        "shard": [
            _run(60, 100, code=2.0, job_wall_s=58, phases={"deploy": 8.0}, tasks=151),
            _run(62, 104, code=2.0, job_wall_s=60, phases={"deploy": 8.0}, tasks=149),
        ],
        "floor": [
            _run(15, 30, code=2.0, floor_s=14, steps={"deploy": 4.0}, tasks=0, **FLOOR_GROUPS)
        ],
        # Measured the same way; no ratio.
        "shard-glance-api": [_run(50, 80, code=4.0, tasks=90, module_processes=40)],
    }
    runs["shard"][0]["module_processes"] = 106
    runs["shard"][1]["module_processes"] = 104
    # The report's groups, over its window (90 and 94 of the run's 100 and 104 CPU s).
    for run, (cloud, harness, other) in zip(runs["shard"], [(6, 70, 12), (8, 74, 10)], strict=True):
        run.update(cloud_cpu_s=cloud, harness_cpu_s=harness, other_cpu_s=other)
        run["report_cpu_s"] = 2.0 + cloud + harness + other
    runs["floor"][0]["module_processes"] = 0
    result = {
        "started": "20260101T000000Z",
        "machine": {"cpus": 2, "cpu_model": "Test CPU", "mem_gib": 24, "os": "Debian"},
        "repeat": 2,
        "variants": list(runs),
        "runs": runs,
        "summary": {v: summary.summarize(r) for v, r in runs.items()},
        "scaling": [{"jobs": 2, "wall_s": 90.0, "job_wall_s": 85.0, "cpu_s": 180.0, "failures": 0}],
        "floor_build": {"package": "nova", "version": "34.0.0"},
    }
    result["ratios"] = summary.ratios(result["summary"])
    result["overhead"] = summary.overhead(runs["shard"], runs["floor"])
    result["notes"] = summary.notes(result)
    text = table.render(result)
    assert "2 CPUs (Test CPU), 24 GiB, Debian; repeat 2, medians" in text
    lines = text.splitlines()
    header = lines[1].split("  ")
    assert [h.strip() for h in header if h.strip()][-6:] == [
        "cloud CPU s",
        "harness CPU s",
        "other CPU s",
        "tasks",
        "module procs",
        "ok",
    ]

    def row(name):
        return next(line for line in lines[1:] if line.split()[:1] == [name]).split()

    # Medians of two runs: 150 tasks, 105 module processes; the report's groups.
    assert row("shard") == [
        "shard",
        "61.0",
        "102.0",
        "100",
        "1",
        "2.0",
        "2.0%",
        "7.0",
        "72.0",
        "11.0",
        "150",
        "105",
        "2/2",
    ]
    assert row("floor")[-6:] == ["3.0", "4.0", "21.0", "0", "0", "1/1"]
    # Not measured: dashes.
    assert row("from-scratch-fresh")[-6:] == ["-", "-", "-", "120", "60", "1/1"]
    assert any(
        "shard: code, cloud, harness and other CPU s are its report.json's" in line
        and "92.0 of the run's 102.0 CPU s" in line
        for line in lines
    )
    assert not any(line.startswith("note: floor: code, cloud") for line in lines)
    assert row("shard-glance-api")[:3] == ["shard-glance-api", "50.0", "80.0"]
    assert row("shard/from-scratch-fresh") == ["shard/from-scratch-fresh", "0.25", "0.20"]
    assert row("shard/from-scratch-preinstalled") == [
        "shard/from-scratch-preinstalled",
        "0.51",
        "0.34",
    ]
    assert row("shard/floor") == ["shard/floor", "4.07", "3.40"]
    assert not any(line.startswith("shard-glance-api/") for line in lines)
    # 180 CPU s take 90 s at least on 2 CPUs: the jobs waited for the CPUs.
    assert row("2") == ["2", "90.0", "85.0", "180.0", "90.0", "90.0", "0"]
    assert any(line.split()[-2:] == ["CPUs", "failures"] for line in lines)
    assert row("deploy") == ["deploy", "8.0", "4.0", "4.0"]
    assert any("floor: bench_floor.py" in line and "nova 34.0.0" in line for line in lines)
    json.dumps(result)  # what is written as JSON


def test_render_without_counts_says_so():
    runs = {"shard": [_run(60, 100, code=None)]}
    result = {
        "started": "x",
        "machine": {"cpus": 2, "cpu_model": "C", "mem_gib": 1, "os": "D"},
        "repeat": 1,
        "variants": ["shard"],
        "runs": runs,
        "summary": {"shard": summary.summarize(runs["shard"])},
    }
    result["ratios"] = summary.ratios(result["summary"])
    lines = table.render(result).splitlines()[1:]
    shard = next(line for line in lines if line.startswith("shard "))
    # No code CPU, no share, no groups, no counts: dashes, not "-%" or 0.
    assert shard.split()[5:] == ["-", "-", "-", "-", "-", "-", "-", "1/1"]
    assert not any("lower bound" in line for line in lines)
    # A task the tree no longer has: the count is a lower bound, and says so.
    runs["shard"][0].update(tasks=3, module_processes=1, unknown_tasks=["shard : Old name"])
    result["summary"] = {"shard": summary.summarize(runs["shard"])}
    result["notes"] = summary.notes(result)
    text = table.render(result)
    assert "module procs is a lower bound: 1 task(s)" in text and "'shard : Old name'" in text


def test_wait_jobs_notes_when_each_ended():
    import subprocess
    import time

    jobs = [
        {"proc": subprocess.Popen(["sleep", seconds]), "start": time.monotonic()}
        for seconds in ("1.5", "0.05")
    ]
    launch.wait_jobs(jobs)
    slow, fast = (job["end"] - job["start"] for job in jobs)
    assert fast < slow


def test_service_pids_are_read_through_the_one_pid_record_reader(tmp_path):
    from shard_jobs.rules import processes

    processes.write_record(str(tmp_path / "keystone.pid"), {"pid": 4242, "start_time": 7})
    Path(processes.record_path(str(tmp_path / "broken.pid"))).write_text('{"pid": "garbage"')
    manifest = {
        "services": [
            {"pidfile": str(tmp_path / "keystone.pid")},
            {"pidfile": str(tmp_path / "broken.pid")},
            {"pidfile": str(tmp_path / "never-started.pid")},
        ]
    }
    assert launch.service_pids(manifest) == [4242]
    # No cloud (its up failed): nothing to split the CPU of.
    assert launch.cloud_pids(None) is None


# ---------------------------------------------------------------- CPU by process group


def test_bench_groups_split_a_run_the_bench_measured_itself():
    run = {"cpu_s": 30.0, "code_cpu_s": 2.0}
    # Its own processes (bench_floor.py, git, pip and the nova-compute it waited
    # for): the harness is them less the code under test.
    groups = sampling.bench_groups(run, own_s=9.0, cloud_s=4.5)
    assert groups == {"cloud_cpu_s": 4.5, "harness_cpu_s": 7.0, "other_cpu_s": 16.5}
    # No cloud measured: a dash in the table, and the rest is other.
    groups = sampling.bench_groups(run, own_s=9.0, cloud_s=None)
    assert groups["cloud_cpu_s"] is None and groups["other_cpu_s"] == 21.0
    # nova-compute never ran: the harness is all of its own processes.
    assert sampling.bench_groups({"cpu_s": 5.0}, 3.0, 1.0)["harness_cpu_s"] == 3.0
    # Never below zero (the counters are read a few milliseconds apart).
    assert sampling.bench_groups({"cpu_s": 1.0, "code_cpu_s": 2.0}, 1.5, 1.0) == {
        "cloud_cpu_s": 1.0,
        "harness_cpu_s": 0.0,
        "other_cpu_s": 0.0,
    }


def test_tree_cpu_counts_a_cloud_from_the_start_of_the_window():
    tck = phases.CLK_TCK
    # pid: (ppid, start, own ticks, children's ticks), as phases.read_procs.
    before = {
        10: (1, 100, 50 * tck, 5 * tck),  # a service already running
        11: (10, 101, 20 * tck, 0),  # its worker
        30: (1, 300, 7 * tck, 0),  # a pid that will be recycled
        99: (1, 900, 1000 * tck, 0),  # not the cloud's
    }
    after = {
        10: (1, 100, 52 * tck, 6 * tck),
        11: (10, 101, 23 * tck, 0),
        12: (10, 500, 4 * tck, 0),  # a new worker: all of it
        30: (1, 700, 1 * tck, 0),  # another process under the old pid: all of it
        99: (1, 900, 2000 * tck, 0),
    }
    assert sampling.tree_cpu(before, after, [10, 30]) == 3 + 3 + 4 + 1
    assert sampling.tree_cpu(before, after, []) == 0.0


def test_measure_splits_the_machine_cpu_with_a_cloud(tmp_path):
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"

    def work(_sampler):
        # A child that burns 0.3 CPU-s and is waited for: the run's own.
        subprocess.run([sys.executable, "-c", burn], check=True)
        return {"ok": True, "code_cpu_s": 0.05}

    out = sampling.measure(["no-scope"], work, cloud=lambda: [])
    assert out["harness_cpu_s"] >= 0.25 - 0.05
    assert out["cloud_cpu_s"] == 0.0

    # A cloud process that burns 0.3 CPU-s during the run (then idles): the cloud's.
    marker = tmp_path / "burnt"
    cloud = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sys\nsys.stdin.readline()\n{burn}"
            f"open({str(marker)!r}, 'w').close()\nimport time\ntime.sleep(60)\n",
        ],
        stdin=subprocess.PIPE,
        text=True,
    )

    def cloud_work(_sampler):
        cloud.stdin.write("go\n")
        cloud.stdin.flush()
        waits.wait_until(marker.exists, 30, interval=0.05)
        return {"ok": True, "code_cpu_s": 0.0}

    try:
        out = sampling.measure(["no-scope"], cloud_work, cloud=lambda: [cloud.pid])
    finally:
        cloud.kill()
        cloud.wait()
    assert out["cloud_cpu_s"] >= 0.25 and out["harness_cpu_s"] < 0.25
    # Without a cloud, the bench does not split (a shard run's report does).
    out = sampling.measure(["no-scope"], lambda _s: {"ok": True})
    assert "harness_cpu_s" not in out and "cloud_cpu_s" not in out


def test_summarize_takes_medians_of_the_groups():
    runs = [
        _run(60, 100, cloud_cpu_s=6.0, harness_cpu_s=70.0, other_cpu_s=12.0),
        _run(62, 104, cloud_cpu_s=8.0, harness_cpu_s=74.0, other_cpu_s=None),
    ]
    s = summary.summarize(runs)
    assert (s["cloud_cpu_s"], s["harness_cpu_s"], s["other_cpu_s"]) == (7.0, 72.0, 12.0)
    assert s["harness_cpu_s_range"] == [70.0, 74.0]
    assert summary.summarize([_run(1, 2)])["cloud_cpu_s"] is None


# ---------------------------------------------------------------- --split

NODE = "/usr/bin/python3"
CLIENT = "/root/.shard-jobs/cache/openstack-client-0123456789abcdef/bin/python"
PLAYBOOK_ARGV = ["/w/.venv/bin/python", "/w/.venv/bin/ansible-playbook", "-i", "inv", "run.yaml"]
SHELLS = (["/bin/sh", "-c", "/bin/sh -c '/usr/bin/python3 && sleep 0'"], ["/bin/sh", "-c", "x"])


def _tree_records():
    """A shard run's process tree as TreeSampler records it, and what each is."""
    records, expected = [], {}

    def add(pid, parent, argv, group, cpu=0.1):
        records.append(
            {"pid": pid, "start": 1000.0 + pid, "ppid": parent or 1, "argv": argv, "cpu_s": cpu}
        )
        records[-1]["parent"] = [parent, 1000.0 + parent] if parent else None
        expected[pid] = group

    # ./shard before it execs the tool virtualenv's python, then after: the CLI.
    add(100, None, ["/w/.venv/bin/python", "-m", "shard_jobs", "run", "shard-nova-compute"], "cli")
    add(99, None, [NODE, "/w/shard", "run", "shard-nova-compute"], "cli")
    # The source tree, as the merger makes it: git and its helpers.
    add(101, 100, ["git", "clone", "-q", "/src/nova", "/ws/src"], "build")
    add(102, 101, ["/usr/lib/git-core/git-remote-https", "origin"], "build")
    add(103, 101, ["/bin/sh", "-c", "ssh x"], "build")
    # Two playbooks, each with its workers (forks: the same command line).
    add(110, 100, PLAYBOOK_ARGV, "ansible_playbook", cpu=3.0)
    add(111, 110, PLAYBOOK_ARGV, "ansible_workers", cpu=0.5)
    add(112, 110, PLAYBOOK_ARGV, "ansible_workers", cpu=0.5)
    add(160, 100, PLAYBOOK_ARGV, "ansible_playbook", cpu=1.0)
    # A fork only seen once it had exited (a zombie's command line is empty).
    add(161, 160, [], "ansible_workers", cpu=0.0)
    # A module on the node's python, through a worker's two shells, and the
    # command it runs.
    add(113, 111, SHELLS[0], "ansible_workers", cpu=0.0)
    add(114, 113, SHELLS[1], "ansible_workers", cpu=0.0)
    add(115, 114, [NODE], "modules_node_python", cpu=0.2)
    add(116, 115, ["sleep", "0.3"], "modules_node_python", cpu=0.0)
    # A cloud task's module, on the OpenStack client's python.
    add(119, 112, SHELLS[1], "ansible_workers", cpu=0.0)
    add(120, 119, [CLIENT], "modules_client_python", cpu=0.7)
    # The build a module runs: a virtualenv, pip and pip's build backend.
    add(129, 115, [NODE, "-m", "venv", "--without-pip", "/ws/venv"], "build")
    add(130, 115, ["/ws/venv/bin/python", "-m", "pip", "install", "-e", "/src/nova"], "build")
    add(131, 130, ["/ws/venv/bin/python", "/x/pip/_in_process.py", "build_editable"], "build")
    add(132, 115, ["/ws/venv/bin/pip3.11", "list"], "build")
    # The service the job started, and what it runs.
    add(
        140,
        115,
        ["/ws/venv/bin/python", "/ws/venv/bin/nova-compute", "--config-file", "c"],
        "code_under_test",
        cpu=2.5,
    )
    add(141, 140, ["/ws/venv/bin/privsep-helper", "--config-file", "c"], "code_under_test")
    # Its parent was never seen: nothing says whose it is.
    add(150, None, ["/usr/bin/rsync", "-a", "x", "y"], "other")
    add(151, 150, ["/bin/sh", "-c", "y"], "other")
    return records, expected


def test_classify_says_what_each_process_of_a_run_is():
    records, expected = _tree_records()
    by_key = {(r["pid"], r["start"]): r for r in records}
    groups = split.classify(by_key, python=NODE)
    assert {pid: groups[(pid, start)] for pid, start in groups} == expected
    # The node's python is the one ./shard run gives the modules: another
    # interpreter is no module process, but what its parent is.
    assert split.classify(by_key, python="/opt/python3")[(115, 1115.0)] == "ansible_workers"
    assert split.node_python() == runner.NODE_PYTHON
    # Every group the table shows is one classify gives.
    assert set(expected.values()) == set(split.GROUPS)


def test_classify_follows_parents_in_any_order_and_stops_on_a_loop():
    records = {
        (3, 0.0): {"argv": ["sleep", "1"], "parent": [2, 0.0]},
        (2, 0.0): {"argv": [NODE], "parent": [1, 0.0]},
        (1, 0.0): {"argv": ["/bin/sh"], "parent": None},
        # A parent that is its own descendant (a recycled pid in a bad read).
        (7, 0.0): {"argv": ["sh"], "parent": [8, 0.0]},
        (8, 0.0): {"argv": ["sh"], "parent": [7, 0.0]},
    }
    groups = split.classify(records, python=NODE)
    assert groups[(3, 0.0)] == groups[(2, 0.0)] == "modules_node_python"
    assert groups[(1, 0.0)] == groups[(7, 0.0)] == groups[(8, 0.0)] == "other"


def test_split_adds_up_the_groups_against_the_machine():
    records, _ = _tree_records()
    out = split.split(records, machine_cpu_s=20.0, python=NODE)
    rows = {g["group"]: g for g in out["groups"]}
    assert list(rows) == list(split.GROUPS)
    assert rows["ansible_playbook"] == {
        "group": "ansible_playbook",
        "label": "ansible-playbook (main process)",
        "processes": 2,
        "cpu_s": 4.0,
        "share": 0.2,
    }
    assert rows["ansible_workers"]["processes"] == 6 and rows["ansible_workers"]["cpu_s"] == 1.0
    assert rows["code_under_test"]["cpu_s"] == 2.6
    assert out["sampled_cpu_s"] == round(sum(r["cpu_s"] for r in records), 2)
    assert out["sampled_share"] == round(out["sampled_cpu_s"] / 20.0, 4)
    assert out["processes"][0] == {
        "pid": 110,
        "ppid": 100,
        "group": "ansible_playbook",
        "cpu_s": 3.0,
        "program": "python ansible-playbook",
    }
    assert len(out["processes"]) == len(records)
    # No machine figure: no share.
    assert split.split(records, None, python=NODE)["groups"][0]["share"] is None


def test_tree_sampler_follows_a_run_and_the_daemons_it_leaves(tmp_path):
    pidfile = tmp_path / "daemon.pid"
    launcher = (
        "import subprocess, sys, time\n"
        "t = time.process_time()\n"
        "while time.process_time() - t < 0.2: pass\n"
        "d = subprocess.Popen(['sleep', '30'], start_new_session=True)\n"
        f"open({str(pidfile)!r}, 'w').write(str(d.pid))\n"
        "time.sleep(0.2)\n"
    )
    daemon = None
    try:
        with sampling.TreeSampler(["no-scope"]) as sampler:
            subprocess.run([sys.executable, "-c", launcher], check=True)
            ended = time.time()
            daemon = int(pidfile.read_text())
            time.sleep(0.2)  # walks after its launcher left it to init
        tree = sampler.result()["tree"]
    finally:
        if daemon:
            os.kill(daemon, 9)
    assert tree["interval_s"] == sampling.SPLIT_INTERVAL and tree["walks"] > 10
    assert 0 < tree["sampler_cpu_s"] < 1.0
    records = {r["pid"]: r for r in tree["processes"]}
    assert os.getpid() not in records  # the bench's own process (the sampler's CPU)
    (launched,) = [r for r in records.values() if r["argv"][1:2] == ["-c"]]
    assert launched["argv"][0] == sys.executable and launched["parent"] is None
    assert 0.15 <= launched["cpu_s"] < 1.0
    # The daemon: its launcher as parent, still walked after the launcher ended.
    assert records[daemon]["argv"] == ["sleep", "30"]
    assert records[daemon]["parent"] == [launched["pid"], launched["start"]]
    assert records[daemon]["last"] > ended + 0.1
    # The Sampler's own figures are still sampled.
    assert "peak_mem_mib" in sampler.result()


def test_render_split():
    records, _ = _tree_records()
    result = {
        "job": "shard-nova-compute",
        "ok": True,
        "result": "SUCCESS",
        "wall_s": 40.0,
        "cpu_s": 20.0,
        "interval_s": 0.025,
        "walks": 1600,
        "sampler_cpu_s": 1.25,
        "module_processes": 27,
        "report_groups": {"code": 2.5, "cloud": 4.0, "harness": 9.0, "other": 2.0, "report": 17.5},
        **split.split(records, 20.0, python=NODE),
    }
    lines = table.render_split(result)
    assert "one more ./shard run shard-nova-compute (not in the medians)" in lines[0]
    assert "every 25 ms" in lines[0] and "machine CPU 20.0s" in lines[0]
    rows = lines[1].splitlines()
    assert rows[0].split() == ["group", "processes", "CPU", "s", "share"]
    assert rows[2].split()[-3:] == ["2", "4.00", "20.0%"]
    assert rows[-1].split() == ["sampled,", "in", "all", str(len(records)), "9.60", "48.0%"]
    notes = " ".join(lines[2:])
    assert "shorter than the sampling interval (25 ms) is missed" in notes
    assert (
        "the sampler's own CPU (1.25 s for 1600 walks, in the bench's process) is outside the "
        "run's groups" in notes
    )
    assert "harness 9.0" in notes and "module processes by its log: 27" in notes
    json.dumps(result)


def test_split_is_asked_for_on_the_command_line(capsys):
    given = settings.BenchSettings.from_args(_bench_args("--split", "--only", "shard"))
    assert given.split is True and given.variants == ("shard",)
    assert settings.BenchSettings.from_args(_bench_args()).split is False
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--split" in text
    assert f"sampled every {round(sampling.SPLIT_INTERVAL * 1000)} ms" in text


def test_the_session_splits_one_more_shard_run_after_the_medians(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "HOME", tmp_path / "home")
    ran = []
    records, _ = _tree_records()

    def variant(self, name, n):
        ran.append(name)
        return _run(10, 20)

    def one_more(self):
        ran.append("split")
        return {
            "job": "shard-nova-compute",
            "ok": True,
            "result": "SUCCESS",
            "wall_s": 40.0,
            "cpu_s": 20.0,
            "interval_s": 0.025,
            "report_groups": {},
            **split.split(records, 20.0, python=NODE),
        }

    def scale(self, jobs):
        ran.append(f"scale {jobs}")
        return {"jobs": jobs, "wall_s": 1.0, "job_wall_s": 1.0, "cpu_s": 1.0, "failures": 0}

    monkeypatch.setattr(session.Bench, "variant", variant)
    monkeypatch.setattr(session.Bench, "split", one_more)
    monkeypatch.setattr(session.Bench, "scale", scale)
    # The split run needs the default cloud, whatever the variants.
    ups = []
    monkeypatch.setattr(
        session.subprocess, "run", lambda *a, **kw: ups.append(a) or SimpleNamespace(returncode=0)
    )
    monkeypatch.setattr("shard_jobs.cloud.load_manifest", lambda _dir: {"secret_file": "s"})
    out = tmp_path / "bench.json"
    given = settings.BenchSettings(
        variants=("from-scratch-fresh",), repeat=2, scaling=(2,), out=out, split=True
    )
    assert session.main(given) == 0
    assert ran == ["from-scratch-fresh", "from-scratch-fresh", "split", "scale 2"]
    assert len(ups) == 1
    result = json.loads(out.read_text())
    assert result["split"]["groups"][0]["group"] == "ansible_playbook"
    # Not one of the medians' runs.
    assert result["summary"]["from-scratch-fresh"]["runs"] == 2
    assert "where a shard run's harness CPU goes" in capsys.readouterr().out


def test_the_floor_names_the_cloud_whose_cpu_it_splits(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "HOME", tmp_path / "home")
    bench = session.Bench(settings.BenchSettings(variants=("floor",), repeat=1, scaling=()))
    bench.default_manifest = {"secret_file": "s", "services": []}
    bench._floor_build = {"src": "/src"}
    given = {}

    def measure(scopes, func, **kw):
        given.update(kw)
        return {"ok": True}

    monkeypatch.setattr(session, "measure", measure)
    monkeypatch.setattr(session, "cloud_pids", lambda manifest: ["pids of", manifest])
    bench.floor(1)
    assert given["cloud"]() == ["pids of", bench.default_manifest]


def test_one_table_of_parents_with_or_without_psutils_own(monkeypatch):
    assert sampling._parents()[os.getpid()] == os.getppid()
    monkeypatch.delattr(psutil._psplatform, "ppid_map")
    assert sampling._parents()[os.getpid()] == os.getppid()


def test_the_split_keeps_programs_never_their_arguments():
    assert split.program(["/usr/bin/mysql", "-u", "root", "-pS3cret"]) == "mysql"
    assert split.program(["/v/bin/python3", "-m", "pip", "install", "https://u:pw@x/p"]) == (
        "python3 -m pip"
    )
    assert split.program(["python3", "/v/bin/nova-compute", "--config-file", "c"]) == (
        "python3 nova-compute"
    )
    assert split.program(["git", "clone", "https://user:token@example.org/r"]) == "git"
    assert split.program([]) == ""
