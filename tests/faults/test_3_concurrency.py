"""Eight shard jobs at once against one cloud: all pass, each server on its own
shard, everything torn down.

Everything a run creates is named after its build (host, trait, flavor,
server), so runs cannot collide; what they share is the cloud's capacity:
the project's quota (one server each) and, on this 2-core machine, the CPU.
The waits are raised accordingly. The wall time is recorded in the JUnit
report (property ``seconds``) and in ~/.shard-jobs/test-reports/faults-concurrency.json.
"""

import json
import time

import pytest
from faults_helpers import assert_clean, rescue, start_run

from shard_jobs import paths

JOBS = 8
# Per-run waits (a server to boot, the cloud to see the shard) and the whole
# batch: generous, the 2 cores are shared by eight runs and the cloud.
WAIT = 1200
BATCH = 2400


@pytest.fixture
def room_for_jobs(admin_conn, user_conn):
    """The jobs' project can hold JOBS more servers than it has (its quota is
    the operator's; restored afterwards)."""
    project = user_conn.current_project_id
    limits = user_conn.compute.get_limits().absolute
    before = admin_conn.get_compute_quotas(project)
    wanted = {
        "instances": limits.instances_used + JOBS + 2,
        "cores": limits.total_cores_used + JOBS + 2,
        "ram": limits.total_ram_used + (JOBS + 2) * 512,
    }
    raise_to = {k: v for k, v in wanted.items() if 0 <= before[k] < v}
    if raise_to:
        admin_conn.set_compute_quotas(project, **raise_to)
    try:
        yield
    finally:
        if raise_to:
            admin_conn.set_compute_quotas(project, **{k: before[k] for k in raise_to})


def test_eight_jobs_at_once(admin_conn, tmp_path, room_for_jobs, record_property):
    start = time.monotonic()
    runs = [start_run(tmp_path, "-e", f"shard_wait_timeout={WAIT}") for _ in range(JOBS)]
    try:
        for run in runs:
            run.wait(timeout=max(1, BATCH - (time.monotonic() - start)))
        seconds = round(time.monotonic() - start, 1)
        record_property("seconds", seconds)
        summaries = [run.summary() for run in runs]
        report = paths.HOME / "test-reports" / "faults-concurrency.json"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(
            json.dumps(
                {
                    "jobs": JOBS,
                    "seconds": seconds,
                    "results": [s and s["result"] for s in summaries],
                    "runs": [
                        {
                            "build": r.build,
                            "playbooks": s
                            and {p["playbook"]: p["seconds"] for p in s["playbooks"]},
                        }
                        for r, s in zip(runs, summaries, strict=True)
                    ],
                },
                indent=2,
            )
        )
        for run, summary in zip(runs, summaries, strict=True):
            run.keep_output()
            stdout, stderr = run.output()
            assert summary, f"{run.build}: no summary\n{stderr[-3000:]}"
            assert run.proc.returncode == 0 and summary["result"] == "SUCCESS", (
                f"{run.build}: {summary['result']}\n{stderr[-3000:]}"
            )
            assert summary["teardown"] == "ok"
            exercise = summary["exercise"]
            # No cross-talk: each server landed on its own run's shard.
            assert exercise["label"] == run.label
            assert exercise["landed_on"] == exercise["host"] == run.label
        assert len({s["exercise"]["server"] for s in summaries}) == JOBS
        for run in runs:
            assert_clean(admin_conn, run.build)
    finally:
        for run in runs:
            rescue(run)
