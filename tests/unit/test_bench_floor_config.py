"""The floor's nova-compute.conf is the profile's template, rendered outside Ansible."""

import configparser

import pytest

from shard_jobs import bench_floor

AUTH = {
    "password": {
        "auth_url": "http://keystone.example/v3",
        "username": "ci",
        "password": "pw",
        "project_name": "ci",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
    },
    "v3applicationcredential": {
        "auth_url": "http://keystone.example/v3",
        "application_credential_id": "0123",
        "application_credential_secret": "s3cret",
    },
}


@pytest.mark.parametrize("auth_type", sorted(AUTH))
def test_the_floor_renders_the_profile_s_template_with_every_auth_type(tmp_path, auth_type):
    secret = {
        "transport_url": "rabbit://u:p@127.0.0.1:5672/v",
        "cloud": {"auth_type": auth_type, "auth": AUTH[auth_type]},
    }
    conf = configparser.ConfigParser(interpolation=None)
    conf.read_string(bench_floor.render_config(secret, "0123456789abcdef" * 2, tmp_path))
    for section in ("placement", "neutron", "service_user"):
        assert conf[section]["auth_type"] == auth_type
        assert conf[section]["auth_url"] == "http://keystone.example/v3"
