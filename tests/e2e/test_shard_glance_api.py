"""The shard-glance-api job end to end, against the embedded cloud."""

import socket
from pathlib import Path

import yaml
from job_runs import leftovers, run_job

from shard_jobs import cloud
from shard_jobs.rules import labels, secrets


def test_changed_glance_runs_beside_the_clouds_and_leaves_nothing(patched_glance, admin_conn):
    tree, marker = patched_glance
    status, summary, stderr = run_job("shard-glance-api", "--src", f"openstack/glance={tree}")
    assert summary, stderr
    label = labels.label_for(summary["build"])
    try:
        assert status == 0 and summary["result"] == "SUCCESS", stderr
        logs = Path(summary["logs"]) / "shard"
        # The changed code is what ran: its marker is in the collected shard log.
        log = (logs / "glance-api.log").read_text()
        assert marker in log
        exercise = summary["exercise"]
        assert exercise["label"] == label
        endpoint = exercise["endpoint"]
        assert endpoint.startswith("http://127.0.0.1:")
        port = int(endpoint.rsplit(":", 1)[1])
        assert 20000 <= port < 30000
        # The shard served the uploads, reads, update and deletes (its access log),
        # and it is not the cloud's glance (the catalog's).
        images = exercise["images"]
        assert f"PUT /v2/images/{images['via_shard']}/file" in log
        assert f"GET /v2/images/{images['via_cloud']}/file" in log
        catalog = {
            e.url.rstrip("/")
            for e in admin_conn.identity.endpoints()
            if admin_conn.identity.get_service(e.service_id).type == "image"
        }
        assert endpoint not in catalog and catalog
        # Both images are gone (the exercise deleted them through the shard).
        for image_id in images.values():
            assert admin_conn.image.find_image(image_id) is None
        assert summary["teardown"] == "ok"
        for phase in ("preflight", "guard", "build", "deploy", "exercise"):
            assert summary["phases"][phase]["seconds"] >= 0
        # Secrets masked in the collected configuration, and nowhere in the logs.
        conf = (logs / "etc" / "glance-api.conf").read_text()
        assert "connection = mysql+pymysql://****@" in conf
        assert "password = ****" in conf
        handout = yaml.safe_load(Path(cloud.load_manifest()["secret_file"]).read_text())
        db_url = handout["glance"]["database_connection"]
        db_password = secrets.url_hosts(db_url)[0]["password"]
        cloud_password = handout["cloud"]["auth"]["password"]
        wanted = {"the glance database password": db_password, "the cloud password": cloud_password}
        for path in Path(summary["logs"]).rglob("*"):
            if path.is_file() and path.suffix not in (".sqlite",):
                # Every written form; a failure names the secret and the form, never the value.
                assert secrets.secrets_found(path.read_bytes(), wanted) == [], path
        # The shard process is gone: nothing listens on its port any more.
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
    finally:
        # Nothing with the build's label remains, whatever happened above.
        assert leftovers(admin_conn, label) == {}
