"""The shard-nova-compute job end to end, against the embedded cloud."""

import json
import shutil
from pathlib import Path

from job_runs import leftovers, run_job

from shard_jobs.rules import labels


def efficiency_report(summary) -> dict:
    """The report in the run's logs: report.json, and report.html beside it."""
    logs = Path(summary["logs"]) / "shard"
    html = (logs / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "</html>" in html
    report = json.loads((logs / "report.json").read_text())
    assert report["verdict"] in html
    return report


def test_changed_code_runs_as_a_shard_and_leaves_nothing(patched_nova, admin_conn):
    tree, marker = patched_nova
    status, summary, stderr = run_job("shard-nova-compute", "--src", f"openstack/nova={tree}")
    assert summary, stderr
    label = summary["exercise"].get("label")
    try:
        assert status == 0 and summary["result"] == "SUCCESS", stderr
        # The changed code is what ran: its marker is in the collected shard log.
        log = summary and __import__("pathlib").Path(summary["logs"]) / "shard" / "nova-compute.log"
        assert marker in log.read_text()
        # The server landed on the shard.
        assert summary["exercise"]["landed_on"] == summary["exercise"]["host"] == label
        assert summary["teardown"] == "ok"
        # Every phase recorded a time.
        for phase in ("preflight", "build", "deploy", "label", "exercise"):
            assert summary["phases"][phase]["seconds"] >= 0
        # The efficiency report: every phase on the timeline, with its CPU; the
        # verdict after teardown; what was created, all deleted.
        report = efficiency_report(summary)
        assert report["verdict"] == "SUCCESS" and report["teardown"]["state"] == "ok"
        phases = {p["name"]: p for p in report["phases"]}
        for phase in ("preflight", "build", "deploy", "label", "exercise", "collect-logs"):
            assert phases[phase]["seconds"] >= 0 and phases[phase]["cpu"]["machine"] >= 0
        assert phases["teardown"]["seconds"] > 0
        groups = report["cpu"]["groups"]
        assert groups["code_under_test"]["seconds"] > 0
        assert groups["harness"]["seconds"] > 0 and groups["target_cloud"]["seconds"] > 0
        resources = report["resources"]
        kinds = {r["kind"] for r in resources["deleted"]}
        assert {"servers", "compute_services", "flavors", "traits"} <= kinds
        assert resources["left"] == [] and len(resources["deleted"]) == len(resources["created"])
        # No copy of the credentials stays behind the run: not in its private
        # directory, not in the node's workspace (configs, clouds.yaml).
        private = Path(summary["logs"]).parent / "private"
        assert private.is_dir() and not list(private.glob("secrets-*"))
        assert not list(Path.home().glob(f".shard-jobs/builds/{label}*"))
    finally:
        # Nothing with the build's label remains, whatever happened above.
        assert label and leftovers(admin_conn, label) == {}


def test_failing_exercise_still_tears_down(admin_conn):
    # A flavor with more disk than the shard has (the fake driver: 600000 GB):
    # nova's quota does not count disk, the scheduler finds no host.
    status, summary, stderr = run_job(
        "shard-nova-compute", "-e", "shard_profile_options={flavor_disk: 1000000}"
    )
    assert status == 1, stderr
    assert summary["result"] == "FAILURE"
    assert summary["teardown"] == "ok"
    label = labels.label_for(summary["build"])
    assert leftovers(admin_conn, label) == {}
    # The shard did get deployed and labelled before the exercise failed.
    assert summary["phases"]["label"]["seconds"] >= 0
    assert "exercise" not in summary["phases"] or "end" not in summary["phases"]["exercise"]
    # The report says so: the exercise never ended, the verdict, a clean teardown.
    report = efficiency_report(summary)
    assert report["verdict"] == "FAILURE" and report["teardown"]["state"] == "ok"
    phases = {p["name"]: p for p in report["phases"]}
    assert phases["exercise"]["end"] is None and phases["teardown"]["seconds"] > 0


def test_a_kept_workspace_holds_no_secret(admin_conn):
    """shard_teardown_workspace false keeps the node's workspace for a look, without
    what holds the credentials: clouds.yaml and the real configuration."""
    status, summary, stderr = run_job("shard-nova-compute", "-e", "shard_teardown_workspace=false")
    label = labels.label_for(summary["build"]) if summary else None
    workspace = Path.home() / ".shard-jobs" / "builds" / str(label)
    try:
        assert status == 0 and summary["result"] == "SUCCESS", stderr
        assert workspace.is_dir()
        assert not list(workspace.glob("clouds*.yaml"))
        assert not (workspace / "etc").exists()
        # The masked copy stays: it is what the logs show.
        masked = (workspace / "etc-masked" / "nova-compute.conf").read_text()
        assert "transport_url = rabbit://****@" in masked
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
        assert label and leftovers(admin_conn, label) == {}
