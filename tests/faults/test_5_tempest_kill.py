"""A tempest run on the shard killed mid-run: its cleanup deletes the run's projects,
users and everything tempest created in them, by label (never `tempest cleanup`)."""

import openstack
from faults_helpers import assert_clean, cleanup, leftovers, rescue, start_run, wait_for

from shard_jobs import cloud

JOB = "shard-nova-compute-tempest"
REACH = 900


def _tempest_servers(conn, label):
    """Servers tempest booted so far in the run's projects (named after the label)."""
    return [
        s
        for s in conn.compute.servers(all_projects=True)
        if s.name.startswith(f"{label}-") and s.name != f"{label}-server"
    ]


def test_killed_mid_tempest_then_cleanup_leaves_nothing(tmp_path, admin_conn):
    run = start_run(tmp_path, job=JOB)
    try:
        conn = openstack.connect(cloud=cloud.load_manifest()["admin_cloud_name"])
        wait_for(
            lambda: len(_tempest_servers(conn, run.label)) >= 2,
            REACH,
            "tempest to boot servers on the shard",
            run,
            poll=0.5,
        )
        run.kill()
        left = leftovers(conn, run.label)
        # The kill left tempest's accounts and their servers behind.
        assert left.get("projects") and left.get("users") and left.get("servers"), left

        done = cleanup(run.build, job=JOB)
        assert done.returncode == 0, done.stderr + done.stdout[-3000:]
        assert_clean(admin_conn, run.build)
    finally:
        rescue(run)
