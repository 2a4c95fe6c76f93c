"""bench_tempest.py (the bench's from-scratch-tempest cycle): tempest.conf from the
role's own settings and template, and the modules run as processes."""

import configparser

import pytest
import yaml

from shard_jobs import bench_tempest, paths
from shard_jobs.bench_floor import FloorError

LABEL = "shard-0123abcd4567"
ACCOUNTS = {
    "identity_uri": "http://keystone.example/v3/",
    "region_name": "RegionOne",
    "image": {"id": "img-1", "name": "cirros"},
    "flavor": {"id": "flv-1", "name": f"{LABEL}-flavor"},
    "alt_flavor": {"id": "flv-2", "name": f"{LABEL}-flavor-alt"},
}


def conf_for(tmp_path, profile_config):
    context = {
        "_shard_tempest_log_dir": str(tmp_path / "logs"),
        "_shard_label": LABEL,
        "_shard_tempest_dir": str(tmp_path / "tempest"),
        "_shard_tempest_accounts_file": str(tmp_path / "accounts.yaml"),
        "_shard_tempest_accounts": ACCOUNTS,
        "shard_wait_timeout": 300,
    }
    conf = configparser.ConfigParser(interpolation=None)
    conf.read_string(bench_tempest.render_conf(context, profile_config))
    return conf


def test_tempest_conf_is_the_role_s_settings_with_the_profile_s_over_them(tmp_path):
    profile = yaml.safe_load(
        (paths.ROLES / "shard" / "profiles" / "nova-compute" / "profile.yaml").read_text()
    )
    conf = conf_for(tmp_path, profile["tempest"]["config"])
    # The role's: the accounts the module made, the run's label on everything.
    assert conf["DEFAULT"]["resource_name_prefix"] == LABEL
    assert conf["auth"]["use_dynamic_credentials"] == "false"
    assert conf["auth"]["test_accounts_file"] == str(tmp_path / "accounts.yaml")
    assert conf["identity"]["uri_v3"] == "http://keystone.example/v3/"
    assert conf["compute"]["flavor_ref"] == "flv-1"
    assert conf["compute"]["flavor_ref_alt"] == "flv-2"
    assert conf["compute"]["build_timeout"] == "300"
    # The profile's, merged into the same sections.
    assert conf["compute"]["min_microversion"] == "2.37"
    assert conf["service_available"]["neutron"] == "false"
    assert conf["compute-feature-enabled"]["pause"] == "true"


def test_the_profile_s_settings_win_and_keep_the_role_s_others(tmp_path):
    conf = conf_for(tmp_path, {"compute": {"flavor_ref": "mine"}, "new": {"x": 1}})
    assert conf["compute"]["flavor_ref"] == "mine"
    assert conf["compute"]["image_ref"] == "img-1"
    assert conf["new"]["x"] == "1"


def test_a_module_s_failure_is_one_line_naming_it():
    # The real module: it refuses the label before it talks to any cloud.
    with pytest.raises(FloorError) as err:
        bench_tempest.run_module(
            "shard_tempest_accounts",
            {
                "cloud": {"auth_type": "none", "endpoint": "http://127.0.0.1:9"},
                "label": "nope",
                "state": "absent",
            },
        )
    msg = str(err.value)
    assert msg.startswith("shard_tempest_accounts: ")
    assert "nope" in msg and "\n" not in msg


def test_a_module_that_prints_no_result_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "broken.py").write_text("import sys\nsys.exit('no JSON here')\n")
    monkeypatch.setattr(bench_tempest.paths, "LIBRARY", tmp_path)
    with pytest.raises(FloorError, match=r"^broken printed no result \(exit 1\): no JSON here$"):
        bench_tempest.run_module("broken", {})


@pytest.mark.parametrize(
    "auth_type, auth_url",
    [
        # Refused as it connects (an unknown auth type) ...
        ("no-such-auth", "http://127.0.0.1:9/v3"),
        # ... or at its first call (nothing listens there).
        ("password", "http://127.0.0.1:9/v3"),
    ],
)
def test_a_cloud_given_inline_never_shows_its_password(auth_type, auth_url):
    cloud = {
        "auth_type": auth_type,
        "auth": {
            "auth_url": auth_url,
            "username": "u",
            "password": "S3CRET-PW-0042",
            "project_name": "p",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
    }
    with pytest.raises(FloorError) as err:
        bench_tempest.run_module(
            "shard_tempest_accounts", {"cloud": cloud, "label": LABEL, "state": "absent"}
        )
    assert "S3CRET-PW-0042" not in str(err.value)
    assert str(err.value).startswith("shard_tempest_accounts")
