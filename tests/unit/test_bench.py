"""./shard bench without running anything: statistics, tables, parsing, process counting."""

import json

import pytest

from shard_jobs import bench


def test_format_table_aligns_columns():
    text = bench.format_table(["variant", "wall s"], [["shard", "65.3"], ["from-scratch", "9.0"]])
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
    s = bench.summarize(runs)
    assert s["runs"] == 4 and s["ok"] == 3
    assert s["wall_s"] == 65 and s["wall_s_range"] == [60, 70]
    assert s["cpu_s"] == 100
    # A run without a value does not count for that column.
    assert s["code_cpu_s"] == 1.0 and s["code_cpu_s_range"] == [1.0, 1.0]
    assert s["code_share"] == pytest.approx((0.01 + 1 / 120) / 2, abs=1e-4)
    # None passed: the numbers of those that ran.
    s = bench.summarize([_run(2, 3, ok=False), _run(4, 5, ok=False)])
    assert s["ok"] == 0 and s["wall_s"] == 3
    assert bench.median([]) is None


def test_ratios():
    summary = {
        "shard": {"wall_s": 60.0, "cpu_s": 100.0},
        "from-scratch": {"wall_s": 120.0, "cpu_s": 400.0},
        "floor": {"wall_s": 15.0, "cpu_s": None},
    }
    assert bench.ratios(summary) == {
        "shard/from-scratch": {"wall_s": 0.5, "cpu_s": 0.25},
        "shard/floor": {"wall_s": 4.0, "cpu_s": None},
    }


PROGRESS = """cloud up: 7 services running, nothing to change (0.2s)
pre-run  pre-run                  ok                1.1s
pre-run  shard_preflight          changed (3)       3.8s
pre-run  shard_build              failed (rc 2)    29.3s
run      shard                    ok                0.5s
run      shard_deploy             changed (6)       9.0s
post-run shard                    ok                0.4s
post-run shard_teardown           changed (6)      23.1s

shard-nova-compute build 9057f0a44084: SUCCESS
  pre-run   playbooks/shard/pre-run.yaml         ok                  35.7s
"""


def test_role_seconds_from_progress_lines():
    assert bench.role_seconds(PROGRESS) == {
        "pre-run": 1.1,
        "shard_preflight": 3.8,
        "shard_build": 29.3,
        "shard": 0.9,
        "shard_deploy": 9.0,
        "shard_teardown": 23.1,
    }


def test_overhead_against_the_floor():
    shard = [
        {"ok": True, "job_wall_s": 50.0, "roles": {"shard_build": 5.0, "shard_deploy": 8.0}},
        {"ok": True, "job_wall_s": 70.0, "roles": {"shard_build": 7.0, "shard_deploy": 10.0}},
        {"ok": False, "job_wall_s": 500.0, "roles": {"shard_build": 99.0}},
    ]
    floor = [{"floor_s": 10.0, "steps": {"deploy": 4.0, "teardown": 5.0}}]
    rows = {r["step"]: r for r in bench.overhead(shard, floor)}
    assert rows["shard_build"] == {
        "step": "shard_build",
        "shard_s": 6.0,
        "floor_s": 0.0,
        "beyond_floor_s": 6.0,
    }
    assert rows["shard_deploy"]["floor_s"] == 4.0 and rows["shard_deploy"]["beyond_floor_s"] == 5.0
    # Wall time not in any role (ansible-playbook starts, ./shard run's preparation).
    assert rows["outside the roles"]["shard_s"] == 60.0 - 6.0 - 9.0
    assert rows["outside the roles"]["floor_s"] == 1.0


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
        (["/venv/bin/python", "/venv/bin/gunicorn", "--name", "placement", "-b", "x"], "placement"),
        (["/venv/bin/python", "/venv/bin/gunicorn", "app:app"], None),
        (["/venv/bin/python", "-m", "pip", "install", "-e", "/src/openstack/nova"], None),
        (["/usr/bin/python3", "/root/.ansible/tmp/AnsiballZ_shard_process.py"], None),
        (["ansible-playbook: worker [nova]"], None),
        ([], None),
    ],
)
def test_openstack_program(argv, program):
    assert bench.openstack_program(argv) == program


def _proc(tmp_path):
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "meminfo").write_text("MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\n")
    return proc


def _process(proc, pid, ppid, argv, cwd="/", environ=b"", start=None):
    d = proc / str(pid)
    d.mkdir()
    fields = ["S", ppid] + [0] * 17 + [start or 1000 + pid]
    (d / "stat").write_text(f"{pid} (x) " + " ".join(map(str, fields)) + "\n")
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (d / "environ").write_bytes(environ)
    (d / "statm").write_text("100 10 0 0 0 0 0\n")
    (d / "cwd").symlink_to(cwd)


