"""The shard-nova-compute job end to end, against the embedded cloud."""

from conftest import leftovers, run_job


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
    finally:
        # Nothing with the build's label remains, whatever happened above.
        assert label and leftovers(admin_conn, label) == {}


def test_failing_exercise_still_tears_down(admin_conn):
    status, summary, stderr = run_job(
        "shard-nova-compute", "-e", "shard_profile_options={image: no-such-image}"
    )
    assert status == 1, stderr
    assert summary["result"] == "FAILURE"
    assert summary["teardown"] == "ok"
    label = "shard-" + summary["build"][:12]
    assert leftovers(admin_conn, label) == {}
    # The shard did get deployed and labelled before the exercise failed.
    assert summary["phases"]["label"]["seconds"] >= 0
    assert "exercise" not in summary["phases"] or "end" not in summary["phases"]["exercise"]
