"""shard_tempest_accounts and shard_tempest_result against the fake cloud."""

import csv
import io
import json
import os
import stat

import pytest
import shard_tempest_accounts as accounts_module
import shard_tempest_result as result_module
import yaml
from ansible.module_utils.shard_labels import description_for, label_of_description
from fake_cloud import OWN_PROJECT

LABEL = "shard-0123abcd4567"
OTHER = "shard-ffff00001111"
TRAIT_SPEC = {"trait:CUSTOM_SHARD_0123ABCD4567": "required"}
FLAVOR = f"{LABEL}-flavor"
ALT = f"{LABEL}-flavor-alt"
PROJECTS = [f"{LABEL}-tempest-{i}" for i in range(4)]
USERS = [f"{p}-{persona}" for p in PROJECTS for persona in ("member", "reader")]


def one_line(result):
    assert result.get("failed") is True, result
    assert result["msg"] and "\n" not in result["msg"], result["msg"]
    return result["msg"]


def changes(cloud):
    """What changed the cloud: the fake's mutations, and flavor access given."""
    return cloud.mutations + cloud.called("compute.flavor_add_tenant_access")


# -- shard_tempest_accounts


@pytest.fixture
def shard(cloud):
    """A labelled shard's private flavor (with the trait), tempest's image and roles."""
    cloud.identity.create_role("member")
    cloud.identity.create_role("reader")
    cloud.identity.create_role("admin")
    flavor = cloud.add_flavor(
        FLAVOR,
        description=description_for(LABEL),
        extra_specs={**TRAIT_SPEC, "hw:cpu_policy": "shared"},
        is_public=False,
        projects=[OWN_PROJECT],
    )
    flavor.ram, flavor.vcpus, flavor.disk = 512, 2, 5
    cloud.add_image("cirros")
    cloud.calls.clear()
    return flavor


@pytest.fixture
def args(tmp_path):
    path = tmp_path / "builds" / LABEL / "tempest" / "accounts.yaml"

    def make(**overrides):
        values = dict(label=LABEL, flavor=FLAVOR, image="cirros", accounts_file=str(path))
        values.update(overrides)
        return values

    make.path = path
    return make


def by_name(items, name):
    return next(i for i in items if i.name == name)


def role_id(cloud, name):
    return by_name(cloud.identity.roles_, name).id


def test_creates_the_accounts_the_alt_flavor_and_the_accounts_file(cloud, shard, run_module, args):
    result = run_module(accounts_module, args())

    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is True
    identity = cloud.identity
    # 4 projects, labelled, in the connection's domain.
    assert [p.name for p in identity.projects_] == PROJECTS
    for project in identity.projects_:
        assert label_of_description(project.description) == LABEL
        assert project.domain_id == "default"
    # 4 x (member, reader) users, labelled, each in its project with its persona's role.
    assert [u.name for u in identity.users_] == USERS
    projects = {p.name: p for p in identity.projects_}
    for user in identity.users_:
        project_name, persona = user.name.rsplit("-", 1)
        project = projects[project_name]
        assert label_of_description(user.description) == LABEL
        assert user.default_project_id == project.id
        assert (user.id, project.id, role_id(cloud, persona)) in identity.assignments
    assert len(identity.assignments) == 8
    # The alt flavor: private, the shard flavor's size and extra specs (its trait).
    alt = by_name(cloud.flavors, ALT)
    assert alt.is_public is False
    assert (alt.ram, alt.vcpus, alt.disk) == (512, 2, 5)
    assert alt.extra_specs == {**TRAIT_SPEC, "hw:cpu_policy": "shared"}
    assert label_of_description(alt.description) == LABEL
    # Access: the account's own project and the tempest projects, to both flavors.
    tempest_ids = {p.id for p in identity.projects_}
    assert sorted(alt.projects) == sorted({OWN_PROJECT} | tempest_ids)
    assert sorted(shard.projects) == sorted({OWN_PROJECT} | tempest_ids)
    # Nothing else was created.
    assert [f.name for f in cloud.flavors] == [FLAVOR, ALT]
    assert [r.name for r in identity.roles_] == ["member", "reader", "admin"]
    # What the module returns.
    assert [p["name"] for p in result["projects"]] == PROJECTS
    assert [p["id"] for p in result["projects"]] == [p.id for p in identity.projects_]
    assert [(u["name"], u["persona"]) for u in result["users"]] == [
        (u, u.rsplit("-", 1)[1]) for u in USERS
    ]
    assert [u["id"] for u in result["users"]] == [u.id for u in identity.users_]
    assert result["flavor"] == dict(id=shard.id, name=FLAVOR)
    assert result["alt_flavor"] == dict(id=alt.id, name=ALT)
    assert result["image"]["name"] == "cirros"
    assert result["identity_uri"] == "http://cloud.example/identity/v3"
    assert result["region_name"] == "RegionOne"


