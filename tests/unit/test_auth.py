"""A service's keystoneauth options from the jobs' account (module_utils/shard_auth.py),
the Jinja filter, and the configurations rendered with them, real and masked."""

import pytest
from unit_helpers import jinja

from shard_jobs import paths
from shard_jobs.rules import auth, secrets

SECRET = "app-cred-S3cret-x9"
PASSWORD = "pass-W0rd-x9"
PASSWORD_CLOUD = {
    "auth": {
        "auth_url": "http://cloud.example:5000/v3",
        "username": "shard-ci",
        "password": PASSWORD,
        "project_name": "shard-ci",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
    },
    "region_name": "RegionOne",
}
APP_CLOUD = {
    "auth_type": "v3applicationcredential",
    "auth": {
        "auth_url": "http://cloud.example:5000/v3",
        "application_credential_id": "0123abcd",
        "application_credential_secret": SECRET,
    },
    "region_name": "RegionOne",
}


def test_a_password_account_gives_the_password_plugin_and_its_keys():
    assert auth.service_auth(PASSWORD_CLOUD) == [
        ("auth_type", "password"),
        ("auth_url", "http://cloud.example:5000/v3"),
        ("username", "shard-ci"),
        ("password", PASSWORD),
        ("project_name", "shard-ci"),
        ("user_domain_name", "Default"),
        ("project_domain_name", "Default"),
    ]
    assert auth.service_auth(dict(PASSWORD_CLOUD, auth_type="v3password"))[0] == (
        "auth_type",
        "password",
    )


def test_an_application_credential_gives_its_plugin_and_only_its_keys():
    # A stray project or password key would make keystoneauth refuse the section.
    stray = dict(APP_CLOUD, auth=dict(APP_CLOUD["auth"], project_name="x", password="y"))
    assert auth.service_auth(stray) == [
        ("auth_type", "v3applicationcredential"),
        ("auth_url", "http://cloud.example:5000/v3"),
        ("application_credential_id", "0123abcd"),
        ("application_credential_secret", SECRET),
    ]


@pytest.mark.parametrize(
    "cloud, error",
    [
        (PASSWORD_CLOUD, ""),
        (APP_CLOUD, ""),
        ({"auth_type": "token", "auth": {}}, "auth_type 'token' is not supported"),
        (
            {"auth_type": "v3applicationcredential", "auth": {"auth_url": "u", "password": "p"}},
            "lacks application_credential_secret, "
            "application_credential_id or application_credential_name",
        ),
        ({"auth": {"auth_url": "u", "username": "x"}}, "lacks password"),
    ],
)
def test_an_unusable_auth_is_named_by_its_keys_only(cloud, error):
    found = auth.auth_error(cloud)
    assert error in found if error else found == ""
    assert PASSWORD not in found


def test_the_secret_is_masked_and_found_by_the_scan():
    masked = secrets.masked({"cloud": APP_CLOUD})
    assert masked["cloud"]["auth"]["application_credential_secret"] == secrets.MARKER
    # Its id too (the key names a credential): not needed to read a log.
    assert masked["cloud"]["auth"]["application_credential_id"] == secrets.MARKER
    assert masked["cloud"]["auth"]["auth_url"] == APP_CLOUD["auth"]["auth_url"]
    assert secrets.secret_values({"cloud": APP_CLOUD}) == {
        "cloud.auth.application_credential_id": "0123abcd",
        "cloud.auth.application_credential_secret": SECRET,
    }
    assert secrets.secrets_found(f"x = {SECRET}\n".encode(), {"app": SECRET}) == [("app", "raw")]


def test_the_filters_give_the_same_options():
    result = jinja(
        "[cloud | shard_service_auth, cloud | shard_masked | shard_service_auth,"
        " bad | shard_auth_error]",
        cloud=APP_CLOUD,
        bad={"auth_type": "token"},
    )
    real, masked, error = result["msg"]
    assert [tuple(pair) for pair in real] == auth.service_auth(APP_CLOUD)
    assert ["application_credential_secret", secrets.MARKER] in masked
    assert "not supported" in error


@pytest.mark.parametrize("cloud", [PASSWORD_CLOUD, APP_CLOUD], ids=["password", "app-cred"])
def test_nova_compute_conf_carries_the_account_in_every_auth_section(cloud):
    template = paths.ROLES / "shard/profiles/nova-compute/templates/nova-compute.conf.j2"
    variables = dict(
        _shard_host="shard-0123456789ab",
        shard_build_id="0123456789abcdef0123456789abcdef",
        _shard_options={"compute_driver": "fake.FakeDriver"},
        _shard_state="/tmp/state",
        _shard_cloud={"cloud": cloud, "transport_url": "rabbit://u:p@h/v"},
    )
    real = jinja(f"lookup('ansible.builtin.template', '{template}')", **variables)["msg"]
    variables["_shard_cloud"] = secrets.masked(variables["_shard_cloud"])
    masked = jinja(f"lookup('ansible.builtin.template', '{template}')", **variables)["msg"]
    plugin = auth.service_auth(cloud)[0][1]
    for text in (real, masked):
        sections = text.split("\n[")
        for name in ("placement", "neutron", "service_user"):
            (section,) = [s for s in sections if s.startswith(name + "]")]
            assert f"auth_type = {plugin}\n" in section
    secret = cloud["auth"].get("password") or cloud["auth"]["application_credential_secret"]
    assert real.count(secret) == 3
    assert secret not in masked and masked.count(f"= {secrets.MARKER}\n") >= 3
