"""The shard-glance-api job end to end, against the embedded cloud."""

import json
import socket
import uuid
from pathlib import Path

from conftest import marked_copy
from job_runs import handout, leftovers, run_job, secret_file

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
        assert port == labels.port_for(label)
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
        credentials = handout()
        db_url = credentials["glance"]["database_connection"]
        db_password = secrets.url_hosts(db_url)[0]["password"]
        cloud_password = credentials["cloud"]["auth"]["password"]
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


def test_a_change_that_deletes_an_image_it_should_not_fails_naming_it(
    tmp_path, glance_release_tree, admin_conn
):
    """The canary: a glance whose image delete also deletes another project's image.

    The test's own canary (a private image of the operator's project), named in
    the handout's canary_images beside the embedded cloud's: the change's delete
    destroys it in the database. The job fails, naming it, and the embedded
    cloud's canary is left alone (not named)."""
    canary = admin_conn.image.create_image(
        name=f"shard-e2e-canary-{uuid.uuid4().hex[:8]}",
        data=b"canary",
        disk_format="raw",
        container_format="bare",
        visibility="private",
    )
    try:
        tree, marker = marked_copy(
            glance_release_tree,
            tmp_path,
            "glance/api/v2/images.py",
            "    def delete(self, req, image_id):\n"
            "        image_repo = self.gateway.get_repo(req.context)\n",
            "        LOG.warning({marker})\n"
            "        try:\n"
            "            glance.db.get_api().image_destroy(\n"
            f"                glance_context.get_admin_context(), {canary.id!r})\n"
            "        except Exception:\n"
            "            pass",
        )
        manifest = cloud.load_manifest()
        credentials = handout()
        assert credentials["canary_images"] == [manifest["canary_image"]]
        credentials["canary_images"].append(canary.id)
        path = secret_file(tmp_path / "secret.yaml", credentials)
        status, summary, stderr = run_job(
            "shard-glance-api",
            "--src",
            f"openstack/glance={tree}",
            "--secret-file",
            path,
        )
        assert summary, stderr
        label = labels.label_for(summary["build"])
        try:
            # The exercise fails (run), and teardown's check fails too: a failing
            # cleanup playbook makes it POST_FAILURE, as under Zuul.
            assert status != 0 and summary["result"] == "POST_FAILURE", stderr
            # The changed code ran, and did delete it.
            log = (Path(summary["logs"]) / "shard" / "glance-api.log").read_text()
            assert marker in log
            assert admin_conn.image.find_image(canary.id) is None
            # The job says which image, after the exercise and after teardown; not the
            # untouched one.
            said = stderr + json.dumps(summary)
            named = f"{canary.name} ({canary.id}): deleted"
            for when in ("after the exercise", "after teardown"):
                assert f"canary images changed {when}: {named}" in said, said
            assert manifest["canary_image"] not in said.split("canary images changed", 1)[1]
        finally:
            assert leftovers(admin_conn, label) == {}
    finally:
        # Whatever the change did, the test's canary goes: through glance when it
        # is still there, else its data, which glance's soft delete left in the store.
        if admin_conn.image.find_image(canary.id):
            admin_conn.image.delete_image(canary.id)
        store = handout()["glance"]["stores"]["file"]["filesystem_store_datadir"]
        (Path(store) / canary.id).unlink(missing_ok=True)
    # The embedded cloud's canary is still there.
    assert admin_conn.image.find_image(cloud.load_manifest()["canary_image"]) is not None