def test_the_accounts_file_is_private_and_its_passwords_are_returned_nowhere(
    cloud, shard, run_module, args
):
    result = run_module(accounts_module, args())

    path = args.path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    written = yaml.safe_load(path.read_text())
    assert [a["username"] for a in written] == USERS
    users = {u.name: u for u in cloud.identity.users_}
    for account in written:
        project_name, persona = account["username"].rsplit("-", 1)
        assert account["project_name"] == project_name
        assert account["roles"] == [persona]
        assert account["user_domain_name"] == account["project_domain_name"] == "Default"
        # The password the user was given.
        assert account["password"] == users[account["username"]].password
    passwords = [a["password"] for a in written]
    assert len(set(passwords)) == len(passwords) and all(len(p) >= 24 for p in passwords)
    # Never a password in what the module returns (Ansible would log it).
    dumped = json.dumps(result)
    assert not [p for p in passwords if p in dumped]
    assert all("password" not in u for u in result["users"])
    # Nor a temporary file left beside it.
    assert sorted(os.listdir(path.parent)) == ["accounts.yaml"]


def test_a_second_run_changes_nothing_and_keeps_the_file(cloud, shard, run_module, args):
    run_module(accounts_module, args())
    before = args.path.read_bytes()
    cloud.calls.clear()

    again = run_module(accounts_module, args())

    assert again.get("failed") is not True, again.get("msg")
    assert again["changed"] is False
    assert changes(cloud) == []
    assert args.path.read_bytes() == before
    assert len(cloud.identity.projects_) == 4 and len(cloud.identity.users_) == 8
    assert [f.name for f in cloud.flavors] == [FLAVOR, ALT]
    assert [u["name"] for u in again["users"]] == USERS


def test_without_the_file_a_second_run_sets_new_passwords_and_writes_it_again(
    cloud, shard, run_module, args
):
    run_module(accounts_module, args())
    first = {a["username"]: a["password"] for a in yaml.safe_load(args.path.read_text())}
    args.path.unlink()
    cloud.calls.clear()

    again = run_module(accounts_module, args())

    assert again["changed"] is True
    assert cloud.called("identity.create_user") == []
    assert cloud.called("identity.create_project") == []
    assert len(cloud.called("identity.update_user")) == 8
    written = {a["username"]: a["password"] for a in yaml.safe_load(args.path.read_text())}
    assert sorted(written) == sorted(first)
    assert all(written[name] != first[name] for name in written)
    assert all(u.password == written[u.name] for u in cloud.identity.users_)
    assert stat.S_IMODE(os.stat(args.path).st_mode) == 0o600


def test_a_file_naming_other_users_is_rewritten(cloud, shard, run_module, args):
    run_module(accounts_module, args(projects=2))
    cloud.calls.clear()

    result = run_module(accounts_module, args(projects=3))

    assert result["changed"] is True
    written = yaml.safe_load(args.path.read_text())
    assert [a["username"] for a in written] == USERS[:6]
    assert len(cloud.called("identity.create_user")) == 2
    assert len(cloud.called("identity.update_user")) == 4


def test_a_project_of_the_same_name_without_the_label_fails_in_one_line(
    cloud, shard, run_module, args
):
    stranger = cloud.identity.create_project(PROJECTS[1], "default", "a tenant's project")
    cloud.calls.clear()

    result = run_module(accounts_module, args())

    msg = one_line(result)
    assert f"project {PROJECTS[1]} ({stranger.id})" in msg
    assert f"does not carry label {LABEL}" in msg
    assert stranger.description == "a tenant's project"
    assert not args.path.exists()


def test_another_run_s_user_of_the_same_name_fails_in_one_line(cloud, shard, run_module, args):
    cloud.identity.create_user(USERS[3], "pw", "default", description=description_for(OTHER))
    cloud.calls.clear()

    result = run_module(accounts_module, args())

    msg = one_line(result)
    assert f"user {USERS[3]}" in msg and f"does not carry label {LABEL}" in msg
    assert changes(cloud) == []


