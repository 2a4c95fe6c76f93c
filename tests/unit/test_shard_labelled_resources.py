"""shard_labelled_resources: only what carries a label is found; look-alikes are not."""

from types import SimpleNamespace

import pytest
import shard_labelled_resources as module
from fake_cloud import http_error
from openstack import exceptions

LABEL = "shard-0123abcd4567"
OTHER = "shard-ffff00001111"
KINDS = [
    "servers",
    "flavors",
    "traits",
    "compute_services",
    "resource_providers",
    "aggregates",
    "images",
    "server_groups",
    "keypairs",
    "users",
    "projects",
]


@pytest.fixture
def populated(cloud):
    """Two runs' resources, plus decoys that merely look labelled."""
    c = cloud
    c.ids = {}
    # servers: by metadata, by tag, another run, decoys
    c.ids["server_md"] = c.add_server(
        f"{LABEL}-server", metadata={"shard_label": LABEL}, project_id="someone-else"
    ).id
    c.ids["server_tag"] = c.add_server("tagged", tags=["web", LABEL]).id
    c.ids["server_other"] = c.add_server(f"{OTHER}-server", metadata={"shard_label": OTHER}).id
    c.add_server(f"{LABEL}-server")  # decoy: name only
    c.add_server("bad", metadata={"shard_label": "shard-NOTHEX"}, tags=["shard-zz"])  # decoy
    # flavors
    c.ids["flavor"] = c.add_flavor(
        f"{LABEL}-flavor",
        description=f"shard-jobs label={LABEL} created=2026-11-25T13:20:01Z",
        extra_specs={"trait:CUSTOM_SHARD_0123ABCD4567": "required"},
        is_public=False,
    ).id
    c.add_flavor(f"{OTHER}-flavor", description=f"shard-jobs label={OTHER}")
    c.add_flavor(f"{LABEL}-decoy")  # decoy: no description
    c.add_flavor("m1.small", description=f"like {LABEL} but not labelled")  # decoy
    # traits
    c.traits.update({"CUSTOM_SHARD_0123ABCD4567", "CUSTOM_SHARD_FFFF00001111", "CUSTOM_SHARD_XYZ"})
    c.traits.add("CUSTOM_SHARD_0123ABCD4567_EXTRA")  # decoy: not the trait of a label
    # compute services and providers
    c.add_compute(LABEL)
    c.providers[c.provider_named(LABEL)["uuid"]]["traits"].add("CUSTOM_SHARD_0123ABCD4567")
    c.provider_named(LABEL)["allocations"] = {"srv-1": {}, "srv-2": {}}
    c.add_compute(OTHER)
    c.add_compute(f"{LABEL}-extra")  # decoy: host name is not a label
    c.add_compute("compute-1")
    c.add_service("controller", binary="nova-scheduler")
    # aggregates
    c.add_aggregate(LABEL, hosts=[LABEL], metadata={"shard_label": LABEL})
    c.add_aggregate(OTHER, metadata={"shard_label": OTHER})
    c.add_aggregate(f"{LABEL}-decoy")  # decoy: no metadata
    # images
    c.ids["image"] = c.add_image("img", properties={"shard_label": LABEL}).id
    c.ids["image_hidden"] = c.add_image("hidden", properties={"shard_label": LABEL}, hidden=True).id
    c.add_image(f"{LABEL}-image")  # decoy: name only
    # a run's own project and user (tempest's accounts), and what they hold,
    # which carries nothing but belongs to them
    described = f"shard-jobs label={LABEL} created=2026-11-25T13:20:01Z"
    project = c.identity.create_project(f"{LABEL}-tempest-0", "default", description=described)
    user = c.identity.create_user(
        f"{LABEL}-tempest-0-member", "pw", "default", project.id, description=described
    )
    c.identity.create_project(f"{LABEL}-tempest-9", "default")  # decoy: name only
    c.identity.create_project(
        f"{OTHER}-tempest-0", "default", description=f"shard-jobs label={OTHER}"
    )
    c.identity.create_user(f"{LABEL}-tempest-0-reader", "pw", "default")  # decoy: name only
    # decoys carrying the label where the run never puts it: another domain (whose
    # managers may write descriptions), a name the run does not give, and a
    # server in each, which must not become the run's
    elsewhere = c.identity.create_project(f"{LABEL}-tempest-1", "other-domain", described)
    misnamed = c.identity.create_project(f"{LABEL}-ci", "default", description=described)
    c.add_server("other-domain-server", project_id=elsewhere.id)
    c.add_server("misnamed-server", project_id=misnamed.id)
    c.ids["project"], c.ids["user"] = project.id, user.id
    c.ids["server_project"] = c.add_server("tempest-server", project_id=project.id).id
    c.ids["image_project"] = c.add_image("tempest-image").id
    c.images[-1].owner = project.id
    c.server_groups.append(SimpleNamespace(id="sg-1", name="grp", project_id=project.id))
    c.server_groups.append(SimpleNamespace(id="sg-2", name="grp", project_id="someone-else"))
    c.keypairs[user.id] = ["kp-1"]
    return c


