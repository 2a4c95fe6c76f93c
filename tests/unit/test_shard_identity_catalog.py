"""shard_identity_catalog: creates only what keystone lacks, against a fake identity proxy."""

import json

import pytest
import shard_identity_catalog as module

SECRET = "s3cret-nova-password"

CATALOG = dict(
    projects=["service"],
    roles=["service"],
    users=[dict(name="nova", password=SECRET, project="service", roles=["admin", "service"])],
    services=[dict(name="nova", type="compute", url="http://127.0.0.1:8774/v2.1")],
)

EVERYTHING = [
    "project:service",
    "role:admin",
    "role:service",
    "user:nova",
    "grant:nova/service/admin",
    "grant:nova/service/service",
    "service:nova",
    "endpoint:nova/public",
]


def identity_mutations(cloud):
    return [c[0] for c in cloud.mutations if c[0].startswith("identity.")]


def test_first_run_creates_everything(cloud, run_module):
    result = run_module(module, CATALOG)

    assert result["changed"] is True
    assert result["created"] == EVERYTHING
    identity = cloud.identity
    assert [p.name for p in identity.projects_] == ["service"]
    assert sorted(r.name for r in identity.roles_) == ["admin", "service"]
    (user,) = identity.users_
    assert user.password == SECRET
    assert len(identity.assignments) == 2
    (endpoint,) = identity.endpoints_
    assert (endpoint.interface, endpoint.url, endpoint.region_id) == (
        "public",
        "http://127.0.0.1:8774/v2.1",
        "RegionOne",
    )


def test_second_run_is_a_no_op(cloud, run_module):
    run_module(module, CATALOG)
    cloud.calls.clear()

    result = run_module(module, CATALOG)

    assert result["changed"] is False
    assert result["created"] == []
    assert identity_mutations(cloud) == []


def test_only_what_is_missing_is_created(cloud, run_module):
    run_module(module, CATALOG)
    cloud.calls.clear()
    catalog = dict(CATALOG)
    catalog["users"] = CATALOG["users"] + [
        dict(name="placement", password="other", project="service", roles=["service"])
    ]
    catalog["services"] = [dict(CATALOG["services"][0], interface="internal")]

    result = run_module(module, catalog)

    assert result["created"] == [
        "user:placement",
        "grant:placement/service/service",
        "endpoint:nova/internal",
    ]
    assert identity_mutations(cloud) == [
        "identity.create_user",
        "identity.assign_project_role_to_user",
        "identity.create_endpoint",
    ]


def test_an_existing_users_password_is_left_alone(cloud, run_module):
    run_module(module, CATALOG)
    catalog = dict(CATALOG)
    catalog["users"] = [dict(CATALOG["users"][0], password="changed")]

    result = run_module(module, catalog)

    assert result["changed"] is False
    assert cloud.identity.users_[0].password == SECRET


def test_nothing_of_the_catalog_asked_reads_nothing_of_it(cloud, run_module):
    # A service's user, without admin, makes its own application credential with
    # this module: keystone would refuse it the domains, roles, users and catalog.
    result = run_module(module, {})

    assert result["changed"] is False and result["created"] == []
    assert [c[0] for c in cloud.calls if c[0].startswith("identity.")] == []


def test_check_mode_reports_and_creates_nothing(cloud, run_module):
    result = run_module(module, CATALOG, check_mode=True)

    assert result["changed"] is True
    assert result["created"] == EVERYTHING
    assert identity_mutations(cloud) == []
    assert cloud.identity.projects_ == [] and cloud.identity.users_ == []


def test_passwords_are_not_logged(cloud, run_module):
    result = run_module(module, CATALOG)

    assert SECRET not in json.dumps(result)


class _Stop(Exception):
    pass


def _checker(monkeypatch, error):
    """authenticates() on a stand-in module whose keystone answers with I(error)."""
    from types import SimpleNamespace

    from keystoneauth1.identity import v3

    def get_token(self, session):
        raise error

    monkeypatch.setattr(v3.ApplicationCredential, "get_token", get_token)
    failures = []

    def fail_json(**kw):
        failures.append(kw["msg"])
        raise _Stop

    conn = SimpleNamespace(
        config=SimpleNamespace(get_auth_args=lambda: {"auth_url": "http://keystone.example/v3"}),
        session=SimpleNamespace(verify=True),
    )
    return SimpleNamespace(conn=conn, fail_json=fail_json), failures


def test_a_refused_application_credential_is_made_again(monkeypatch):
    from keystoneauth1 import exceptions

    stand_in, failures = _checker(monkeypatch, exceptions.Unauthorized())
    assert module.IdentityCatalogModule.authenticates(stand_in, "id", SECRET) is False
    assert failures == []


def test_a_keystone_that_does_not_answer_never_makes_the_credential_again(monkeypatch):
    # Made again, it would get a new id under the jobs that use it.
    from keystoneauth1 import exceptions

    stand_in, failures = _checker(monkeypatch, exceptions.ConnectFailure("refused"))
    with pytest.raises(_Stop):
        module.IdentityCatalogModule.authenticates(stand_in, "id", SECRET)
    assert failures == ["keystone did not check the application credential: ConnectFailure"]
