"""./shard bench's cheapest path: the floor once, against the embedded cloud.

The floor builds the change as the shard job does (the nova source release,
pip install --no-deps -e into a virtualenv layered on a cached dependency
virtualenv): seconds once that dependency virtualenv exists, a minute or two
the first time on a machine. What is checked is that it works and leaves
nothing, never how fast: speed goals belong to the benchmark itself.
"""

import json
import subprocess
from pathlib import Path

from job_runs import SHARD, bus_leftovers, leftovers


def test_bench_floor_smoke(tmp_path, admin_conn):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [SHARD, "bench", "--only", "floor", "--repeat", "1", "--scaling", "none", "--json"]
        + ["--out", out],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    (run,) = result["runs"]["floor"]
    assert run["ok"] and run["label"]
    # The floor booted on its compute; every column was measured.
    assert run["wall_s"] > 0 and run["cpu_s"] > 0 and run["code_cpu_s"] > 0
    assert run["openstack_programs"].get("nova-compute") == 1
    # The build of the change is part of the floor's work, timed as a step.
    assert set(run["steps"]) == {"source", "build", "deploy", "label", "exercise", "teardown"}
    assert run["built"] and run["steps"]["build"] > 0
    assert run["deps"] == result["floor_build"]["deps"]
    # No Ansible.
    assert run["tasks"] == 0 and run["module_processes"] == 0
    assert result["summary"]["floor"]["ok"] == 1
    # --json: standard output is the result alone (as --out wrote it), progress on stderr.
    assert json.loads(proc.stdout) == result
    assert "bench: " in proc.stderr
    assert leftovers(admin_conn, run["label"]) == {}
    # Nor on the message bus: the floor's teardown deletes the host's queues, as the job's does.
    assert bus_leftovers(run["label"]) == []
    # Nor its configuration, which holds the cloud's passwords, in the bench's directory.
    assert list(Path(result["dir"]).rglob("nova-compute.conf")) == []
