"""A control plane outage is the cloud's failure, not the change's.

With nova-api down, a run fails in pre-run (Zuul retries pre-run failures)
with one line, "target cloud unhealthy: compute ...", and creates nothing.
`./shard cloud up` restores the cloud afterwards, whatever happened.

nova-api is stopped, and its port held by what a load balancer in front of a
dead API answers (HTTP 503): every `./shard run` without --secret-file
repairs the embedded cloud first, so on a machine where others run jobs a
merely stopped nova-api would be back within seconds. The run under test
gets the cloud's handout as its secret, as for any cloud, and so no repair.
The last tests of the tier to touch the cloud: for their ~30 s, every run on
this cloud (anyone's) fails. Then nova-api goes down while a job exercises its
shard and is restarted only once the job's teardown has begun: teardown waits
for the APIs it needs (the profile's teardown_services) and leaves nothing.
"""

import contextlib
import json
import os
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from faults_helpers import (
    JOB,
    assert_clean,
    new_build,
    phase_events,
    rescue,
    shard,
    start_run,
    summary_of,
    wait_for,
)

from shard_jobs import cloud

SERVICE = "nova-api"


class NoBackend(BaseHTTPRequestHandler):
    def _answer(self):
        body = b"no server is available to handle this request\n"
        self.send_response(503)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

    def log_message(self, *args):
        pass


def _status() -> dict:
    return json.loads(shard("cloud", "status", "--json", timeout=120).stdout)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _take_down(port: int) -> ThreadingHTTPServer:
    """Stop nova-api and answer 503 on its port (someone's repair may restart it
    meanwhile: then again)."""
    for _ in range(10):
        service = next(s for s in _status()["services"] if s["name"] == SERVICE)
        if service["pid"]:
            # Its whole process group: gunicorn's master and workers.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service["pid"], signal.SIGTERM)
        wait_for(lambda: not _listening(port), 60, f"{SERVICE} to stop")
        try:
            server = ThreadingHTTPServer(("127.0.0.1", port), NoBackend)
        except OSError:
            continue
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server
    raise AssertionError(f"could not hold {SERVICE}'s port {port}")


def test_nova_api_down_fails_pre_run_and_creates_nothing(admin_conn):
    service = next(s for s in _status()["services"] if s["name"] == SERVICE)
    assert service["state"] == "up", service
    port = int(service["endpoint"].rsplit(":", 1)[1])
    handout = cloud.load_manifest()["secret_file"]
    build = new_build()
    server = None
    try:
        server = _take_down(port)
        started = time.monotonic()
        proc = shard("run", JOB, "--json", "--build", build, "--secret-file", handout, timeout=600)
        seconds = time.monotonic() - started
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        up = shard("cloud", "up", timeout=900)
    assert up.returncode == 0, up.stdout + up.stderr
    assert _status()["healthy"]

    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("pre-run  target cloud unhealthy: compute at "), lines[0]
    assert "HTTP 503" in lines[0]
    summary = summary_of(proc.stdout)
    assert summary["result"] == "RETRY"
    assert summary["teardown"] == "ok"
    assert [p["phase"] for p in summary["playbooks"]] == ["pre-run", "post-run"]
    assert "build" not in summary["phases"]  # stopped at the pre-flight
    assert seconds < 300
    assert_clean(admin_conn, build)


def test_nova_api_restarted_mid_exercise_the_job_ends_cleanly(admin_conn, tmp_path):
    """nova-api goes down while a job exercises its shard and comes back only once the
    job's teardown has begun: the job fails on its own terms, its teardown waits for the
    API and leaves nothing."""
    service = next(s for s in _status()["services"] if s["name"] == SERVICE)
    port = int(service["endpoint"].rsplit(":", 1)[1])
    handout = cloud.load_manifest()["secret_file"]
    run = start_run(tmp_path, "--secret-file", handout)
    try:
        wait_for(lambda: ("exercise", "start") in phase_events(run.build), 600, "the exercise", run)
        service = next(s for s in _status()["services"] if s["name"] == SERVICE)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service["pid"], signal.SIGTERM)
        wait_for(lambda: not _listening(port), 60, f"{SERVICE} to stop")
        # Back only once teardown has begun: it must wait for the API, not give up.
        wait_for(lambda: ("teardown", "start") in phase_events(run.build), 600, "the teardown", run)
        time.sleep(5)
        up = shard("cloud", "up", timeout=900)
        assert up.returncode == 0, up.stdout + up.stderr
        run.wait(900)
    except BaseException:
        rescue(run)
        raise
    finally:
        shard("cloud", "up", timeout=900)
    run.keep_output()
    stdout, stderr = run.output()
    summary = run.summary()
    assert summary, stderr
    # The exercise lost its API mid-way: the job fails, on its own terms.
    assert summary["result"] == "FAILURE", stderr
    assert summary["teardown"] == "ok", stderr
    # Teardown waited for the API (back 5 s after teardown began) instead of
    # giving up or deleting blind: its first step says how long.
    teardown = json.loads((Path(summary["logs"]) / "shard" / "teardown.json").read_text())
    waited = next(s for s in teardown["steps"] if s["step"] == "wait for the APIs")
    assert waited["seconds"] >= 3, teardown["steps"]
    assert_clean(admin_conn, run.build)
