# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Tempest on a shard: the one home of its accounts' names and of how a run's results read.

Tempest runs with pre-provisioned accounts that the job creates: projects and
users named and described after the run's label (so that teardown and the
janitor find them, and everything tempest creates in them), each project with
one user per persona tempest's compute tests ask for. Not tempest's dynamic
credentials: the shard's flavors are private (nobody else may boot on the
shard), and only projects created before the run can be given access to them.

Used by the modules shard_tempest_accounts and shard_tempest_result, and by
./shard and the tests as ``shard_jobs.rules.tempest``. Standard library only,
and no import of another module_utils file.
"""

import csv
import io
import re

# The personas of tempest's compute tests, as roles: the primary credentials
# are a project member; its reader is another user of the same project
# (tempest's preprov_creds takes a project's reader to go with its member).
PERSONAS = ("member", "reader")
# Projects (each with one user per persona): concurrent workers hold one each,
# and a test class may take an alternate project besides its own.
DEFAULT_PROJECTS = 4
MAX_PROJECTS = 16

# A test id as tempest writes it: the dotted path, then [id-<uuid>,attrs].
_ATTRS_RE = re.compile(r"\[[^\]]*\]$")
# setUpClass (module.Class): a class whose setup failed or was skipped.
_CLASS_FIXTURE_RE = re.compile(r"^(setUpClass|tearDownClass) \((?P<cls>[\w.]+)\)$")
# subunit2csv's statuses that count as what. Any other last status (a test
# cut off mid-run: inprogress, exists, unknown) counts as failed.
PASSED = ("success", "xfail")
SKIPPED = ("skip",)
# The names of a run's accounts, exactly (what teardown trusts, with the label).
_PROJECT_RE = r"(?P<label>shard-[0-9a-f]{12})-tempest-(?P<index>\d{1,2})"
_ACCOUNT_RE = {
    "projects": re.compile(_PROJECT_RE),
    "users": re.compile(_PROJECT_RE + "-(?:" + "|".join(PERSONAS) + ")"),
}


def project_name_for(label, index):
    """<label>-tempest-<i>: the name of the run's i-th tempest project."""
    return f"{label}-tempest-{index}"


def user_name_for(label, index, persona):
    """<label>-tempest-<i>-<persona>: the user of that persona in the i-th project."""
    return f"{project_name_for(label, index)}-{persona}"


def alt_flavor_name_for(label):
    """<label>-flavor-alt: tempest's second flavor (flavor_ref_alt), with the shard's trait."""
    return f"{label}-flavor-alt"


def is_account_name(kind, name, label):
    """Whether I(name) is exactly the name of one of I(label)'s tempest projects or
    users (I(kind): projects or users): the run names them, nobody else may."""
    match = _ACCOUNT_RE[kind].fullmatch(name or "")
    return (
        bool(match) and match.group("label") == label and int(match.group("index")) < MAX_PROJECTS
    )


def projects_error(count):
    """Why I(count) is not a number of tempest projects, or None."""
    if not isinstance(count, bool) and isinstance(count, int) and 1 <= count <= MAX_PROJECTS:
        return None
    return f"invalid number of tempest projects {str(count)[:20]!r}: expected 1 to {MAX_PROJECTS}"


def accounts_for(label, count):
    """[(project name, user name, persona)] of a run's accounts, project by project."""
    return [
        (project_name_for(label, i), user_name_for(label, i, persona), persona)
        for i in range(count)
        for persona in PERSONAS
    ]


def selection(tempest, regex="", exclude=""):
    """[regex, exclude regex] of a run: the job's own (I(regex), I(exclude)) where
    given, else the profile's I(tempest) section's: its regex, and its exclude
    entries' regexes as alternatives (each entry also says why)."""
    return [
        regex or tempest["regex"],
        exclude or "|".join(entry["regex"] for entry in tempest.get("exclude") or []),
    ]


def test_name(test_id):
    """A test's name without tempest's attributes ([id-...,smoke]); a class fixture's
    (setUpClass (a.b.C)) as the class's."""
    test_id = _ATTRS_RE.sub("", test_id.strip())
    match = _CLASS_FIXTURE_RE.match(test_id)
    return match.group("cls") if match else test_id


def results(csv_text):
    """Counts and failed tests of a run, from subunit2csv's output of its stream.

    dict(passed, failed, skipped, total, failures): failures are test names
    (sorted, without attributes). A class whose setup failed counts as one
    failure, named by the class. Only the last status of a test counts (a
    stream may carry a test's progress before its end); a test that did not
    end in a pass or a skip failed.
    """
    last = {}
    for row in csv.DictReader(io.StringIO(csv_text)):
        test_id = (row.get("test") or "").strip()
        if test_id:
            last[test_id] = (row.get("status") or "").strip()
    statuses = list(last.values())
    failed = [t for t, s in last.items() if s not in PASSED and s not in SKIPPED]
    return dict(
        passed=sum(s in PASSED for s in statuses),
        failed=len(failed),
        skipped=sum(s in SKIPPED for s in statuses),
        total=len(statuses),
        failures=sorted({test_name(t) for t in failed}),
    )


def landing_errors(servers, host):
    """What of the run's servers did not land on the shard's host: one line each.

    servers: dicts with id, name, status and host (None if never scheduled),
    including deleted ones. A server refused before scheduling (no host, in
    ERROR) never ran anywhere and is not an error.
    """
    errors = []
    for server in servers:
        where = server.get("host")
        if where == host:
            continue
        if where is None and server.get("status") in ("ERROR", "DELETED"):
            continue
        errors.append(
            f"server {server.get('name')} ({server.get('id')}) ran on {where or 'no host'}, "
            f"not on the shard {host}"
        )
    return errors