def test_sampler_counts_the_runs_openstack_processes(tmp_path):
    proc = _proc(tmp_path)
    # Running before: not started by the run.
    _process(proc, 10, 1, ["/venv/bin/nova-compute"], cwd=str(tmp_path))
    _process(proc, 5, 1, ["/venv/bin/python", "-m", "shard_jobs", "bench"])
    sampler = bench.Sampler(["shard-0123456789ab"], root=5, proc=str(proc))
    # Started during the run: a daemon of the run's (its cwd names the run's label),
    # one with a worker (which counts with its master), one still below the bench
    # process (its launcher waits for it), one of someone else's, and a program
    # of the run that is not OpenStack.
    _process(proc, 20, 1, ["/venv/bin/nova-compute"], cwd=str(tmp_path / "shard-0123456789ab"))
    _process(proc, 30, 1, ["gunicorn: master [glance]   "], environ=b"X=/x/shard-0123456789ab")
    _process(proc, 31, 30, ["gunicorn: worker [glance]   "])
    _process(proc, 35, 5, ["/usr/bin/python3", "AnsiballZ_shard_process.py"])
    _process(proc, 36, 35, ["gunicorn: master [keystone]   "])
    _process(proc, 40, 1, ["/venv/bin/nova-compute"], cwd=str(tmp_path / "shard-ffffffffffff"))
    _process(proc, 50, 5, ["/usr/bin/python3", "x.py"], cwd=str(tmp_path / "shard-0123456789ab"))
    (proc / "meminfo").write_text("MemTotal: 1000 kB\nMemAvailable: 200 kB\n")
    sampler.sample()
    result = sampler.result()
    assert result["openstack_processes"] == 4
    assert result["openstack_programs"] == {"glance": 2, "keystone": 1, "nova-compute": 1}
    assert result["peak_mem_mib"] == round(400 * 1024 / 2**20)
    # Seen once, counted once.
    sampler.sample()
    assert sampler.result()["openstack_processes"] == 4
    # A service that renamed itself and left its launcher: its pid file names it.
    _process(proc, 60, 1, ["gunicorn: master [placement]   "])
    _process(proc, 61, 60, ["gunicorn: worker [placement]   "])
    sampler.sample()
    assert sampler.result()["openstack_processes"] == 4
    sampler.adopt([60, 10, 999])  # 10 ran before: not the run's; 999 is gone
    assert sampler.result()["openstack_programs"]["placement"] == 2
    assert sampler.result()["openstack_processes"] == 6


def test_parse_scaling():
    assert bench.parse_scaling("1,2,4,8") == [1, 2, 4, 8]
    assert bench.parse_scaling("none") == [] and bench.parse_scaling("") == []
    for bad in ("a", "0,2", "100"):
        with pytest.raises(bench.BenchError):
            bench.parse_scaling(bad)


def test_slowest_tasks(tmp_path):
    log = tmp_path / "job-output.txt"
    log.write_text(
        "ok: [controller] Gathering Facts (0.6s)\n{}\n"
        "changed: [controller] shard_teardown : Stop nova-compute (11.6s)\n"
        "skipping: [controller] shard : x (0.0s)\n"
        "ok: [controller] shard_exercise : Boot a server (2.9s)\n"
    )
    assert bench.slowest_tasks(log, count=2) == [
        {"task": "shard_teardown : Stop nova-compute", "seconds": 11.6},
        {"task": "shard_exercise : Boot a server", "seconds": 2.9},
    ]
    assert bench.slowest_tasks(tmp_path / "missing") == []


def test_render_a_whole_result():
    runs = {
        "from-scratch": [_run(120, 300, code=2.0)],
        "shard": [_run(60, 100, code=2.0, job_wall_s=58, roles={"shard_deploy": 8.0})],
        "floor": [_run(15, 30, code=2.0, floor_s=14, steps={"deploy": 4.0})],
    }
    result = {
        "started": "20260101T000000Z",
        "machine": {"cpus": 2, "cpu_model": "Test CPU", "mem_gib": 24, "os": "Debian"},
        "repeat": 1,
        "variants": list(runs),
        "runs": runs,
        "summary": {v: bench.summarize(r) for v, r in runs.items()},
        "scaling": [{"jobs": 2, "wall_s": 90.0, "job_wall_s": 85.0, "cpu_s": 180.0, "failures": 0}],
    }
    result["ratios"] = bench.ratios(result["summary"])
    result["overhead"] = bench.overhead(runs["shard"], runs["floor"])
    result["notes"] = bench.notes(result)
    text = bench.render(result)
    assert "2 CPUs (Test CPU), 24 GiB, Debian; repeat 1, medians" in text
    lines = text.splitlines()
    shard = next(line for line in lines[1:] if line.split()[:1] == ["shard"])
    assert shard.split() == ["shard", "60.0", "100.0", "100", "1", "2.0", "2.0%", "1/1"]
    assert next(line for line in lines if line.startswith("shard/from-scratch")).split() == [
        "shard/from-scratch",
        "0.50",
        "0.33",
    ]
    assert next(line for line in lines if line.startswith("2 ")).split() == [
        "2",
        "90.0",
        "85.0",
        "180.0",
        "90.0",
        "0",
    ]
    assert any(line.split()[:4] == ["shard_deploy", "8.0", "4.0", "4.0"] for line in lines)
    json.dumps(result)  # what is written as JSON


def test_wait_jobs_notes_when_each_ended():
    import subprocess
    import time

    jobs = [
        {"proc": subprocess.Popen(["sleep", seconds]), "start": time.monotonic()}
        for seconds in ("1.5", "0.05")
    ]
    bench.wait_jobs(jobs)
    slow, fast = (job["end"] - job["start"] for job in jobs)
    assert fast < slow