def test_an_unlabelled_flavor_of_the_alt_flavor_s_name_fails_in_one_line(
    cloud, shard, run_module, args
):
    lookalike = cloud.add_flavor(ALT, description="someone's", is_public=True)
    cloud.calls.clear()

    result = run_module(accounts_module, args())

    msg = one_line(result)
    assert f"flavor {ALT} ({lookalike.id})" in msg and "does not carry label" in msg
    assert cloud.called("compute.create_flavor") == []
    assert cloud.called("compute.flavor_add_tenant_access") == []


def test_check_mode_creates_nothing(cloud, shard, run_module, args):
    result = run_module(accounts_module, args(), check_mode=True)

    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is True
    assert changes(cloud) == []
    assert cloud.identity.projects_ == [] and cloud.identity.users_ == []
    assert [f.name for f in cloud.flavors] == [FLAVOR]
    assert shard.projects == [OWN_PROJECT]
    assert not args.path.exists() and not args.path.parent.exists()
    assert [p["name"] for p in result["projects"]] == PROJECTS
    assert [u["name"] for u in result["users"]] == USERS
    assert result["alt_flavor"] == dict(id=None, name=ALT)


def test_check_mode_after_a_run_changes_nothing_and_says_so(cloud, shard, run_module, args):
    run_module(accounts_module, args())
    cloud.calls.clear()

    result = run_module(accounts_module, args(), check_mode=True)

    assert result["changed"] is False
    assert changes(cloud) == []


def test_check_mode_tells_of_flavor_access_a_run_would_give(cloud, shard, run_module, args):
    run_module(accounts_module, args())
    shard.projects.remove(cloud.identity.projects_[2].id)
    cloud.calls.clear()

    checked = run_module(accounts_module, args(), check_mode=True)

    assert checked["changed"] is True
    assert changes(cloud) == []
    ran = run_module(accounts_module, args())
    assert ran["changed"] is True
    assert cloud.identity.projects_[2].id in shard.projects


def test_an_alt_flavor_left_without_its_trait_gets_it(cloud, shard, run_module, args):
    # A run killed between the alt flavor's creation and its extra specs.
    run_module(accounts_module, args())
    alt = by_name(cloud.flavors, ALT)
    alt.extra_specs.clear()
    cloud.calls.clear()

    result = run_module(accounts_module, args())

    assert result["changed"] is True
    assert alt.extra_specs == shard.extra_specs
    assert result["alt_flavor"]["id"] == alt.id
    assert [f.name for f in cloud.flavors] == [FLAVOR, ALT]


@pytest.mark.parametrize("count", [0, -2, 17])
def test_a_bad_number_of_projects_fails_in_one_line(cloud, shard, run_module, args, count):
    result = run_module(accounts_module, args(projects=count))

    msg = one_line(result)
    assert msg.startswith(f"invalid number of tempest projects '{count}'")
    assert cloud.calls == []


def test_one_project_has_one_user_per_persona(cloud, shard, run_module, args):
    result = run_module(accounts_module, args(projects=1))

    assert result.get("failed") is not True, result.get("msg")
    assert [p.name for p in cloud.identity.projects_] == PROJECTS[:1]
    assert [u.name for u in cloud.identity.users_] == USERS[:2]


@pytest.mark.parametrize(
    "missing, expected",
    [
        ("flavor", "flavor 'nope' not found: is the shard labelled?"),
        ("image", "image 'nope' not found"),
    ],
)
def test_a_missing_flavor_or_image_fails_in_one_line(
    cloud, shard, run_module, args, missing, expected
):
    result = run_module(accounts_module, args(**{missing: "nope"}))

    assert one_line(result) == expected
    assert changes(cloud) == []


@pytest.mark.parametrize("visibility", ["private", "shared"])
def test_an_image_the_accounts_cannot_see_fails_in_one_line(
    cloud, shard, run_module, args, visibility
):
    image = cloud.image.find_image(args()["image"])
    image.visibility = visibility

    result = run_module(accounts_module, args())

    assert one_line(result).startswith(f"image {args()['image']!r} is {visibility}: tempest's")
    assert changes(cloud) == []


