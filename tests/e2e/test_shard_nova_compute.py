"""The shard-nova-compute job end to end, against the embedded cloud."""

import json
import re
import shutil
import uuid
from pathlib import Path

import pytest
import yaml
from conftest import marked_copy
from job_runs import bus_leftovers, handout, leftovers, run_job, secret_file

from shard_jobs import cloud, replay
from shard_jobs.rules import labels, secrets


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
        for phase in ("preflight", "build", "deploy", "label", "exercise", "teardown"):
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
        # What `./shard run --from-zuul` reads: the run's inventory in Zuul's shape (as
        # zuul-jobs' log-inventory logs the executor's), without the credentials.
        build = replay.read(summary["logs"])
        assert (build.build, build.job, build.project) == (
            summary["build"],
            "shard-nova-compute",
            "openstack/nova",
        )
        assert build.variables["shard_profile"] == "nova-compute"
        logged = (Path(summary["logs"]) / replay.INVENTORY).read_text()
        assert not [v for v in secrets.secret_values(handout()).values() if v in logged]
    finally:
        # Nothing with the build's label remains, whatever happened above; nor a
        # queue of its host (the label) on the cloud's message bus.
        assert label and leftovers(admin_conn, label) == {}
        assert bus_leftovers(label) == []


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
    assert bus_leftovers(label) == []
    # The shard did get deployed and labelled before the exercise failed.
    assert summary["phases"]["label"]["seconds"] >= 0
    assert "exercise" not in summary["phases"] or "end" not in summary["phases"]["exercise"]
    # The report says so: the exercise never ended, the verdict, a clean teardown.
    report = efficiency_report(summary)
    assert report["verdict"] == "FAILURE" and report["teardown"]["state"] == "ok"
    phases = {p["name"]: p for p in report["phases"]}
    assert phases["exercise"]["end"] is None and phases["teardown"]["seconds"] > 0


@pytest.fixture
def canary_server(admin_conn):
    """A server of the operator's project on the cloud's ordinary compute: a canary."""
    manifest = cloud.load_manifest()
    name = f"shard-e2e-canary-{uuid.uuid4().hex[:8]}"
    flavor = admin_conn.compute.create_flavor(name=name, ram=64, vcpus=1, disk=0, is_public=True)
    image = admin_conn.image.find_image(manifest["image"], ignore_missing=False)
    server = admin_conn.compute.create_server(
        name=name, flavor_id=flavor.id, image_id=image.id, networks="none"
    )
    try:
        server = admin_conn.compute.wait_for_server(server, wait=300)
        assert server.compute_host == manifest["ordinary_compute"]
        yield server
    finally:
        admin_conn.compute.delete_server(server)
        admin_conn.compute.wait_for_delete(server, wait=300)
        admin_conn.compute.delete_flavor(flavor)


def test_a_change_that_touches_a_server_elsewhere_fails_naming_it(
    tmp_path, nova_release_tree, canary_server, admin_conn
):
    """A canary server: a nova-compute holds the bus URL, so through the conductor it
    can change any server of the cloud (docs/source/trust.rst). The change under test
    sets metadata on the operator's canary, on the ordinary compute, when it starts;
    the credentials name it in canary_servers. The job fails, naming it."""
    tree, marker = marked_copy(
        nova_release_tree,
        tmp_path,
        "nova/compute/manager.py",
        "        self._check_for_host_rename(nodes_by_uuid)\n",
        "        LOG.warning({marker})\n"
        "        _canary = objects.Instance.get_by_uuid(\n"
        f"            context, {canary_server.id!r}, expected_attrs=['metadata'])\n"
        "        _canary.metadata = dict(_canary.metadata, shard_touched='yes')\n"
        "        _canary.save()",
    )
    credentials = dict(handout(), canary_servers=[canary_server.name])
    path = secret_file(tmp_path / "secret.yaml", credentials)
    status, summary, stderr = run_job(
        "shard-nova-compute", "--src", f"openstack/nova={tree}", "--secret-file", path
    )
    assert summary, stderr
    label = labels.label_for(summary["build"])
    try:
        # The exercise fails (run), and teardown's check fails too: POST_FAILURE.
        assert status != 0 and summary["result"] == "POST_FAILURE", stderr
        assert marker in (Path(summary["logs"]) / "shard" / "nova-compute.log").read_text()
        touched = admin_conn.compute.get_server_metadata(canary_server).metadata
        assert touched.get("shard_touched") == "yes"
        said = stderr + json.dumps(summary)
        named = f"{canary_server.name} ({canary_server.id}): metadata, updated"
        for when in ("after the exercise", "after teardown"):
            assert f"canary servers changed {when}: {named}" in said, said
    finally:
        assert leftovers(admin_conn, label) == {}
        assert bus_leftovers(label) == []


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