def names(result, kind):
    return sorted(r["name"] for r in result["resources"][kind])


def test_one_label_finds_exactly_its_resources(populated, run_module):
    result = run_module(module, dict(label=LABEL))

    assert result["changed"] is False
    assert result["labels"] == [LABEL]
    resources = result["resources"]
    assert sorted(resources) == sorted(KINDS)
    # Another project's labelled server is reported apart, never to be deleted.
    # A run's own project's server is the run's, and its own.
    assert sorted(r["id"] for r in resources["servers"]) == sorted(
        [populated.ids["server_tag"], populated.ids["server_project"]]
    )
    assert [r["id"] for r in result["foreign"]["servers"]] == [populated.ids["server_md"]]
    assert names(result, "flavors") == [f"{LABEL}-flavor"]
    assert names(result, "traits") == ["CUSTOM_SHARD_0123ABCD4567"]
    assert names(result, "compute_services") == [LABEL]
    assert names(result, "resource_providers") == [LABEL]
    assert names(result, "aggregates") == [LABEL]
    assert sorted(r["id"] for r in resources["images"]) == sorted(
        [populated.ids["image"], populated.ids["image_hidden"], populated.ids["image_project"]]
    )
    assert [r["id"] for r in resources["projects"]] == [populated.ids["project"]]
    assert [r["id"] for r in resources["users"]] == [populated.ids["user"]]
    assert [r["id"] for r in resources["server_groups"]] == ["sg-1"]
    assert [r["id"] for r in resources["keypairs"]] == [f"{populated.ids['user']}/kp-1"]
    assert result["count"] == 14
    assert all(r["label"] == LABEL for found in resources.values() for r in found)


def test_entries_say_where_the_label_was_read_and_when_created(populated, run_module):
    result = run_module(module, dict(label=LABEL))
    resources = result["resources"]

    by_id = {r["id"]: r for r in resources["servers"] + result["foreign"]["servers"]}
    server = by_id[populated.ids["server_md"]]
    assert server["source"] == "metadata:shard_label"
    assert server["created"] == 1795612801  # 2026-11-25T13:20:01Z
    assert server["project_id"] == "someone-else"
    assert by_id[populated.ids["server_tag"]]["source"] == "tag"

    (flavor,) = resources["flavors"]
    assert flavor["source"] == "description"
    assert flavor["created"] == 1795612801
    assert flavor["extra_specs"] == {"trait:CUSTOM_SHARD_0123ABCD4567": "required"}
    assert flavor["is_public"] is False

    (trait,) = resources["traits"]
    assert trait == dict(
        id="CUSTOM_SHARD_0123ABCD4567",
        name="CUSTOM_SHARD_0123ABCD4567",
        label=LABEL,
        source="name",
        created=None,
        providers=[LABEL],
    )

    (service,) = resources["compute_services"]
    assert service["host"] == LABEL and service["binary"] == "nova-compute"
    assert service["source"] == "host" and service["created"] is None

    (provider,) = resources["resource_providers"]
    assert provider["allocations"] == 2
    assert provider["uuid"] == provider["id"]

    (aggregate,) = resources["aggregates"]
    assert aggregate["source"] == "metadata:shard_label"
    assert aggregate["hosts"] == [LABEL]
    assert aggregate["created"] == 1795611600  # 2026-11-25T13:00:00

    assert {i["source"] for i in resources["images"]} == {"property:shard_label", "project"}


