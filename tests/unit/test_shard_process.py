"""shard_process: real processes started, found again, restarted and stopped."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import shard_process as module
from ansible.module_utils import shard_processes

SLEEP = ["sleep", "60"]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid):
    """Whether pid runs (a zombie does not count)."""
    return shard_processes.start_time(pid) is not None


def http_server(port):
    return [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]


@pytest.fixture
def proc(tmp_path, run_module):
    """args(name, **options) for a service in tmp_path; kills what is left afterwards."""

    def args(name="svc", **options):
        base = dict(
            name=name,
            pidfile=str(tmp_path / "run" / f"{name}.pid"),
            logfile=str(tmp_path / "log" / f"{name}.log"),
        )
        base.update(options)
        return base

    yield args
    for path in (tmp_path / "run").glob("*.pid") if (tmp_path / "run").exists() else []:
        record = shard_processes.read_record(str(path))  # None unless that process still runs
        if record and record["pid"] != os.getpid():
            os.killpg(record["pid"], signal.SIGKILL)


def test_start_then_no_op_then_stop(proc, run_module):
    started = run_module(module, proc(command=SLEEP))

    assert started["changed"] is True and started["action"] == "started"
    pid = started["pid"]
    assert alive(pid)
    pidfile = proc()["pidfile"]
    assert Path(pidfile).read_text().strip() == str(pid)
    record = json.loads(Path(shard_processes.record_path(pidfile)).read_text())
    assert record["pid"] == pid and record["command"] == SLEEP
    assert os.getpgid(pid) == pid  # its own session and process group

    again = run_module(module, proc(command=SLEEP))
    assert again == {**again, "changed": False, "action": "none", "pid": pid, "running": True}

    stopped = run_module(module, proc(state="stopped"))
    assert stopped["changed"] is True and stopped["action"] == "stopped"
    assert not alive(pid)
    assert not os.path.exists(pidfile) and not os.path.exists(shard_processes.record_path(pidfile))

    stopped_again = run_module(module, proc(state="stopped"))
    assert stopped_again["changed"] is False and stopped_again["action"] == "none"


def test_check_mode_starts_nothing(proc, run_module):
    result = run_module(module, proc(command=SLEEP), check_mode=True)

    assert result["changed"] is True
    assert result["running"] is False
    assert not os.path.exists(shard_processes.record_path(proc()["pidfile"]))


def test_check_mode_stops_nothing(proc, run_module):
    pid = run_module(module, proc(command=SLEEP))["pid"]

    result = run_module(module, proc(state="stopped"), check_mode=True)

    assert result["changed"] is True
    assert alive(pid)


def test_waits_for_the_port_and_refuses_a_taken_one(proc, run_module):
    port = free_port()
    started = run_module(module, proc("web", command=http_server(port), port=port))

    assert started["changed"] is True
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass

    taken = run_module(module, proc("other", command=http_server(port), port=port))

    assert taken["failed"] is True
    assert taken["msg"].startswith(
        f"port {port} on 127.0.0.1 needed by other is already in use by another program "
        f"(pid {started['pid']}: "
    )
    assert "http.server" in taken["msg"]
    assert not os.path.exists(shard_processes.record_path(proc("other")["pidfile"]))


def test_a_changed_fingerprint_restarts(proc, run_module):
    first = run_module(module, proc(command=SLEEP, fingerprint="conf-a"))
    same = run_module(module, proc(command=SLEEP, fingerprint="conf-a"))
    changed = run_module(module, proc(command=SLEEP, fingerprint="conf-b"))

    assert same["changed"] is False and same["pid"] == first["pid"]
    assert changed["changed"] is True and changed["action"] == "restarted"
    assert changed["pid"] != first["pid"]
    assert not alive(first["pid"])
    assert alive(changed["pid"])


def test_restarted_always_restarts(proc, run_module):
    first = run_module(module, proc(command=SLEEP))
    second = run_module(module, proc(command=SLEEP, state="restarted"))

    assert second["action"] == "restarted" and second["pid"] != first["pid"]
    assert not alive(first["pid"])


def test_a_stale_pidfile_is_not_a_running_process(proc, run_module):
    first = run_module(module, proc(command=SLEEP))
    os.killpg(first["pid"], signal.SIGKILL)
    while alive(first["pid"]):
        time.sleep(0.01)

    again = run_module(module, proc(command=SLEEP))

    assert again["changed"] is True
    assert again["action"] == "started"  # nothing to restart: the old one is dead
    assert alive(again["pid"])


def test_a_recycled_pid_is_never_signalled(proc, run_module, tmp_path):
    # The record names a live process (this test) that started at another time.
    pidfile = proc()["pidfile"]
    os.makedirs(os.path.dirname(pidfile))
    record = {"name": "svc", "pid": os.getpid(), "start_time": 1, "fingerprint": None}
    with open(shard_processes.record_path(pidfile), "w") as f:
        json.dump(record, f)

    result = run_module(module, proc(state="stopped"))

    assert result["changed"] is False
    assert not os.path.exists(
        shard_processes.record_path(pidfile)
    )  # the stale record is cleaned up


def test_a_process_that_dies_while_starting_fails_with_its_log(proc, run_module):
    command = [sys.executable, "-c", "import sys; print('boom: bad config'); sys.exit(3)"]

    result = run_module(module, proc(command=command, port=free_port(), start_timeout=10))

    assert result["failed"] is True
    assert result["msg"] == (f"svc exited with status 3 while starting; log {proc()['logfile']}")
    assert "boom: bad config" in result["log_tail"]


def test_a_process_that_never_listens_is_stopped_and_fails(proc, run_module):
    port = free_port()

    result = run_module(module, proc(command=SLEEP, port=port, start_timeout=1))

    assert result["failed"] is True
    assert result["msg"] == (
        f"svc did not accept connections on 127.0.0.1:{port} within 1s; log {proc()['logfile']}"
    )
    pid = json.loads(Path(shard_processes.record_path(proc()["pidfile"])).read_text())["pid"]
    assert not alive(pid)


def test_environment_and_log(proc, run_module, tmp_path):
    command = ["sh", "-c", 'echo "value=$SHARD_TEST_VALUE"; exec sleep 60']

    run_module(module, proc(command=command, environment={"SHARD_TEST_VALUE": 42}))

    logfile = Path(proc()["logfile"])
    deadline = time.monotonic() + 5
    while "value=42" not in logfile.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "value=42" in logfile.read_text()


def test_command_is_required_to_start(proc, run_module):
    result = run_module(module, proc())

    assert result["failed"] is True
    assert "command" in result["msg"]


def _worker_pid(marker):
    """The pid a started service wrote for its worker, once it has."""
    deadline = time.monotonic() + 10
    while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return int(marker.read_text())


def test_stop_waits_for_the_whole_process_group(proc, run_module, tmp_path):
    """A worker that ignores SIGTERM outlives its leader: stop kills and waits for it too."""
    marker = tmp_path / "worker.pid"
    script = (
        "import os, signal, subprocess, sys, time\n"
        "worker = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        f"open({str(marker)!r}, 'w').write(str(worker.pid))\n"
        "time.sleep(60)\n"
    )
    started = run_module(module, proc(command=[sys.executable, "-c", script]))
    worker = _worker_pid(marker)
    assert alive(worker) and alive(started["pid"])

    stopped = run_module(module, proc(state="stopped", stop_timeout=1))

    assert stopped["changed"] is True and stopped["action"] == "stopped"
    assert not alive(started["pid"])
    assert not alive(worker)


def orphaned_worker(proc, run_module, tmp_path):
    """A service started by the module whose leader was then SIGKILLed, leaving a worker
    in its process group: the worker's pid."""
    marker = tmp_path / "worker.pid"
    script = (
        "import subprocess, sys, time\n"
        "worker = subprocess.Popen(['sleep', '60'])\n"
        f"open({str(marker)!r}, 'w').write(str(worker.pid))\n"
        "time.sleep(60)\n"
    )
    started = run_module(module, proc(command=[sys.executable, "-c", script]))
    worker = _worker_pid(marker)
    os.kill(started["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive(started["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive(worker)
    return worker


def test_a_record_of_an_earlier_boot_has_no_orphans(proc, run_module, tmp_path):
    # After a reboot the recorded group id may be anyone's: never killed.
    worker = orphaned_worker(proc, run_module, tmp_path)
    record = shard_processes.raw_record(proc()["pidfile"])
    assert shard_processes.orphans(record) == [worker]
    record["boot_id"] = "00000000-0000-0000-0000-000000000000"

    assert shard_processes.orphans(record) == []
    assert shard_processes.kill_orphans(record) == [] and alive(worker)
    os.kill(worker, signal.SIGKILL)


def test_a_dead_leader_s_workers_are_stopped(proc, run_module, tmp_path):
    """The leader was SIGKILLed (its record is stale); its worker still runs in its group."""
    worker = orphaned_worker(proc, run_module, tmp_path)

    stopped = run_module(module, proc(state="stopped"))

    assert stopped["changed"] is True
    assert not alive(worker)
    assert not Path(shard_processes.record_path(proc()["pidfile"])).exists()


def test_a_record_without_start_time_is_never_running(tmp_path):
    # Written for a process that had exited before its start time was read:
    # its pid, gone, reads as no start time too, yet that is no live process.
    child = subprocess.Popen(["true"])
    child.wait()
    pidfile = str(tmp_path / "gone.pid")
    shard_processes.write_record(pidfile, {"pid": child.pid, "start_time": None})

    assert shard_processes.start_time(child.pid) is None
    assert shard_processes.read_record(pidfile) is None
    assert shard_processes.raw_record(pidfile)["pid"] == child.pid


def test_a_start_after_a_dead_leader_stops_its_workers_first(proc, run_module, tmp_path):
    """The leader died (SIGKILL, a crash) and left a worker in its group: starting the
    service again must not leave that worker running beside the new one."""
    worker = orphaned_worker(proc, run_module, tmp_path)

    again = run_module(module, proc(command=SLEEP))

    assert again["action"] == "started" and alive(again["pid"])
    assert not alive(worker)


def test_a_slow_stop_reads_the_leader_not_the_process_table(proc, run_module, monkeypatch):
    """While the leader lives (a service's graceful stop), each look at it is one
    read of its own stat: the whole process table is read only once it is gone."""
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(1), sys.exit(0)))\n"
        "time.sleep(60)\n"
    )
    started = run_module(module, proc(command=[sys.executable, "-c", script]))
    record = shard_processes.raw_record(proc()["pidfile"])
    tables = []
    real_table = shard_processes.process_table
    monkeypatch.setattr(
        shard_processes, "process_table", lambda *a: tables.append(1) or real_table(*a)
    )

    shard_processes.stop(record, signal.SIGTERM, timeout=10)

    assert not alive(started["pid"])
    # About 20 looks in that second; the table once the leader is gone.
    assert 1 <= len(tables) <= 2
