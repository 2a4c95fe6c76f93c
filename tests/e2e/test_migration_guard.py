"""The migration guard end to end: a change with a new migration never meets the shared database.

A change without migrations runs (test_shard_glance_api, test_shard_nova_compute);
here a new migration file makes the job fail in pre-run, with its one line,
as a failure Zuul would not retry, before anything was built or started.
"""

import shutil
from pathlib import Path

import pytest
from job_runs import leftovers, run_job

from shard_jobs.rules import labels

CASES = {
    "glance": (
        "shard-glance-api",
        "openstack/glance",
        "glance_release_tree",
        "glance/db/sqlalchemy/alembic_migrations/versions/2099_1_expand01_shard_e2e.py",
        "glance-api.log",
    ),
    "nova": (
        "shard-nova-compute",
        "openstack/nova",
        "nova_release_tree",
        "nova/db/main/migrations/versions/0123456789ab_shard_e2e.py",
        "nova-compute.log",
    ),
}


@pytest.mark.parametrize("service", sorted(CASES))
def test_a_new_migration_is_refused_before_anything_runs(service, request, tmp_path, admin_conn):
    job, project, release_fixture, migration, service_log = CASES[service]
    tree = tmp_path / service
    shutil.copytree(request.getfixturevalue(release_fixture), tree, symlinks=True)
    new = tree / migration
    new.write_text('"""A schema change (shard-jobs e2e)."""\n\n\ndef upgrade():\n    pass\n')

    status, summary, stderr = run_job(job, "--src", f"{project}={tree}", timeout=900)
    assert summary, stderr
    label = labels.label_for(summary["build"])
    try:
        # A failure, not a retry: the change is the reason.
        assert status == 1 and summary["result"] == "FAILURE", stderr
        output = (Path(summary["logs"]) / "job-output.txt").read_text()
        line = f"this change alters the {service} database schema; a shard cannot test it: "
        assert line in output
        assert f"added {migration}" in output
        # One module process decided it (shard_guard); the rest ran on the executor.
        task = "shard_guard : Refuse a change that the shared cloud cannot take ("
        assert output.count(task) == 1
        # Stopped in pre-run: no run playbook, no build, no deploy.
        assert [p["phase"] for p in summary["playbooks"]] == ["pre-run", "post-run"]
        # (the cleanup playbook still collects what logs there are.)
        assert {"preflight", "guard"} <= set(summary["phases"])
        assert not set(summary["phases"]) & {"build", "deploy", "label", "exercise"}
        assert "end" not in summary["phases"]["guard"]
        # No shard process ever started: it would have logged (and been collected).
        assert not (Path(summary["logs"]) / "shard" / service_log).exists()
        assert "shard_deploy" not in output and "shard_build" not in output
        assert summary["teardown"] == "ok"
    finally:
        assert leftovers(admin_conn, label) == {}


def test_a_change_that_does_not_install_fails_without_retry(tmp_path, nova_release_tree):
    """The build of the change is the change's: a broken setup.cfg is a FAILURE, not RETRY."""
    tree = tmp_path / "nova"
    shutil.copytree(nova_release_tree, tree, symlinks=True)
    setup_cfg = tree / "setup.cfg"
    setup_cfg.write_text(setup_cfg.read_text() + "\n[metadata\nbroken = (shard-jobs e2e)\n")

    status, summary, stderr = run_job(
        "shard-nova-compute", "--src", f"openstack/nova={tree}", timeout=900
    )
    assert summary, stderr
    assert status == 1 and summary["result"] == "FAILURE", stderr
    output = (Path(summary["logs"]) / "job-output.txt").read_text()
    assert "the change does not install (openstack/nova from " in output
    assert [p["phase"] for p in summary["playbooks"]] == ["pre-run", "post-run"]
    assert not set(summary["phases"]) & {"deploy", "label", "exercise"}