# No label and no pattern, or an empty one: every shard label (the janitor's
# default, shard_labels.ALL_LABELS_PATTERN); or that pattern, given.
@pytest.mark.parametrize("given", [{}, {"label_pattern": ""}, {"label_pattern": "^shard-"}])
def test_pattern_finds_every_run(populated, run_module, given):
    result = run_module(module, given)

    assert result["labels"] == [LABEL, OTHER]
    assert names(result, "compute_services") == [LABEL, OTHER]
    assert names(result, "traits") == ["CUSTOM_SHARD_0123ABCD4567", "CUSTOM_SHARD_FFFF00001111"]
    assert names(result, "flavors") == [f"{LABEL}-flavor", f"{OTHER}-flavor"]
    # (and the other project's, apart; the run's own project's counts)
    assert len(result["resources"]["servers"]) == 3
    assert names(result, "projects") == [f"{LABEL}-tempest-0", f"{OTHER}-tempest-0"]
    assert result["count"] == 14 + 7


def test_pattern_narrows(populated, run_module):
    result = run_module(module, dict(label_pattern="ffff"))

    assert result["labels"] == [OTHER]


def test_decoys_alone_are_not_found(cloud, run_module):
    cloud.add_server(f"{LABEL}-server")
    cloud.add_server("x", metadata={"shard_label": "not-a-label"}, tags=["shard-123"])
    cloud.add_flavor(f"{LABEL}-flavor")
    cloud.add_flavor("f", description="shard-jobs label=shard-NOTHEX")
    cloud.traits.update(
        {"CUSTOM_SHARD_XYZ", "CUSTOM_SHARD_0123ABCD4567_EXTRA", "CUSTOM_SHARD_0123"}
    )
    cloud.add_compute(f"{LABEL}.example.com")
    cloud.add_aggregate(LABEL)
    cloud.add_image(LABEL)

    result = run_module(module, dict(label_pattern=".*"))

    assert result["count"] == 0
    assert result["labels"] == []
    assert result["resources"] == {kind: [] for kind in KINDS}


def test_kinds_limit_the_search(populated, run_module):
    result = run_module(module, dict(label=LABEL, kinds=["traits", "aggregates"]))

    assert sorted(result["resources"]) == ["aggregates", "traits"]
    assert not populated.called("compute.servers")
    assert not populated.called("image.images")


def test_all_projects_and_private_flavors_are_searched(populated, run_module):
    run_module(module, dict(label=LABEL))

    ((_, _, servers_query),) = populated.called("compute.servers")
    assert servers_query["all_projects"] is True
    ((_, _, flavors_query),) = populated.called("compute.flavors")
    assert flavors_query["is_public"] == "None"


def test_the_run_s_accounts_are_looked_up_once_per_search(populated, run_module):
    populated.calls.clear()

    result = run_module(module, dict(label=LABEL))

    assert result["count"] == 14
    # One list of projects and one of users (for users and their keypairs), and
    # the jobs' domain read once.
    urls = [c[1][0].split("?")[0] for c in populated.called("identity.get")]
    assert sorted(urls) == ["/projects", "/users"]
    assert len(populated.called("identity.get_project")) == 1


def test_read_only_even_outside_check_mode(populated, run_module):
    populated.calls.clear()
    run_module(module, dict(label_pattern="^shard-"))
    result = run_module(module, dict(label_pattern="^shard-"), check_mode=True)

    assert result["changed"] is False
    assert result["count"] == 21
    assert populated.mutations == []


def test_a_missing_service_is_reported_not_fatal(populated, run_module, monkeypatch):
    def no_endpoint(self, **query):
        raise exceptions.EndpointNotFound("No image endpoint found")

    monkeypatch.setattr(type(populated.image), "images", no_endpoint)

    result = run_module(module, dict(label=LABEL))

    assert result["resources"]["images"] == []
    assert "images" in result["unsearched"]
    assert result["count"] == 14 - 3


