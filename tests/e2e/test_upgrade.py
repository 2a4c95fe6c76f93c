"""The nightly upgrade-path job end to end: previous nova release -> the candidate."""

import json
import os
import re
from pathlib import Path

from conftest import PREVIOUS_NOVA, UPGRADE_CLOUD
from job_runs import leftovers, run_job

from shard_jobs.rules import labels, processes


def test_upgrade_from_the_previous_release(upgrade_cloud, nova_release_tree):
    env, conn = upgrade_cloud
    status, summary, stderr = run_job("shard-nova-compute-upgrade", env=env, timeout=3600)
    assert summary, stderr
    label = labels.label_for(summary["build"])
    try:
        assert status == 0 and summary["result"] == "SUCCESS", stderr
        upgrade = summary["upgrade"]
        # "from" was derived, not written down: the newest release of the series
        # before the candidate's, and the report says why.
        candidate = upgrade["to"]["version"]
        assert candidate == nova_release_tree.name.split("-")[-1]
        chosen = upgrade["from"]
        assert chosen["requested"] == "previous-release" and chosen["kind"] == "release"
        assert int(chosen["version"].split(".")[0]) == int(candidate.split(".")[0]) - 1
        assert chosen["version"] == PREVIOUS_NOVA  # what the cloud's ordinary compute runs
        assert "previous release of nova" in chosen["reason"]
        # Downtime measured; every verification ran.
        assert 0 < upgrade["downtime_seconds"] < 600
        verified = " ".join(upgrade["verified"])
        for check in (
            "survived ACTIVE",
            "unchanged",
            "stopped, started and deleted",
            "new server booted",
        ):
            assert check in verified
        # Both versions really ran: the N-1 exercise, then the upgraded shard.
        logs = Path(summary["logs"]) / "shard"
        freeze_from = (logs / "pip-freeze-venv-from.txt").read_text()
        assert f"nova=={chosen['version']}" in freeze_from
        assert summary["exercise"]["landed_on"] == label
        assert summary["teardown"] == "ok"
        # The efficiency report: both builds and the upgrade on its timeline.
        report = json.loads((logs / "report.json").read_text())
        assert report["verdict"] == "SUCCESS" and report["teardown"]["state"] == "ok"
        phases = [p["name"] for p in report["phases"]]
        for phase in ("build", "build (2)", "deploy", "exercise", "upgrade", "teardown"):
            assert phase in phases
        assert report["upgrade"]["downtime_seconds"] == upgrade["downtime_seconds"]
        assert "<svg" in (logs / "report.html").read_text()
        # The candidate returned as this build's last good (a Zuul artifact).
        (artifact,) = [a for a in summary["artifacts"] if a["name"] == "shard-upgrade-last-good"]
        assert artifact["metadata"]["commit"] == upgrade["to"]["commit"]
    finally:
        assert leftovers(conn, label) == {}


def test_rolling_upgrade_of_two_shards_under_load(upgrade_cloud):
    env, conn = upgrade_cloud
    status, summary, stderr = run_job("shard-nova-compute-rolling-upgrade", env=env, timeout=3600)
    assert summary, stderr
    shard_labels = labels.labels_for(summary["build"], 2)
    try:
        assert status == 0 and summary["result"] == "SUCCESS", stderr[-3000:]
        rolling = summary["upgrade"]["rolling"]
        # Two shards, each with its own label and host, upgraded one at a time.
        shards = rolling["shards"]
        assert [s["label"] for s in shards] == shard_labels
        assert [s["host"] for s in shards] == shard_labels
        for shard in shards:
            assert 0 < shard["downtime_seconds"] < 600, shard
            assert shard["survived"] is True, shard
        assert rolling["servers"] == rolling["servers_survived"] == 2
        assert summary["upgrade"]["downtime_seconds"] == max(s["downtime_seconds"] for s in shards)
        # The sampler ran every second through both upgrades: it listed, showed
        # and stopped/started servers (only on the shard not being upgraded),
        # and the API answered (nearly) every call.
        api = rolling["api"]
        logs = Path(summary["logs"]) / "shard"
        assert api["restored"] == "ok"
        downtime = sum(s["downtime_seconds"] for s in shards)
        assert api["samples"] >= downtime * 0.5, api
        assert api["calls"] >= api["samples"] * 3, api
        assert set(api["by_call"]) >= {"list", "show", "stop"}, api
        assert set(api["by_upgrading"]) == set(shard_labels), api
        assert 0.9 <= api["success_rate"] <= 1.0, api
        assert api["ok"] <= api["calls"]
        # Every call is in the logs: no stop or start went to the shard being upgraded.
        samples = [json.loads(line) for line in (logs / "rolling" / "samples.jsonl").open()]
        assert len(samples) == api["calls"]
        by_id = {s["server"]: s["host"] for s in shards}
        actions = [s for s in samples if s["op"] in ("stop", "start")]
        assert actions and all(by_id[a["target"]] != a["upgrading"] for a in actions)
        # The report has it too, and its page shows it.
        report = json.loads((logs / "report.json").read_text())
        assert report["verdict"] == "SUCCESS" and report["teardown"]["state"] == "ok"
        assert report["upgrade"]["rolling"] == rolling
        page = (logs / "report.html").read_text()
        assert "Rolling upgrade of 2 shards" in page and "2 of 2 servers survived with" in page
        assert summary["teardown"] == "ok"
        # Nothing of either shard is left on the node: workspaces, processes.
        for label in shard_labels:
            assert not any(Path.home().glob(f".shard-jobs/builds/{label}*")), label
        assert not [
            p for p in Path("/proc").glob("[0-9]*/cmdline") if _cmdline_has(p, shard_labels)
        ]
    finally:
        for label in shard_labels:
            assert leftovers(conn, label) == {}, label