@pytest.fixture
def older_nova(tmp_path, nova_release_tree):
    """(a nova tree one service version older than the cloud's nova, the cloud's version)."""
    tree = tmp_path / "nova"
    shutil.copytree(nova_release_tree, tree, symlinks=True)
    service = tree / "nova/objects/service.py"
    text = service.read_text()
    current = int(re.search(r"^SERVICE_VERSION = (\d+)$", text, re.M).group(1))
    service.write_text(
        text.replace(f"\nSERVICE_VERSION = {current}\n", f"\nSERVICE_VERSION = {current - 1}\n")
    )
    return tree, current


def test_a_change_older_than_the_cloud_accepts_is_refused_before_its_build(older_nova, admin_conn):
    # The embedded cloud hands out the oldest nova-compute it accepts (its
    # ordinary compute's service version): the guard refuses in one line.
    tree, current = older_nova

    status, summary, stderr = run_job("shard-nova-compute", "--src", f"openstack/nova={tree}")

    assert status == 1, stderr
    assert summary["result"] == "FAILURE"
    output = (Path(summary["logs"]) / "job-output.txt").read_text()
    assert (
        f"this cloud refuses nova-compute older than v{current} (minimum_service_versions in "
        f"its credentials): the change's nova has service version {current - 1}"
    ) in output
    assert output.count("shard_guard : Refuse a change that the shared cloud cannot take (") == 1
    # Refused in the guard: its phase started and never ended.
    assert "end" not in summary["phases"]["guard"]
    assert "build" not in summary["phases"] and "deploy" not in summary["phases"]
    assert leftovers(admin_conn, labels.label_for(summary["build"])) == {}


def test_a_compute_the_cloud_refuses_fails_deploy_at_once(older_nova, tmp_path, admin_conn):
    # Credentials that do not state the minimum: the guard cannot tell. The
    # conductor refuses the compute (ServiceTooOld), its ordinary compute
    # keeping the deployment's minimum at the cloud's version, and nova-compute
    # exits or (oslo.service) runs on without a service. Deploy must say so at
    # once, not wait out shard_wait_timeout for a registration that cannot come.
    tree, current = older_nova
    handout = yaml.safe_load(Path(cloud.load_manifest()["secret_file"]).read_text())
    del handout["minimum_service_versions"]
    secret_file = tmp_path / "secret.yaml"
    secret_file.touch(mode=0o600)
    secret_file.write_text(yaml.safe_dump(handout))
    try:
        status, summary, stderr = run_job(
            "shard-nova-compute",
            "--src",
            f"openstack/nova={tree}",
            "--secret-file",
            str(secret_file),
            "-e",
            "shard_wait_timeout=900",
        )
    finally:
        secret_file.unlink()

    assert status == 1, stderr
    assert summary["result"] == "FAILURE" and summary["teardown"] == "ok"
    output = (Path(summary["logs"]) / "job-output.txt").read_text()
    # (nova-compute 2026.2 ends with a CRITICAL "Unhandled error: ..._Remote"
    # line; older ones log oslo.service's "Error starting thread.")
    assert re.search(
        r"nova-compute failed to start its service: .*ServiceTooOld\S*: This service is older "
        rf"\(v{current - 1}\) than the minimum \(v{current}\)",
        output,
    )
    # Failed within a few polls of the refusal, far from the 900 s wait.
    (run,) = [p for p in summary["playbooks"] if p["playbook"].endswith("/run.yaml")]
    assert run["seconds"] < 300
    assert leftovers(admin_conn, labels.label_for(summary["build"])) == {}