def test_a_missing_persona_role_fails_in_one_line(cloud, shard, run_module, args):
    cloud.identity.roles_ = [r for r in cloud.identity.roles_ if r.name != "reader"]

    result = run_module(accounts_module, args())

    assert one_line(result) == "role 'reader' not found: tempest's personas need it"
    assert changes(cloud) == []


def test_present_needs_the_flavor_the_image_and_the_file(cloud, run_module, args):
    values = args()
    del values["accounts_file"]

    result = run_module(accounts_module, values)

    assert "accounts_file" in one_line(result)
    assert cloud.calls == []


def test_a_bad_label_fails_in_one_line(cloud, shard, run_module, args):
    result = run_module(accounts_module, args(label="shard-NOTHEX"))

    assert "shard-NOTHEX" in one_line(result)
    assert cloud.calls == []


def test_absent_deletes_the_run_s_users_projects_and_alt_flavor_only(
    cloud, shard, run_module, args
):
    run_module(accounts_module, args())
    # Another run's accounts and flavor, and a tenant's look-alikes.
    other = cloud.identity.create_project(f"{OTHER}-tempest-0", "default", description_for(OTHER))
    cloud.identity.create_user(
        f"{OTHER}-tempest-0-member", "pw", "default", other.id, description_for(OTHER)
    )
    cloud.add_flavor(f"{OTHER}-flavor-alt", description=description_for(OTHER), is_public=False)
    cloud.add_flavor("m1.tiny")
    ids = {
        "users": [u.id for u in cloud.identity.users_ if u.name.startswith(LABEL)],
        "projects": [p.id for p in cloud.identity.projects_ if p.name.startswith(LABEL)],
        "alt": by_name(cloud.flavors, ALT).id,
    }
    # What the accounts hold goes first: a server of one of the projects, a
    # keypair of one of the users; a tenant's server stays.
    held = cloud.add_server("tempest-vm", host=LABEL, project_id=ids["projects"][0]).id
    cloud.keypairs[ids["users"][0]] = ["kp"]
    cloud.add_server("tenant-vm", host="compute-1", project_id="tenant")
    cloud.calls.clear()

    result = run_module(accounts_module, dict(label=LABEL, state="absent"))

    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is True
    assert result["deleted"] == (
        [f"server:{held}", f"keypair:{ids['users'][0]}/kp"]
        + [f"user:{i}" for i in ids["users"]]
        + [f"project:{i}" for i in ids["projects"]]
        + [f"flavor:{ids['alt']}"]
    )
    assert [u.name for u in cloud.identity.users_] == [f"{OTHER}-tempest-0-member"]
    assert [p.name for p in cloud.identity.projects_] == [f"{OTHER}-tempest-0"]
    assert [f.name for f in cloud.flavors] == [FLAVOR, f"{OTHER}-flavor-alt", "m1.tiny"]
    assert [r.name for r in cloud.identity.roles_] == ["member", "reader", "admin"]
    assert [i.name for i in cloud.images] == ["cirros"]
    # What they hold (the keypair: a DELETE the fake does not list), then users
    # before their projects.
    deletes = [c[0] for c in cloud.mutations]
    assert deletes == (
        ["compute.delete_server"]
        + ["identity.delete_user"] * 8
        + ["identity.delete_project"] * 4
        + ["compute.delete_flavor"]
    )
    assert [s.name for s in cloud.servers] == ["tenant-vm"]

    again = run_module(accounts_module, dict(label=LABEL, state="absent"))

    assert again["changed"] is False and again["deleted"] == []


def test_absent_in_check_mode_deletes_nothing_and_says_what_it_would(
    cloud, shard, run_module, args
):
    run_module(accounts_module, args())
    cloud.calls.clear()

    result = run_module(accounts_module, dict(label=LABEL, state="absent"), check_mode=True)

    assert result["changed"] is True
    assert len(result["deleted"]) == 8 + 4 + 1
    assert [d.split(":")[0] for d in result["deleted"][:1]] == ["user"]
    assert result["deleted"][-1] == f"flavor:{by_name(cloud.flavors, ALT).id}"
    assert changes(cloud) == []
    assert len(cloud.identity.users_) == 8 and len(cloud.identity.projects_) == 4


# -- shard_tempest_result

