"""Tempest on a shard (module_utils/shard_tempest.py): the accounts' names, how a run's
results read, and which of its servers did not land on the shard."""

import csv
import io

import pytest
from ansible.module_utils import shard_tempest as tempest

LABEL = "shard-0123abcd4567"
HEADER = "test,status,start_time,stop_time\n"
STAMP = "2026-11-25 13:20:01+00:00"


def csv_of(*rows):
    """subunit2csv's output (its csv.writer quotes ids with commas): the header, then rows."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["test", "status", "start_time", "stop_time"])
    writer.writerows([test, status, STAMP, STAMP] for test, status in rows)
    return out.getvalue()


# -- names


def test_names_of_a_run_s_accounts_and_flavor():
    assert tempest.project_name_for(LABEL, 0) == "shard-0123abcd4567-tempest-0"
    assert tempest.user_name_for(LABEL, 3, "reader") == "shard-0123abcd4567-tempest-3-reader"
    assert tempest.alt_flavor_name_for(LABEL) == "shard-0123abcd4567-flavor-alt"


def test_accounts_project_by_project_one_user_per_persona():
    assert tempest.accounts_for(LABEL, 2) == [
        (f"{LABEL}-tempest-0", f"{LABEL}-tempest-0-member", "member"),
        (f"{LABEL}-tempest-0", f"{LABEL}-tempest-0-reader", "reader"),
        (f"{LABEL}-tempest-1", f"{LABEL}-tempest-1-member", "member"),
        (f"{LABEL}-tempest-1", f"{LABEL}-tempest-1-reader", "reader"),
    ]
    assert tempest.accounts_for(LABEL, 0) == []
    assert len(tempest.accounts_for(LABEL, tempest.DEFAULT_PROJECTS)) == 8


@pytest.mark.parametrize("count", [1, tempest.DEFAULT_PROJECTS, tempest.MAX_PROJECTS])
def test_a_number_of_projects_in_range_is_fine(count):
    assert tempest.projects_error(count) is None


@pytest.mark.parametrize("count", [0, -1, tempest.MAX_PROJECTS + 1, True, False, "4", 2.0, None])
def test_any_other_number_of_projects_is_refused_in_one_line(count):
    error = tempest.projects_error(count)

    assert error is not None
    assert error.startswith("invalid number of tempest projects ")
    assert repr(str(count)) in error
    assert f"expected 1 to {tempest.MAX_PROJECTS}" in error
    assert "\n" not in error


def test_a_long_bad_number_of_projects_is_shown_cut():
    error = tempest.projects_error("9" * 200)

    assert repr("9" * 20) in error
    assert "9" * 21 not in error


# -- test names


@pytest.mark.parametrize(
    "test_id, name",
    [
        (
            "tempest.api.compute.servers.test_servers.ServersTestJSON.test_create"
            "[id-5de47127-9977-400a-936f-abcfbec1218f,smoke]",
            "tempest.api.compute.servers.test_servers.ServersTestJSON.test_create",
        ),
        ("tempest.api.compute.a.B.test_c[id-1]", "tempest.api.compute.a.B.test_c"),
        ("  tempest.api.compute.a.B.test_c[id-1]  ", "tempest.api.compute.a.B.test_c"),
        ("tempest.api.compute.a.B.test_c", "tempest.api.compute.a.B.test_c"),
        ("setUpClass (tempest.api.compute.a.B)", "tempest.api.compute.a.B"),
        ("tearDownClass (tempest.api.compute.a.B)", "tempest.api.compute.a.B"),
        # Only the trailing attributes go.
        ("tempest.a[x].B.test_c[id-1]", "tempest.a[x].B.test_c"),
    ],
)
def test_a_test_s_name_without_its_attributes(test_id, name):
    assert tempest.test_name(test_id) == name


# -- results


def test_counts_of_a_run_with_a_class_whose_setup_failed():
    text = csv_of(
        ("tempest.api.compute.a.A.test_one[id-1,smoke]", "success"),
        ("tempest.api.compute.a.A.test_two[id-2]", "success"),
        ("tempest.api.compute.a.A.test_expected[id-3]", "xfail"),
        ("tempest.api.compute.b.B.test_broken[id-4,smoke]", "fail"),
        ("tempest.api.compute.b.B.test_lucky[id-5]", "uxsuccess"),
        ("setUpClass (tempest.api.compute.c.C)", "fail"),
        ("tempest.api.compute.d.D.test_skipped[id-6]", "skip"),
    )

    got = tempest.results(text)

    assert got == dict(
        passed=3,
        failed=3,
        skipped=1,
        total=7,
        failures=[
            "tempest.api.compute.b.B.test_broken",
            "tempest.api.compute.b.B.test_lucky",
            "tempest.api.compute.c.C",
        ],
    )


def test_only_a_test_s_last_status_counts():
    text = csv_of(
        ("tempest.a.A.test_retried[id-1]", "fail"),
        ("tempest.a.A.test_retried[id-1]", "success"),
        ("tempest.a.A.test_late[id-2]", "success"),
        ("tempest.a.A.test_late[id-2]", "fail"),
        ("tempest.a.A.test_progress[id-3]", "inprogress"),
        ("tempest.a.A.test_progress[id-3]", "skip"),
    )

    got = tempest.results(text)

    assert (got["passed"], got["failed"], got["skipped"], got["total"]) == (1, 1, 1, 3)
    assert got["failures"] == ["tempest.a.A.test_late"]


def test_a_test_named_twice_fails_once_in_the_names_and_the_names_are_sorted():
    text = csv_of(
        ("tempest.z.Z.test_z[id-9]", "fail"),
        ("tempest.a.A.test_a[id-1]", "fail"),
        ("tempest.a.A.test_a[id-1,smoke]", "fail"),
    )

    got = tempest.results(text)

    assert got["failures"] == ["tempest.a.A.test_a", "tempest.z.Z.test_z"]
    assert got["failed"] == 3  # ids, as the stream has them


def test_a_test_that_did_not_end_failed_and_blank_rows_do_not_count():
    # (cut off mid-run: its last status is neither a pass nor a skip)
    text = (
        csv_of(("tempest.a.A.test_a[id-1]", "inprogress"), ("", "fail"), ("  ", "success")) + "\n"
    )

    got = tempest.results(text)

    assert got == dict(passed=0, failed=1, skipped=0, total=1, failures=["tempest.a.A.test_a"])


@pytest.mark.parametrize(
    "kind, name, expected",
    [
        ("projects", "shard-0123abcd4567-tempest-0", True),
        ("projects", "shard-0123abcd4567-tempest-15", True),
        ("projects", "shard-0123abcd4567-tempest-16", False),
        ("projects", "shard-ffff00001111-tempest-0", False),  # another run's
        ("projects", "shard-ci", False),
        ("projects", "shard-0123abcd4567-tempest-0-x", False),
        ("users", "shard-0123abcd4567-tempest-3-member", True),
        ("users", "shard-0123abcd4567-tempest-3-reader", True),
        ("users", "shard-0123abcd4567-tempest-3-admin", False),
        ("users", "shard-0123abcd4567-tempest-3", False),
        ("users", None, False),
    ],
)
def test_only_the_names_a_run_gives_its_accounts_are_its(kind, name, expected):
    assert tempest.is_account_name(kind, name, "shard-0123abcd4567") is expected


def test_an_empty_run():
    empty = dict(passed=0, failed=0, skipped=0, total=0, failures=[])
    assert tempest.results("") == empty
    assert tempest.results(HEADER) == empty


# -- landing


def server(name, host, status="ACTIVE"):
    return dict(id=f"id-{name}", name=name, status=status, host=host)


def test_servers_on_the_shard_and_servers_that_never_ran_are_fine():
    servers = [
        server("on-shard", LABEL),
        server("deleted-on-shard", LABEL, "DELETED"),
        server("refused", None, "ERROR"),
        server("deleted-before-scheduling", None, "DELETED"),
    ]

    assert tempest.landing_errors(servers, LABEL) == []


def test_a_server_elsewhere_or_unscheduled_is_named_one_line_each():
    servers = [
        server("on-shard", LABEL),
        server("elsewhere", "compute-1", "DELETED"),
        server("failed-elsewhere", "compute-2", "ERROR"),
        server("stuck", None, "BUILD"),
    ]

    errors = tempest.landing_errors(servers, LABEL)

    assert errors == [
        f"server elsewhere (id-elsewhere) ran on compute-1, not on the shard {LABEL}",
        f"server failed-elsewhere (id-failed-elsewhere) ran on compute-2, not on the shard {LABEL}",
        f"server stuck (id-stuck) ran on no host, not on the shard {LABEL}",
    ]


def test_the_profile_s_selection_unless_the_job_gives_its_own():
    section = {
        "regex": r"^tempest\.api\.compute\.",
        "exclude": [{"regex": "a", "reason": "x"}, {"regex": r"b\.c", "reason": "y"}],
    }
    assert tempest.selection(section) == [r"^tempest\.api\.compute\.", r"a|b\.c"]
    assert tempest.selection(section, "^mine", "") == ["^mine", r"a|b\.c"]
    assert tempest.selection(section, "", "theirs") == [r"^tempest\.api\.compute\.", "theirs"]
    assert tempest.selection({"regex": "r"}) == ["r", ""]
