"""shard_tempest: tempest ran on the shard, with accounts of the run's own; every server
it booted ran there; its results and page are in the logs; no password is."""

import csv

import pytest
import yaml


@pytest.fixture(scope="module")
def logs(workspace):
    return workspace / "log" / "tempest"


@pytest.fixture(scope="module")
def results(host, logs):
    return list(csv.DictReader(host.file(str(logs / "results.csv")).content_string.splitlines()))


def test_tests_passed_and_none_failed(results):
    statuses = [r["status"] for r in results]
    assert statuses.count("success") >= 5
    assert not {"fail", "failure", "uxsuccess"} & set(statuses)


def test_results_and_page_are_in_the_logs(host, logs):
    for name in ("tempest.subunit", "tempest.html", "tempest-run.txt", "tempest.conf"):
        assert host.file(str(logs / name)).size > 0, name


def test_the_accounts_file_is_private_and_no_password_is_in_the_logs(host, workspace, logs):
    accounts = host.file(str(workspace / "tempest-accounts.yaml"))
    assert accounts.mode == 0o600
    passwords = [a["password"] for a in yaml.safe_load(accounts.content_string)]
    assert len(passwords) == 8 and all(passwords)
    for name in ("tempest.conf", "tempest.log", "tempest-run.txt"):
        text = host.file(str(logs / name)).content_string
        assert not [p for p in passwords if p in text], name


def test_every_server_of_the_run_s_projects_ran_on_the_shard(conn, label):
    described = f"shard-jobs label={label} "
    projects = [p.id for p in conn.identity.projects() if described in f"{p.description} "]
    assert len(projects) == 4
    hosts = []
    for project in projects:
        for deleted in ("", "&deleted=true"):
            url = f"/servers/detail?all_tenants=1&project_id={project}{deleted}"
            hosts += [s["OS-EXT-SRV-ATTR:host"] for s in conn.compute.get(url).json()["servers"]]
    assert hosts and set(hosts) == {label}
