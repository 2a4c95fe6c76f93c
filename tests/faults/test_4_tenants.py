"""A cloud with tenants: while a shard job runs, another project's ordinary boots
go ACTIVE on the cloud's ordinary compute, never on the shard, and the job passes,
finding the tenant's server it was told is a canary unchanged.

The shard's aggregate carries trait:CUSTOM_SHARD_<HEX>=required and the cloud's
scheduler filters isolated aggregates, so only a flavor (or image) requiring the
shard's trait can land there. Without that, the scheduler would prefer the
shard: before the job starts, the tenant puts a big server on the ordinary
compute (the fake driver's hosts have 800000 MB), so the shard has the most
free RAM, which nova's default weighers favour.
"""

import re
import uuid
from pathlib import Path

import openstack
import pytest
from faults_helpers import SECRETS, assert_clean, rescue, start_run, wait_for
from job_runs import handout, secret_file

from shard_jobs import cloud

# Servers the other tenant boots while the shard is part of the cloud.
BOOTS = 4
# The big server's RAM: half of what a fake driver's host has.
BIG_RAM = 400000
WAIT = 600
# The printed result of a passed canary check (shard_exercise's, shard_teardown's).
CANARY_CHECK = r"ok: \[\S+\] \S+ : Check that the canaries are unchanged"


@pytest.fixture
def other_tenant(admin_conn):
    """A second project with a member, and an ordinary public flavor (no trait)."""
    manifest = cloud.load_manifest()
    name = f"tenant-{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    SECRETS["the other tenant's password"] = password
    project = admin_conn.identity.create_project(name=name, domain_id="default")
    user = admin_conn.identity.create_user(
        name=name, password=password, domain_id="default", default_project_id=project.id
    )
    member = admin_conn.identity.find_role("member")
    admin_conn.identity.assign_project_role_to_user(project, user, member)
    flavor = admin_conn.compute.create_flavor(
        name=f"{name}-small", ram=64, vcpus=1, disk=1, is_public=True
    )
    big = admin_conn.compute.create_flavor(
        name=f"{name}-big", ram=BIG_RAM, vcpus=1, disk=1, is_public=True
    )
    admin_conn.set_compute_quotas(project.id, instances=BOOTS + 2, cores=BOOTS + 2, ram=-1)
    auth = dict(admin_conn.config.config["auth"])
    auth.update(
        username=name,
        password=password,
        project_name=name,
        user_domain_name="Default",
        project_domain_name="Default",
    )
    auth.pop("project_id", None)
    tenant = openstack.connect(auth=auth, region_name=manifest["region"], compute_api_version="2")
    try:
        yield tenant, flavor, big, manifest
    finally:
        for server in admin_conn.compute.servers(all_projects=True, project_id=project.id):
            admin_conn.compute.delete_server(server)
            admin_conn.compute.wait_for_delete(server, wait=120)
        admin_conn.compute.delete_flavor(flavor)
        admin_conn.compute.delete_flavor(big)
        admin_conn.identity.delete_user(user)
        admin_conn.identity.delete_project(project)


def test_other_tenants_servers_never_land_on_the_shard(admin_conn, tmp_path, other_tenant):
    tenant, flavor, big, manifest = other_tenant
    image = tenant.image.find_image(manifest["image"], ignore_missing=False)
    ballast = tenant.compute.create_server(
        name="tenant-big", flavor_id=big.id, image_id=image.id, networks="none"
    )
    ballast = admin_conn.compute.wait_for_server(ballast, wait=WAIT)
    assert ballast.compute_host == manifest["ordinary_compute"]
    # The operator names the tenant's server a canary (canary_servers): the job
    # records it in pre-flight and finds it unchanged after its exercise and teardown.
    credentials = dict(handout(), canary_servers=[ballast.id])
    path = secret_file(tmp_path / "secret.yaml", credentials)
    run = start_run(tmp_path, "-e", f"shard_wait_timeout={WAIT}", "--secret-file", path)
    try:
        # The shard can take servers once its host is in its aggregate (mapped,
        # and from then on isolated): boot while it can.
        wait_for(
            lambda: any(run.label in (a.hosts or []) for a in admin_conn.compute.aggregates()),
            WAIT,
            "the shard to join its aggregate",
            run=run,
        )
        servers = [
            tenant.compute.create_server(
                name=f"tenant-server-{i}",
                flavor_id=flavor.id,
                image_id=image.id,
                networks="none",
            )
            for i in range(BOOTS)
        ]
        # The shard is there to be chosen while nova schedules them (else the
        # test would prove nothing): its host still in its aggregate.
        assert any(run.label in (a.hosts or []) for a in admin_conn.compute.aggregates())
        hosts = []
        for server in servers:
            server = admin_conn.compute.wait_for_server(server, wait=WAIT)
            hosts.append(server.compute_host)
        assert hosts == [manifest["ordinary_compute"]] * BOOTS, (
            f"the other tenant's servers landed on {hosts}; the shard is {run.label}"
        )

        assert run.wait(timeout=1800) == 0, run.output()[1][-3000:]
        summary = run.summary()
        assert summary["result"] == "SUCCESS"
        assert_clean(admin_conn, run.build)
        # The canary was compared, after the exercise and after teardown: each
        # check's printed result names it.
        output = (Path(summary["logs"]) / "job-output.txt").read_text()
        results = re.split(r"^(?=(?:ok|changed|failed|fatal|skipping): \[)", output, flags=re.M)
        checks = [r for r in results if re.match(CANARY_CHECK, r)]
        assert len(checks) == 2, checks
        assert all(f'"id": "{ballast.id}"' in check for check in checks), checks
    finally:
        rescue(run)
