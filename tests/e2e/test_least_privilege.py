"""Least privilege: the service under test runs with the handout's service_auth, an
account with the service role and without admin, never with the job's own account.

The embedded cloud hands out both (cloud: the CI user, admin; service_auth: its
service user). The service account really lacks admin: nova refuses it the
compute services and a new flavor, while placement (what a compute needs) serves
it. A shard-nova-compute run passes with the split, and its collected, masked
nova-compute.conf names the service user in every keystoneauth section, never
the CI user. Without service_auth the job still passes with the job's account,
and its pre-flight says so in one line.
"""

from pathlib import Path

import openstack
import pytest
from job_runs import handout, leftovers, run_job, secret_file

from shard_jobs.rules import auth, secrets

AUTH_SECTIONS = ("placement", "neutron", "service_user")


def sections(text: str) -> dict[str, str]:
    """Section name -> its body, of an INI text."""
    found = {}
    for part in ("\n" + text).split("\n[")[1:]:
        name, _, body = part.partition("]")
        found[name] = body
    return found


@pytest.fixture(scope="module")
def service_conn():
    """openstacksdk as the handout's service_auth, with the region of its cloud."""
    credentials = handout()
    assert credentials.get("service_auth"), "the embedded cloud hands out no service_auth"
    entry = auth.service_account(credentials)
    return openstack.connect(
        load_yaml_config=False,
        load_envvars=False,
        auth_type=entry["auth_type"] or "password",
        auth=entry["auth"],
        region_name=credentials["cloud"].get("region_name"),
    )


def test_the_service_account_has_the_service_role_and_no_admin(service_conn):
    access = service_conn.session.auth.get_access(service_conn.session)
    assert "service" in access.role_names and "admin" not in access.role_names
    # What a compute needs: placement serves it.
    response = service_conn.placement.get("/resource_providers")
    assert response.status_code == 200, response.status_code
    # What needs admin: nova refuses it the compute services and a new flavor.
    with pytest.raises(openstack.exceptions.ForbiddenException):
        list(service_conn.compute.services())
    with pytest.raises(openstack.exceptions.ForbiddenException):
        service_conn.compute.create_flavor(name="shard-least-privilege", ram=64, vcpus=1, disk=0)


def test_nova_compute_runs_with_the_service_account_only(admin_conn):
    credentials = handout()
    service_user = credentials["service_auth"]["username"]
    job_user = credentials["cloud"]["auth"]["username"]
    assert service_user != job_user

    status, summary, stderr = run_job("shard-nova-compute")
    assert summary, stderr
    label = summary["exercise"].get("label")
    try:
        assert status == 0 and summary["result"] == "SUCCESS", stderr
        assert summary["exercise"]["landed_on"] == label
        assert summary["teardown"] == "ok"
        # The collected (masked) configuration: every keystoneauth section is the
        # service user's; the job's user is nowhere in it.
        text = next(Path(summary["logs"]).rglob("nova-compute.conf")).read_text()
        found = sections(text)
        for name in AUTH_SECTIONS:
            assert f"\nusername = {service_user}\n" in found[name], name
            assert f"\npassword = {secrets.MARKER}\n" in found[name], name
        # (As a user name: the name may also be a vhost's, as in CI's cloud.)
        assert f"username = {job_user}\n" not in text
        output = (Path(summary["logs"]) / "job-output.txt").read_text()
        assert auth.service_account_note(credentials) in output
    finally:
        assert label and leftovers(admin_conn, label) == {}


def test_without_service_auth_the_job_says_the_service_runs_as_admin(admin_conn, tmp_path):
    credentials = handout()
    del credentials["service_auth"]
    path = secret_file(tmp_path / "secret.yaml", credentials)
    try:
        status, summary, stderr = run_job("shard-nova-compute", "--secret-file", path)
    finally:
        Path(path).unlink()
    assert summary, stderr
    label = summary["exercise"].get("label")
    try:
        assert status == 0 and summary["result"] == "SUCCESS", stderr
        output = (Path(summary["logs"]) / "job-output.txt").read_text()
        note = auth.service_account_note(credentials)
        assert "no service_auth" in note and note in output
        text = next(Path(summary["logs"]).rglob("nova-compute.conf")).read_text()
        job_user = credentials["cloud"]["auth"]["username"]
        for name in AUTH_SECTIONS:
            assert f"\nusername = {job_user}\n" in sections(text)[name], name
    finally:
        assert label and leftovers(admin_conn, label) == {}


def test_glance_api_validates_tokens_with_the_service_account(admin_conn):
    credentials = handout()
    service_user = credentials["service_auth"]["username"]
    status, summary, stderr = run_job("shard-glance-api")
    assert summary, stderr
    label = summary["exercise"].get("label")
    try:
        assert status == 0 and summary["result"] == "SUCCESS", stderr
        assert summary["teardown"] == "ok"
        text = (Path(summary["logs"]) / "shard" / "etc" / "glance-api.conf").read_text()
        section = sections(text)["keystone_authtoken"]
        assert f"\nusername = {service_user}\n" in section
        assert credentials["cloud"]["auth"]["username"] not in text
    finally:
        assert label and leftovers(admin_conn, label) == {}
