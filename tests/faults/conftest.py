"""Fixtures of the `faults` tier: the operator's connection, decoys that must
survive every teardown and janitor of the tier, and the runs to scan for secrets."""

import contextlib
import os
import time
import uuid

import job_runs
import openstack
import pytest

from shard_jobs import cloud, paths

# The operator's view of the embedded cloud (a fixture).
admin_conn = job_runs.admin_conn


@pytest.fixture(scope="session")
def user_conn(admin_conn):
    """The account the jobs run with (the embedded cloud's shard-ci)."""
    manifest = cloud.load_manifest()
    return openstack.connect(cloud=manifest["cloud_name"])


@pytest.fixture(scope="session", autouse=True)
def session_start():
    """Runs directories that existed before the tier: the secret scan reads the others."""
    paths.RUNS_DIR.mkdir(parents=True, exist_ok=True)
    return set(os.listdir(paths.RUNS_DIR)), time.time()


class Decoys:
    """Resources named like a run's (shard-<12 hex>-...) but without a label,
    created with the jobs' own account, plus a trait and an aggregate of the
    same look. Teardown and janitor must never delete them."""

    def __init__(self, admin, user):
        self.admin, self.user = admin, user
        self.hex = uuid.uuid4().hex[:12]
        self.name = f"shard-{self.hex}"
        # Not a label's trait (CUSTOM_SHARD_<12 HEX>), but its prefix.
        self.trait = f"CUSTOM_SHARD_DECOY_{self.hex.upper()}"
        self.ids = {}

    def create(self):
        placement = self.admin.placement
        placement.put(f"/traits/{self.trait}", microversion="1.6")
        self.ids["trait"] = self.trait
        flavor = self.user.compute.create_flavor(
            name=f"{self.name}-flavor",
            ram=64,
            vcpus=1,
            disk=0,
            is_public=True,
            description="faults tier decoy: no shard label",
        )
        self.ids["flavor"] = flavor.id
        # No provider has the trait: the server stays in ERROR, on no host,
        # so that it never lands on someone's shard.
        self.user.compute.create_flavor_extra_specs(flavor, {f"trait:{self.trait}": "required"})
        aggregate = self.admin.compute.create_aggregate(name=self.name)
        self.ids["aggregate"] = aggregate.id
        self.admin.compute.set_aggregate_metadata(aggregate, {"purpose": "faults tier decoy"})
        image = self.user.image.create_image(
            name=f"{self.name}-image",
            disk_format="raw",
            container_format="bare",
            data=b"decoy",
            purpose="faults tier decoy",
        )
        self.ids["image"] = image.id
        image_ref = self.user.image.find_image(cloud.load_manifest()["image"])
        server = self.user.compute.create_server(
            name=f"{self.name}-server",
            flavor_id=flavor.id,
            image_id=image_ref.id,
            networks="none",
            metadata={"purpose": "faults tier decoy"},
            tags=["shard-decoy"],
        )
        self.ids["server"] = server.id
        # A project and a user named like a run's tempest accounts, without its
        # label (the label is in the description only).
        project = self.admin.identity.create_project(
            name=f"{self.name}-tempest-0", description="faults tier decoy: no shard label"
        )
        self.ids["project"] = project.id
        user = self.admin.identity.create_user(
            name=f"{self.name}-tempest-0-member",
            default_project_id=project.id,
            description=f"faults tier decoy, like shard-jobs label={self.name}x",
        )
        self.ids["user"] = user.id

    def missing(self) -> list[str]:
        """The decoys that no longer exist."""
        gone = []
        checks = {
            "server": lambda i: self.admin.compute.get_server(i),
            "flavor": lambda i: self.admin.compute.get_flavor(i),
            "aggregate": lambda i: self.admin.compute.get_aggregate(i),
            "image": lambda i: self.admin.image.get_image(i),
            "project": lambda i: self.admin.identity.get_project(i),
            "user": lambda i: self.admin.identity.get_user(i),
        }
        for kind, check in checks.items():
            if kind not in self.ids:
                continue
            try:
                check(self.ids[kind])
            except openstack.exceptions.NotFoundException:
                gone.append(f"{kind} {self.ids[kind]}")
        if "trait" in self.ids:
            resp = self.admin.placement.get(f"/traits/{self.trait}", microversion="1.6")
            if resp.status_code == 404:
                gone.append(f"trait {self.trait}")
        return gone

    def delete(self):
        admin = self.admin
        for kind, call in (
            ("server", lambda i: admin.compute.delete_server(i, ignore_missing=True)),
            ("image", lambda i: admin.image.delete_image(i, ignore_missing=True)),
            ("aggregate", lambda i: admin.compute.delete_aggregate(i, ignore_missing=True)),
            ("user", lambda i: admin.identity.delete_user(i, ignore_missing=True)),
            ("project", lambda i: admin.identity.delete_project(i, ignore_missing=True)),
        ):
            if kind in self.ids:
                with contextlib.suppress(openstack.exceptions.SDKException):
                    call(self.ids[kind])
        if "server" in self.ids:
            with contextlib.suppress(openstack.exceptions.SDKException):
                admin.compute.wait_for_delete(
                    admin.compute.get_server(self.ids["server"]), wait=120
                )
        if "flavor" in self.ids:
            admin.compute.delete_flavor(self.ids["flavor"], ignore_missing=True)
        if "trait" in self.ids:
            admin.placement.delete(f"/traits/{self.trait}", microversion="1.6")


@pytest.fixture(scope="session")
def decoys(admin_conn, user_conn):
    made = Decoys(admin_conn, user_conn)
    try:
        made.create()
        yield made
    finally:
        made.delete()


@pytest.fixture(autouse=True)
def decoys_survive(request, decoys):
    """After every test of the tier (teardowns, cleanups, janitors): every decoy is there."""
    yield
    assert decoys.missing() == [], "a resource without a shard label was deleted"
