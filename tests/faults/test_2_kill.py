"""A run killed at any phase leaves nothing once its cleanup, or the janitor, ran.

Each run is SIGKILLed as a crashed executor would be (the runner's process
group and every playbook's session) once its phase has begun and done
something the cleanup must undo: the workspace (build), the shard's process
(deploy), the flavor (label), the server (exercise), the stopped service with
its records still in the cloud (teardown). The shard's own process, started in
a session of its own, survives the kill, as on a real node.
"""

import time

import pytest
from faults_helpers import (
    assert_clean,
    cleanup,
    janitor,
    kill_processes,
    leftovers,
    phase_events,
    processes_of,
    rescue,
    start_run,
    wait_for,
    wait_gone,
    workspace,
)

# Seconds to reach a phase on a loaded 2-core machine (a run takes ~80 s alone).
REACH = 600


def _pidfile(run):
    return workspace(run.build) / "run" / "nova-compute.pid"


def _server(conn, run):
    return [
        s
        for s in conn.compute.servers(all_projects=True, name=f"^{run.label}-server$")
        if s.name == f"{run.label}-server"
    ]


def _began(run, phase):
    def check():
        if (phase, "start") in phase_events(run.build):
            return True
        # Without a teardown phase event: the cleanup playbook has started.
        return phase == "teardown" and any(
            "playbooks/shard/cleanup.yaml" in cmd for cmd in processes_of(run.build).values()
        )

    return check


def _midway(conn, run, phase):
    """What the phase has done once it is worth killing."""
    if phase == "build":
        return lambda: True
    if phase == "deploy":
        return _pidfile(run).exists
    if phase == "label":
        return lambda: conn.compute.find_flavor(f"{run.label}-flavor", ignore_missing=True)
    if phase == "exercise":
        return lambda: _server(conn, run)
    # teardown: the server is gone and the service stopped; its records remain.
    return lambda: not _pidfile(run).exists()


def _poll(phase):
    # Cloud calls are not free: poll the cloud less often than files.
    return 0.3 if phase in ("label", "exercise") else 0.05


# ------------------------------------------------------- a lost node, the janitor


@pytest.fixture(scope="module")
def lost_node(admin_conn, tmp_path_factory):
    """A run whose node died mid-exercise: the run and the shard's process killed,
    no cleanup. Started at the module's beginning, so that nova sees the
    compute down (service_down_time, 60 s by default) by the module's end."""
    run = start_run(tmp_path_factory.mktemp("lost-node"), "-e", "shard_wait_timeout=600")
    state = {"run": run}
    try:
        wait_for(_began(run, "exercise"), REACH, "phase exercise to begin", run)
        wait_for(_midway(admin_conn, run, "exercise"), REACH, "a server", run, 0.3)
        run.kill()
        shard = processes_of(run.build)
        kill_processes(shard)
        assert wait_gone(list(shard)) == []
        state["killed_at"] = time.monotonic()
        yield state
    finally:
        rescue(run)


def test_lost_node_leaves_labelled_resources(lost_node, admin_conn):
    run = lost_node["run"]
    left = leftovers(admin_conn, run.label)
    assert left.get("servers") and left.get("compute_services") and left.get("flavors")
    assert processes_of(run.build) == {}


@pytest.mark.parametrize("phase", ["build", "deploy", "label", "exercise", "teardown"])
def test_killed_at_phase_then_cleanup_leaves_nothing(phase, admin_conn, tmp_path):
    run = start_run(tmp_path, "-e", "shard_wait_timeout=600")
    try:
        wait_for(_began(run, phase), REACH, f"phase {phase} to begin", run)
        wait_for(_midway(admin_conn, run, phase), REACH, f"phase {phase} midway", run, _poll(phase))
        run.kill()
        left = leftovers(admin_conn, run.label)
        survivors = processes_of(run.build)
        # The kill left something to clean up.
        assert workspace(run.build).exists()
        if phase == "deploy":
            assert any("nova-compute" in cmd for cmd in survivors.values()), survivors
        if phase in ("label", "exercise", "teardown"):
            assert left, "nothing labelled was there when the run was killed"
        if phase == "exercise":
            assert left.get("servers")
        if phase == "teardown":
            assert not left.get("servers") and left.get("compute_services")

        done = cleanup(run.build)
        assert done.returncode == 0, done.stderr + done.stdout[-3000:]
        assert_clean(admin_conn, run.build)
    finally:
        rescue(run)


def test_janitor_deletes_what_a_lost_node_left(lost_node, admin_conn):
    """Last of the module: by now nova reports the lost shard's compute down."""
    run = lost_node["run"]

    def down():
        services = [s for s in admin_conn.compute.services() if s.host == run.label]
        return all(s.state == "down" for s in services)

    wait_for(down, 180, "nova to report the lost shard's compute down", poll=2)
    # The janitor first lists (dry run): the lost run is there, nothing is deleted.
    rc, report, stderr = janitor("--older-than", "0s", "--dry-run")
    assert rc == 0, stderr
    assert run.label in report["labels"]
    assert leftovers(admin_conn, run.label)

    rc, report, stderr = janitor("--older-than", "0s")
    assert rc == 0, stderr
    assert run.label in report["labels"]
    assert leftovers(admin_conn, run.label) == {}
    # The node's side (here: the workspace) is the cleanup's: it finds nothing
    # left in the cloud and removes the workspace.
    done = cleanup(run.build)
    assert done.returncode == 0, done.stderr
    assert_clean(admin_conn, run.build)
