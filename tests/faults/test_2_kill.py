"""A run killed at any phase leaves nothing once its cleanup, or the janitor, ran.

Each run is SIGKILLed as a crashed executor would be (the runner's process
group and every playbook's session) once its phase has begun and done
something the cleanup must undo: the workspace (build), the shard's process
(deploy), the flavor (label), the server (exercise), the stopped service with
its records still in the cloud (teardown). The shard's own process, started in
a session of its own, survives the kill, as on a real node. One more run
loses its node mid-exercise (its shard's process killed too, no cleanup): the
janitor removes what it left.

The six runs start together and are killed each at its phase by a watcher
thread; the tests then clean up one run after the other.
"""

import re
import threading
import time

import openstack
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

from shard_jobs import cloud
from shard_jobs.rules import labels, processes

PHASES = ("build", "deploy", "label", "exercise", "teardown")
LOST_NODE = "lost node"
# Seconds to reach a phase with six runs on a loaded 2-core machine (a run
# takes ~80 s alone).
REACH = 900


def _recorded(run):
    """Whether the shard's process has a pid record (shard_processes, its one reader)."""
    return processes.raw_record(str(workspace(run.build) / "run" / "nova-compute.pid")) is not None


def _server(conn, run):
    name = labels.server_name_for(run.label)
    return [
        s
        for s in conn.compute.servers(all_projects=True, name=f"^{re.escape(name)}$")
        if s.name == name
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
        return lambda: _recorded(run)
    if phase == "label":
        flavor = labels.flavor_name_for(run.label)
        return lambda: conn.compute.find_flavor(flavor, ignore_missing=True)
    if phase == "exercise":
        return lambda: _server(conn, run)
    # teardown: the server is gone and the service stopped; its records remain.
    return lambda: not _recorded(run)


class Kill(threading.Thread):
    """Watches one run and kills it at its phase; records what was left then."""

    def __init__(self, run, phase):
        super().__init__(daemon=True)
        self.run_, self.phase = run, phase
        self.error = None
        self.left = self.survivors = None
        self.killed_at = None

    def run(self):
        run, phase = self.run_, "exercise" if self.phase == LOST_NODE else self.phase
        try:
            # A connection of the thread's own (the operator's).
            conn = openstack.connect(cloud=cloud.load_manifest()["admin_cloud_name"])
            poll = 0.3 if phase in ("label", "exercise") else 0.05
            wait_for(_began(run, phase), REACH, f"phase {phase} to begin", run)
            wait_for(_midway(conn, run, phase), REACH, f"phase {phase} midway", run, poll)
            run.kill()
            if self.phase == LOST_NODE:
                shard = processes_of(run.build)
                kill_processes(shard)
                assert wait_gone(list(shard)) == []
            self.killed_at = time.monotonic()
            self.left = leftovers(conn, run.label)
            self.survivors = processes_of(run.build)
        except BaseException as exc:  # reported by the test of the phase
            self.error = exc

    def result(self):
        self.join(REACH * 2)
        assert not self.is_alive(), f"the watcher of phase {self.phase} is stuck"
        if self.error:
            raise self.error
        return self


@pytest.fixture(scope="module")
def kills(tmp_path_factory, admin_conn):
    """Phase -> its Kill, all started at once."""
    tmp = tmp_path_factory.mktemp("kills")
    started = {}
    try:
        for phase in (*PHASES, LOST_NODE):
            run = start_run(tmp, "-e", "shard_wait_timeout=900")
            started[phase] = Kill(run, phase)
            started[phase].start()
        yield started
    finally:
        for kill in started.values():
            kill.join(5)
            rescue(kill.run_)


def test_lost_node_leaves_labelled_resources(kills):
    kill = kills[LOST_NODE].result()
    assert kill.left.get("servers") and kill.left.get("compute_services")
    assert kill.left.get("flavors")
    assert kill.survivors == {}


@pytest.mark.parametrize("phase", PHASES)
def test_killed_at_phase_then_cleanup_leaves_nothing(phase, kills, admin_conn):
    kill = kills[phase].result()
    run, left, survivors = kill.run_, kill.left, kill.survivors
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


def test_janitor_deletes_what_a_lost_node_left(kills, admin_conn):
    """Last of the module: by now nova reports the lost shard's compute down."""
    run = kills[LOST_NODE].result().run_

    def down():
        services = [s for s in admin_conn.compute.services() if s.host == run.label]
        return all(s.state == "down" for s in services)

    wait_for(down, 180, "nova to report the lost shard's compute down", poll=2)
    assert leftovers(admin_conn, run.label)
    rc, report, stderr = janitor("--older-than", "0s", "--force")
    assert rc == 0, stderr
    assert run.label in report["labels"]
    assert leftovers(admin_conn, run.label) == {}
    # The node's side (here: the workspace) is the cleanup's: it finds nothing
    # left in the cloud and removes the workspace.
    done = cleanup(run.build)
    assert done.returncode == 0, done.stderr
    assert_clean(admin_conn, run.build)