def test_older_than_keeps_only_runs_that_are_over(cloud, clock, run_module):
    # Both runs' newest resource is 4 h old; only OTHER's compute still reports up.
    created = 1795612801  # 2026-11-25T13:20:01Z
    clock.now = created + 4 * 3600
    for label in (LABEL, OTHER):
        cloud.add_flavor(
            f"{label}-flavor", description=f"shard-jobs label={label} created=2026-11-25T13:20:01Z"
        )
    cloud.add_service(LABEL, state="down")
    cloud.add_compute(OTHER)

    result = run_module(module, dict(label_pattern="^shard-", older_than="3h"))

    assert result["expired"] == {LABEL: {"newest": created, "reason": "newest resource 14400s old"}}
    assert result["labels"] == [LABEL]
    assert names(result, "flavors") == [f"{LABEL}-flavor"]
    assert names(result, "compute_services") == [LABEL]
    assert result["count"] == 2
    # Younger than the limit: nothing is expired.
    assert run_module(module, dict(label_pattern="^shard-", older_than="5h"))["count"] == 0


def test_label_and_pattern_are_exclusive(cloud, run_module):
    result = run_module(module, dict(label=LABEL, label_pattern="^shard-"))

    assert result["failed"] is True
    assert "mutually exclusive" in result["msg"]


def test_a_narrower_pattern_finds_only_its_labels(populated, run_module):
    result = run_module(module, dict(label_pattern="^shard-f"))

    assert result["labels"] == [OTHER]


def test_invalid_label_and_pattern_fail_clearly(cloud, run_module):
    result = run_module(module, dict(label="shard-0123ABCD4567"))
    assert result["msg"].startswith("label 'shard-0123ABCD4567' is not a shard label")

    result = run_module(module, dict(label_pattern="shard-("))
    assert result["msg"].startswith("label_pattern is not a valid regular expression:")
    assert cloud.calls == []


def test_an_api_error_fails_on_one_line(populated, run_module, monkeypatch):
    def broken(self, **query):
        raise http_error(403, "Policy doesn't allow os_compute_api:os-services:list")

    monkeypatch.setattr(type(populated.compute), "services", broken)

    result = run_module(module, dict(label=LABEL))

    assert result["failed"] is True
    assert "\n" not in result["msg"]
    assert "os-services:list" in result["msg"]


@pytest.mark.parametrize(
    ("older_than", "message"),
    [
        ("30m", "older-than 30m is below the minimum age of 150m"),
        ("0s", "older-than 0s is below the minimum age"),
        ("3 hours", "invalid older-than '3 hours'"),
        ("10800", "invalid older-than '10800'"),
    ],
)
def test_the_janitor_s_age_is_checked_before_anything(cloud, run_module, older_than, message):
    result = run_module(module, dict(label_pattern="^shard-", older_than=older_than))
    assert result["failed"] is True
    assert result["msg"].startswith(message)
    assert cloud.calls == []


def test_force_goes_below_the_minimum_age(cloud, clock, run_module):
    clock.now = 1795612801  # 2026-11-25T13:20:01Z
    cloud.add_flavor("f", description=f"shard-jobs label={LABEL} created=2026-11-25T13:00:00Z")
    result = run_module(module, dict(label_pattern="^shard-", older_than="0s", force=True))
    assert result.get("failed") is not True, result
    assert result["labels"] == [LABEL]


def test_every_compute_down_judges_no_run_over(cloud, clock, run_module):
    """A message-bus outage: every compute reports down, live runs look over."""
    clock.now = 1795612801 + 4 * 3600
    cloud.add_service(LABEL, state="down")
    cloud.add_service("compute-1", state="down")
    cloud.add_flavor("f", description=f"shard-jobs label={LABEL} created=2026-11-25T13:00:00Z")

    result = run_module(module, dict(label_pattern="^shard-", older_than="3h"))

    assert result["failed"] is True
    assert result["msg"].startswith("every nova-compute of the cloud (2) reports down")
    # With one compute up, the dead shard is judged over as usual.
    cloud.services[1].state = "up"
    result = run_module(module, dict(label_pattern="^shard-", older_than="3h"))
    assert result["labels"] == [LABEL]