TEST_A = "tempest.api.compute.servers.test_servers.ServersTestJSON.test_create"
TEST_B = "tempest.api.compute.servers.test_server_actions.ServerActionsTestJSON.test_pause"
TEST_C = "tempest.api.compute.flavors.test_flavors.FlavorsV2TestJSON.test_list"


def results_csv(path, *rows):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["test", "status", "start_time", "stop_time"])
    for test, status in rows:
        writer.writerow([test, status, "2026-11-25 13:20:01+00:00", "2026-11-25 13:20:02+00:00"])
    path.write_text(out.getvalue())
    return str(path)


@pytest.fixture
def run(cloud, tmp_path):
    """The run's two tempest projects, a tenant's project, and a passing results file."""
    projects = [
        cloud.identity.create_project(f"{LABEL}-tempest-{i}", "default", description_for(LABEL))
        for i in range(2)
    ]
    stranger = cloud.identity.create_project("tenant", "default", "a tenant")
    other = cloud.identity.create_project(f"{OTHER}-tempest-0", "default", description_for(OTHER))
    # Elsewhere, but not this run's: never looked at.
    cloud.add_server("tenant-vm", host="compute-1", project_id=stranger.id)
    cloud.add_deleted_server("other-run-vm", host="compute-1", project_id=other.id)
    cloud.add_server("own-vm", host="compute-1")
    path = results_csv(
        tmp_path / "results.csv",
        (f"{TEST_A}[id-1,smoke]", "success"),
        (f"{TEST_B}[id-2]", "success"),
        (f"{TEST_C}[id-3]", "skip"),
    )
    cloud.calls.clear()
    return projects, path


def result_args(path, **overrides):
    return dict(dict(label=LABEL, host=LABEL, results_csv=path), **overrides)


def test_a_passing_run_whose_servers_all_ran_on_the_shard(cloud, run, run_module):
    projects, path = run
    cloud.add_server("live", host=LABEL, project_id=projects[0].id)
    cloud.add_deleted_server("gone", host=LABEL, project_id=projects[1].id)
    cloud.add_deleted_server("gone-too", host=LABEL, project_id=projects[0].id)
    cloud.add_deleted_server("refused", host=None, project_id=projects[1].id, status="ERROR")

    result = run_module(result_module, result_args(path))

    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is False
    assert result["tests"] == dict(passed=2, failed=0, skipped=1, total=3, failures=[])
    assert result["servers"] == dict(count=4, hosts={LABEL: 3, "none": 1})
    # Live and deleted servers of each of the run's projects, as the admin lists them.
    urls = [c[1][0] for c in cloud.called("compute.get")]
    assert urls == [
        f"/servers/detail?all_tenants=1&project_id={p.id}{deleted}"
        for p in projects
        for deleted in ("", "&deleted=true")
    ]
    assert changes(cloud) == []


def test_a_run_without_servers_passes(cloud, run, run_module):
    _, path = run

    result = run_module(result_module, result_args(path))

    assert result.get("failed") is not True, result.get("msg")
    assert result["servers"] == dict(count=0, hosts={})


def test_a_failed_test_is_named(cloud, run, run_module, tmp_path):
    projects, _ = run
    cloud.add_server("live", host=LABEL, project_id=projects[0].id)
    path = results_csv(
        tmp_path / "failed.csv",
        (f"{TEST_A}[id-1,smoke]", "success"),
        (f"{TEST_B}[id-2]", "fail"),
        (f"{TEST_C}[id-3]", "skip"),
    )

    result = run_module(result_module, result_args(path))

    assert one_line(result) == f"tempest: 1 of 3 tests failed: {TEST_B}"
    assert result["tests"]["failures"] == [TEST_B]
    assert result["servers"] == dict(count=1, hosts={LABEL: 1})


def test_many_failed_tests_are_named_five_and_counted(cloud, run, run_module, tmp_path):
    names = [f"tempest.api.compute.a.A.test_{i}" for i in range(7)]
    path = results_csv(
        tmp_path / "failed.csv", *[(f"{n}[id-{i}]", "fail") for i, n in enumerate(names)]
    )

    result = run_module(result_module, result_args(path))

    assert one_line(result) == (f"tempest: 7 of 7 tests failed: {', '.join(names[:5])} and 2 more")