def _cmdline_has(path, words):
    try:
        cmdline = path.read_bytes().decode(errors="replace")
    except OSError:
        return False
    return any(word in cmdline for word in words)


def test_upgrade_to_a_candidate_that_fails_to_start(upgrade_cloud, tmp_path, nova_release_tree):
    """A "to" that does not start: a clear failure, and teardown still removes everything."""
    import shutil

    env, conn = upgrade_cloud
    tree = tmp_path / "nova"
    shutil.copytree(nova_release_tree, tree, symlinks=True)
    compute = tree / "nova" / "cmd" / "compute.py"
    compute.write_text(
        compute.read_text().replace(
            "def main():\n",
            "def main():\n    raise SystemExit('shard-e2e: broken on purpose')\n",
            1,
        )
    )
    status, summary, stderr = run_job(
        "shard-nova-compute-upgrade", "--src", f"openstack/nova={tree}", env=env, timeout=3600
    )
    assert summary, stderr
    label = labels.label_for(summary["build"])
    assert status == 1 and summary["result"] == "FAILURE"
    assert "nova-compute did not come back after the upgrade" in stderr
    assert summary["teardown"] == "ok"
    # The upgrade report still says what happened before the failure.
    assert summary["upgrade"]["from"]["version"]
    # Both virtualenvs went with the workspace.
    assert not any(Path.home().glob(f".shard-jobs/builds/{label}*"))
    assert leftovers(conn, label) == {}


def test_night_after_night_on_one_long_lived_cloud(upgrade_cloud):
    # A check job, the nightly upgrade, a check job, the upgrade again: the
    # cloud (its ordinary compute at the previous release, as mid rolling
    # upgrade) takes both kinds every time, and no cloud service restarts.
    env, conn = upgrade_cloud
    run_dir = Path(UPGRADE_CLOUD["SHARD_CLOUD_DIR"]) / "run"

    def cloud_pids():
        # Each service's process as its record names it (pid and start time), while it runs.
        return {
            os.path.basename(p): (record["pid"], record["start_time"])
            for p in processes.recorded_pidfiles(str(run_dir))
            if (record := processes.read_record(p))
        }

    before = cloud_pids()
    assert "nova-conductor.pid" in before and "nova-compute.pid" in before
    for job in [
        "shard-nova-compute",
        "shard-nova-compute-upgrade",
        "shard-nova-compute",
        "shard-nova-compute-upgrade",
    ]:
        status, summary, stderr = run_job(job, env=env, timeout=3600)
        assert summary, stderr
        assert status == 0 and summary["result"] == "SUCCESS", f"{job}: {stderr[-3000:]}"
        assert leftovers(conn, labels.label_for(summary["build"])) == {}
    assert cloud_pids() == before


def test_a_cloud_that_refuses_the_from_version_says_so_before_deploying(admin_conn):
    # The default embedded cloud's ordinary compute runs the cloud's nova: it
    # refuses the previous release's compute. The upgrade job says so after
    # building "from", in one line, before anything is deployed.
    status, summary, stderr = run_job("shard-nova-compute-upgrade")

    assert status == 1, stderr
    assert summary["result"] == "FAILURE"
    output = (Path(summary["logs"]) / "job-output.txt").read_text()
    assert re.search(
        r"this cloud refuses nova-compute older than v\d+ \(minimum_service_versions in its "
        r"credentials\): the upgrade's \\?\"from\\?\" "
        rf"\(nova {re.escape(PREVIOUS_NOVA)}\) has service version \d+",
        output,
    ), output[-3000:]
    assert "deploy" not in summary["phases"]
    assert leftovers(admin_conn, labels.label_for(summary["build"])) == {}
