"""A service's keystoneauth options from the jobs' account (module_utils/shard_auth.py),
which account the service under test gets (service_auth, else the job's own), the
Jinja filters, and the configurations rendered with them, real and masked."""

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
SERVICE_PASSWORD = "svc-Passw0rd-x9"
# The service under test's account: flat keystoneauth options, as in its section.
SERVICE_AUTH = {
    "auth_url": "http://cloud.example:5000/v3",
    "username": "shard-service",
    "password": SERVICE_PASSWORD,
    "project_name": "service",
    "user_domain_name": "Default",
    "project_domain_name": "Default",
}
SERVICE_APP_SECRET = "svc-app-S3cret-x9"
SERVICE_APP_AUTH = {
    "auth_type": "v3applicationcredential",
    "auth_url": "http://cloud.example:5000/v3",
    "application_credential_id": "4567cdef",
    "application_credential_secret": SERVICE_APP_SECRET,
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
        "[creds | shard_service_auth, creds | shard_masked | shard_service_auth,"
        " bad | shard_auth_error, split | shard_service_auth, split | shard_service_auth_note,"
        " creds | shard_service_auth_note, half | shard_service_auth_error]",
        creds={"cloud": APP_CLOUD},
        split={"cloud": APP_CLOUD, "service_auth": SERVICE_AUTH},
        bad={"auth_type": "token"},
        half={"service_auth": {"username": "x"}},
    )
    real, masked, error, split, split_note, note, service_error = result["msg"]
    assert [tuple(pair) for pair in real] == auth.service_auth(APP_CLOUD)
    assert ["application_credential_secret", secrets.MARKER] in masked
    assert "not supported" in error
    assert [tuple(pair) for pair in split] == auth.service_options(
        {"cloud": APP_CLOUD, "service_auth": SERVICE_AUTH}
    )
    assert split_note == auth.service_account_note({"service_auth": SERVICE_AUTH})
    assert "admin" in note and "no service_auth" in note
    assert service_error == "service_auth for auth_type password lacks auth_url, password"


@pytest.mark.parametrize("cloud", [PASSWORD_CLOUD, APP_CLOUD], ids=["password", "app-cred"])
@pytest.mark.parametrize(
    "service, plugin", [(SERVICE_AUTH, "password"), (SERVICE_APP_AUTH, "v3applicationcredential")]
)
def test_the_service_gets_service_auth_and_never_the_jobs_account(cloud, service, plugin):
    split = auth.service_options({"cloud": cloud, "service_auth": service})
    assert split[0] == ("auth_type", plugin)
    assert dict(split) == dict(service, auth_type=plugin)
    job = cloud["auth"]
    job_secrets = {job.get("password"), job.get("application_credential_secret")}
    assert not {v for _k, v in split} & job_secrets
    assert auth.service_account_error({"cloud": cloud, "service_auth": service}) == ""


def test_without_service_auth_the_service_gets_the_jobs_account_and_says_so():
    for credentials in ({"cloud": PASSWORD_CLOUD}, {"cloud": PASSWORD_CLOUD, "service_auth": {}}):
        assert auth.service_options(credentials) == auth.service_auth(PASSWORD_CLOUD)
        assert auth.service_account_error(credentials) == ""
        assert "job's own account" in auth.service_account_note(credentials)
    assert "not the job's" in auth.service_account_note({"service_auth": SERVICE_AUTH})


@pytest.mark.parametrize(
    "service, error",
    [
        ("shard-service", "service_auth must be a mapping"),
        ({"auth_type": "token", "token": "t"}, "service_auth: auth_type 'token' is not supported"),
        (
            dict(SERVICE_AUTH, password=""),
            "service_auth for auth_type password lacks password",
        ),
        (
            {"auth_type": "v3applicationcredential", "auth_url": "u", "password": SERVICE_PASSWORD},
            "service_auth for auth_type v3applicationcredential lacks "
            "application_credential_secret",
        ),
    ],
)
def test_an_unusable_service_auth_is_named_by_its_keys_only(service, error):
    found = auth.service_account_error({"cloud": PASSWORD_CLOUD, "service_auth": service})
    assert found.startswith(error)
    assert SERVICE_PASSWORD not in found and PASSWORD not in found


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


@pytest.mark.parametrize("profile", ["nova-compute", "glance-api"])
def test_the_rendered_configuration_names_the_service_user_not_the_jobs(profile):
    """With service_auth, every keystoneauth section of the shard's configuration holds
    the service's account and nothing of the job's (admin) account, real or masked."""
    template = paths.ROLES / f"shard/profiles/{profile}/templates/{profile}.conf.j2"
    credentials = {
        "cloud": PASSWORD_CLOUD,
        "service_auth": SERVICE_AUTH,
        "transport_url": "rabbit://u:p@h/v",
        "glance": {
            "database_connection": "mysql+pymysql://g:p@h/glance",
            "default_store": "file",
            "stores": {"file": {"type": "file", "filesystem_store_datadir": "/x"}},
        },
    }
    variables = dict(
        _shard_host="shard-0123456789ab",
        _shard_label="shard-0123456789ab",
        shard_build_id="0123456789abcdef0123456789abcdef",
        _shard_options={"compute_driver": "fake.FakeDriver", "bind_host": "127.0.0.1", "port": 1},
        _shard_state="/tmp/state",
        _shard_project={"src_dir": "src/glance"},
        ansible_facts={"user_dir": "/home/zuul"},
    )
    sections = 3 if profile == "nova-compute" else 1
    for creds in (credentials, secrets.masked(credentials)):
        text = jinja(
            f"lookup('ansible.builtin.template', '{template}')", _shard_cloud=creds, **variables
        )["msg"]
        assert text.count("username = shard-service\n") == sections, text
        assert text.count("project_name = service\n") == sections
        assert "shard-ci" not in text and PASSWORD not in text
    assert text.count(f"password = {secrets.MARKER}\n") == sections