def test_a_class_whose_setup_failed_is_named(cloud, run, run_module, tmp_path):
    path = results_csv(
        tmp_path / "setup.csv",
        (f"{TEST_A}[id-1]", "success"),
        ("setUpClass (tempest.api.compute.servers.test_servers.ServersTestJSON)", "fail"),
    )

    result = run_module(result_module, result_args(path))

    msg = one_line(result)
    assert msg == (
        "tempest: 1 of 2 tests failed: tempest.api.compute.servers.test_servers.ServersTestJSON"
    )


def test_a_server_that_ran_on_another_host_is_named(cloud, run, run_module):
    projects, path = run
    cloud.add_server("live", host=LABEL, project_id=projects[0].id)
    stray = cloud.add_deleted_server("stray", host="compute-1", project_id=projects[1].id)

    result = run_module(result_module, result_args(path))

    msg = one_line(result)
    assert msg == f"server stray ({stray.id}) ran on compute-1, not on the shard {LABEL}"
    assert result["servers"] == dict(count=2, hosts={LABEL: 1, "compute-1": 1})
    assert result["tests"]["passed"] == 2


def test_several_servers_elsewhere_name_the_first_and_count_the_rest(cloud, run, run_module):
    projects, path = run
    first = cloud.add_server("one", host="compute-1", project_id=projects[0].id)
    cloud.add_server("two", host="compute-2", project_id=projects[1].id)
    cloud.add_deleted_server("three", host="compute-2", project_id=projects[1].id)

    result = run_module(result_module, result_args(path))

    msg = one_line(result)
    assert msg.startswith(f"server one ({first.id}) ran on compute-1")
    assert msg.endswith(" (and 2 more)")


def test_servers_elsewhere_are_reported_even_when_tests_failed(cloud, run, run_module, tmp_path):
    projects, _ = run
    cloud.add_server("stray", host="compute-1", project_id=projects[0].id)
    path = results_csv(tmp_path / "failed.csv", (f"{TEST_A}[id-1]", "fail"))

    result = run_module(result_module, result_args(path))

    assert "server stray" in one_line(result)
    assert result["tests"]["failures"] == [TEST_A]


def test_a_run_where_no_test_passed_fails(cloud, run, run_module, tmp_path):
    path = results_csv(
        tmp_path / "skipped.csv", (f"{TEST_A}[id-1]", "skip"), (f"{TEST_B}[id-2]", "skip")
    )

    result = run_module(result_module, result_args(path))

    msg = one_line(result)
    assert msg.startswith("tempest: no test passed (2 run, 2 skipped)")
    assert result["tests"]["total"] == 2


def test_an_empty_run_fails(cloud, run, run_module, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")

    result = run_module(result_module, result_args(str(path)))

    assert one_line(result).startswith("tempest: no test passed (0 run, 0 skipped)")


def test_missing_results_fail_in_one_clear_line(cloud, run, run_module, tmp_path):
    path = tmp_path / "nowhere" / "results.csv"

    result = run_module(result_module, result_args(str(path)))

    assert one_line(result) == (f"cannot read tempest's results: No such file or directory: {path}")
    assert cloud.calls == []


def test_the_result_is_the_same_in_check_mode(cloud, run, run_module):
    projects, path = run
    cloud.add_server("live", host=LABEL, project_id=projects[0].id)

    result = run_module(result_module, result_args(path), check_mode=True)

    assert result.get("failed") is not True, result.get("msg")
    assert result["servers"] == dict(count=1, hosts={LABEL: 1})
    assert result["tests"]["passed"] == 2


@pytest.mark.parametrize("status, fails", [("0\n", False), ("1\n", True), ("", False)])
def test_a_tempest_that_exited_badly_without_a_failed_test_fails(
    cloud, run, run_module, tmp_path, status, fails
):
    _, path = run
    exit_file = tmp_path / "tempest-exit-status"
    exit_file.write_text(status)

    result = run_module(result_module, result_args(path, exit_status_file=str(exit_file)))

    assert (result.get("failed") is True) is fails, result.get("msg")
    if fails:
        assert result["msg"].startswith("tempest exited with status 1 and no failed test")
        assert "\n" not in result["msg"]


def test_an_unreadable_exit_status_is_one_line(cloud, run, run_module, tmp_path):
    _, path = run
    exit_file = tmp_path / "tempest-exit-status"
    exit_file.write_text("garbage")

    result = run_module(result_module, result_args(path, exit_status_file=str(exit_file)))

    assert result["failed"] is True and "cannot read tempest's exit status" in result["msg"]
