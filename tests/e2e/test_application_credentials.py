"""shard-nova-compute with the jobs' account as an application credential.

The embedded cloud hands out an application credential of the CI user
(SHARD_CLOUD_VAR_HANDOUT_AUTH=application_credential), which openstacksdk
(clouds.yaml) authenticates with, and one of its service user (service_auth,
the service role only), which nova-compute's [placement], [neutron] and
[service_user] authenticate with; the run passes and leaves nothing, and no
secret is in any file of the logs.
The cloud goes back to the password handout afterwards, as the other tests expect.
"""

import json
import os
import subprocess
from pathlib import Path

import openstack
import pytest
import yaml
from job_runs import SHARD, leftovers, run_job

from shard_jobs import cloud, rules
from shard_jobs.rules import secrets


def cloud_up(env: dict) -> None:
    proc = subprocess.run(
        [SHARD, "cloud", "up"], env=env, capture_output=True, text=True, timeout=1800
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture
def app_credential_env():
    """The environment of ./shard whose cloud hands out an application credential."""
    plain = {k: v for k, v in os.environ.items() if k != "SHARD_CLOUD_VAR_HANDOUT_AUTH"}
    env = dict(plain, SHARD_CLOUD_VAR_HANDOUT_AUTH="application_credential")
    cloud_up(env)
    try:
        yield env
    finally:
        cloud_up(plain)


def test_nova_compute_runs_with_an_application_credential(app_credential_env, admin_conn):
    handout = yaml.safe_load(Path(cloud.load_manifest()["secret_file"]).read_text())
    entry = handout["cloud"]
    assert entry["auth_type"] == "v3applicationcredential"
    assert {"application_credential_id", "application_credential_secret"} <= set(entry["auth"])
    assert "password" not in entry["auth"] and "username" not in entry["auth"]
    # The service under test's account: the service user's own credential.
    service = handout["service_auth"]
    assert service["auth_type"] == "v3applicationcredential"
    assert service["application_credential_id"] != entry["auth"]["application_credential_id"]
    assert "password" not in service and "username" not in service
    account = rules.auth.service_account(handout)
    service_conn = openstack.connect(load_yaml_config=False, load_envvars=False, **account)
    roles = service_conn.session.auth.get_access(service_conn.session).role_names
    assert "service" in roles and "admin" not in roles

    status, summary, stderr = run_job("shard-nova-compute", env=app_credential_env)
    assert summary, stderr
    label = summary["exercise"].get("label")
    try:
        assert status == 0 and summary["result"] == "SUCCESS", stderr
        assert summary["exercise"]["landed_on"] == label
        assert summary["teardown"] == "ok"
        # The service authenticated with it: its masked configuration names the
        # plugin in every keystoneauth section, and the masked secret only.
        conf = next(Path(summary["logs"]).rglob("nova-compute.conf"))
        text = conf.read_text()
        assert text.count("auth_type = v3applicationcredential\n") == 3, text
        assert text.count(f"application_credential_secret = {secrets.MARKER}\n") == 3, text
        # No form of the secret (or of the id, masked too) anywhere in the logs.
        wanted = secrets.secret_values(handout)
        hits = [
            (str(path), name)
            for path in Path(summary["logs"]).rglob("*")
            if path.is_file()
            for name, _form in secrets.secrets_found(path.read_bytes(), wanted)
        ]
        assert hits == []
        printed = (stderr + json.dumps(summary)).encode()
        assert secrets.secrets_found(printed, wanted) == []
    finally:
        assert label and leftovers(admin_conn, label) == {}
