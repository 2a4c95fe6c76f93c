"""shard_teardown_cloud: a run's whole teardown in one module run, against the fake cloud."""

import signal
from types import SimpleNamespace

import pytest
import shard_teardown_cloud as module
import yaml
from ansible.module_utils import shard_processes

from shard_jobs import paths

LABEL = "shard-0123abcd4567"
OTHER = "shard-ffff00001111"
TRAIT = "CUSTOM_SHARD_0123ABCD4567"
ORDER = [
    "servers",
    "service_process",
    "compute_services",
    "resource_providers",
    "aggregates",
    "flavors",
    "traits",
]


def shard(cloud, label):
    """What a nova-compute shard run leaves in the cloud: every kind, one each."""
    trait = "CUSTOM_" + label.upper().replace("-", "_")
    cloud.add_compute(label)
    cloud.traits.add(trait)
    cloud.provider_named(label)["traits"].add(trait)
    cloud.add_aggregate(label, hosts=[label], metadata={"shard_label": label})
    cloud.add_flavor(
        f"{label}-flavor",
        description=f"shard-jobs label={label} created=2026-11-25T13:00:00Z",
        extra_specs={f"trait:{trait}": "required"},
    )
    cloud.add_server(f"{label}-server", metadata={"shard_label": label}, host=label)


@pytest.fixture
def args(tmp_path):
    def make(**kw):
        values = dict(
            cloud="target",
            label=LABEL,
            order=ORDER,
            service={"pidfile": str(tmp_path / "nova-compute.pid"), "stop_timeout": 5},
        )
        values.update(kw)
        return values

    return make


def labelled(cloud, label):
    return {
        "servers": [s.name for s in cloud.servers if s.metadata.get("shard_label") == label],
        "services": [s.host for s in cloud.services if s.host == label],
        "providers": [p["name"] for p in cloud.providers.values() if p["name"] == label],
        "aggregates": [a.name for a in cloud.aggregates if a.metadata.get("shard_label") == label],
        "flavors": [f.name for f in cloud.flavors if (f.description or "").find(label) >= 0],
        "traits": [t for t in cloud.traits if t == "CUSTOM_" + label.upper().replace("-", "_")],
    }


def test_deletes_every_kind_in_order_and_finds_nothing_left(cloud, run_module, args):
    shard(cloud, LABEL)

    result = run_module(module, args())

    assert result.get("failed") is not True, result
    assert result["changed"] is True
    assert all(not v for v in labelled(cloud, LABEL).values()), labelled(cloud, LABEL)
    assert result["left"] == {kind: [] for kind in ORDER if kind != "service_process"}
    steps = [s["step"] for s in result["steps"]]
    assert steps == ["wait for the APIs", "find", *ORDER, "leak check"]
    # The server went before its compute service, the service before its aggregate.
    mutations = [c[0] for c in cloud.mutations]
    assert mutations.index("compute.delete_server") < mutations.index("compute.delete_service")
    assert mutations.index("compute.delete_service") < mutations.index("compute.delete_aggregate")
    assert result["stopped"] is False  # no process ran


def test_a_run_s_own_projects_go_last_with_everything_they_hold(cloud, run_module, args):
    # tempest's accounts: what their projects and users hold carries no label.
    shard(cloud, LABEL)
    described = f"shard-jobs label={LABEL} created=2026-11-25T13:00:00Z"
    project = cloud.identity.create_project(f"{LABEL}-tempest-0", "default", described)
    user = cloud.identity.create_user(
        f"{LABEL}-tempest-0-member", "pw", "default", project.id, described
    )
    cloud.add_server("tempest-a", project_id=project.id, host=LABEL)
    cloud.keypairs[user.id] = ["kp"]
    cloud.server_groups.append(SimpleNamespace(id="sg-1", name="grp", project_id=project.id))
    stranger = cloud.identity.create_project("stranger", "default", "a tenant")
    cloud.add_server("tenant-server", project_id=stranger.id)
    order = [*ORDER, "server_groups", "keypairs", "users", "projects"]
    cloud.calls.clear()

    result = run_module(module, args(order=order))

    assert result.get("failed") is not True, result
    assert [s.name for s in cloud.servers] == ["tenant-server"]
    assert cloud.keypairs[user.id] == [] and cloud.server_groups == []
    assert [p.name for p in cloud.identity.projects_] == ["stranger"]
    assert cloud.identity.users_ == []
    assert result["left"] == {kind: [] for kind in order if kind != "service_process"}
    mutations = [c[0] for c in cloud.mutations]
    # The project's server went with the shard's, before the compute service.
    assert mutations.index("compute.delete_service") > max(
        i for i, m in enumerate(mutations) if m == "compute.delete_server"
    )
    assert mutations[-2:] == ["identity.delete_user", "identity.delete_project"]
    # The accounts were disabled before anything was looked for (a tempest still
    # running creates nothing more), the stranger never.
    assert mutations[:2] == ["identity.update_user", "identity.update_project"]
    assert [c[1][0] for c in cloud.mutations[:2]] == [user.id, project.id]
    assert [s["step"] for s in result["steps"]][1:3] == ["disable the run's accounts", "find"]


def test_a_second_run_changes_nothing(cloud, run_module, args):
    shard(cloud, LABEL)
    run_module(module, args())
    cloud.calls.clear()

    again = run_module(module, args())

    assert again["changed"] is False
    assert again["deleted"] == []
    assert cloud.mutations == []


def test_only_this_label_is_touched(cloud, run_module, args):
    shard(cloud, LABEL)
    shard(cloud, OTHER)
    cloud.add_server("shard-0123abcd4567-lookalike", metadata={"shard_label": "shard-0123abcd"})

    run_module(module, args())

    assert all(labelled(cloud, OTHER).values()), labelled(cloud, OTHER)
    assert any(s.name == "shard-0123abcd4567-lookalike" for s in cloud.servers)


def test_another_project_s_copy_of_the_label_is_reported_never_deleted(cloud, run_module, args):
    # A tenant copied the live build's label (public in its logs) onto its own server.
    shard(cloud, LABEL)
    decoy = cloud.add_server(
        "tenant-server", metadata={"shard_label": LABEL}, project_id="someone-else"
    )

    result = run_module(module, args())

    assert result.get("failed") is not True, result.get("msg")
    assert decoy in cloud.servers
    assert [e["id"] for e in result["foreign"]["servers"]] == [decoy.id]
    assert result["left"] == {k: [] for k in result["left"]}
    assert not any(labelled(cloud, LABEL)[k] for k in ("services", "flavors", "traits"))


def test_check_mode_finds_and_deletes_nothing(cloud, run_module, args):
    shard(cloud, LABEL)

    result = run_module(module, args(), check_mode=True)

    assert result["changed"] is True
    assert cloud.mutations == []
    assert all(labelled(cloud, LABEL).values())
    assert any(d.startswith("server:") for d in result["deleted"])


def test_a_leak_fails_naming_the_kind(cloud, run_module, args, monkeypatch):
    shard(cloud, LABEL)
    # A flavor delete that the cloud accepts but does not carry out.
    monkeypatch.setattr(type(cloud.compute), "delete_flavor", lambda self, *a, **k: None)

    result = run_module(module, args())

    assert result["failed"] is True
    assert result["msg"] == f"leak: 1 resource(s) still carry label {LABEL}: flavors"
    assert [f["name"] for f in result["left"]["flavors"]] == [f"{LABEL}-flavor"]


def test_the_service_process_is_stopped_in_its_place(cloud, run_module, args, tmp_path):
    shard(cloud, LABEL)
    pidfile = str(tmp_path / "nova-compute.pid")
    record = shard_processes.start("nova-compute", ["sleep", "60"], pidfile)
    try:
        result = run_module(module, args())
    finally:
        if shard_processes.read_record(pidfile):
            shard_processes.stop(record, signal.SIGKILL, 5)

    assert result["stopped"] is True
    assert shard_processes.read_record(pidfile) is None
    assert shard_processes.start_time(record["pid"]) is None


def test_a_deletion_that_fails_still_stops_the_service(cloud, run_module, args, tmp_path):
    shard(cloud, LABEL)
    # A server nova cannot delete (its host keeps it): the compute service cannot go.
    cloud.delete_polls = 10**6
    pidfile = str(tmp_path / "nova-compute.pid")
    record = shard_processes.start("nova-compute", ["sleep", "60"], pidfile)

    result = run_module(module, args(timeout=5))

    assert result["failed"] is True
    assert result["msg"].startswith(f"server {LABEL}-server (")
    assert "was not deleted within 5s" in result["msg"]
    assert shard_processes.start_time(record["pid"]) is None


def test_an_api_that_does_not_answer_is_waited_for_then_named(cloud, run_module, args):
    shard(cloud, LABEL)
    cloud.session.status["placement"] = 503

    result = run_module(module, args(wait_for=["compute", "placement"], timeout=10))

    assert result["failed"] is True
    assert result["msg"] == (
        "the cloud's APIs did not answer within 10s: placement at "
        "http://cloud.example/placement answers HTTP 503"
    )
    assert cloud.mutations == []  # nothing deleted while the cloud was not whole


def test_an_api_back_in_time_lets_teardown_run(cloud, run_module, args):
    shard(cloud, LABEL)
    cloud.session.status["placement"] = 503
    cloud.at(3, lambda: cloud.session.status.update(placement=200))

    result = run_module(module, args(wait_for=["compute", "placement"], timeout=30))

    assert result.get("failed") is not True, result
    assert all(not v for v in labelled(cloud, LABEL).values())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"order": ["servers", "volumes"]}, "unknown kinds in order: volumes"),
        ({"service": None}, "order has service_process: service.pidfile is required"),
        ({"label": "shard-0123abcd"}, "label 'shard-0123abcd' is not a shard label"),
    ],
)
def test_bad_input_is_one_line(cloud, run_module, args, options, message):
    result = run_module(module, args(**options))
    assert result["failed"] is True
    assert result["msg"].startswith(message)
    assert cloud.mutations == []


# The message bus: the shard host's queues (module_utils/shard_bus.py), on a fake broker.
PASSWORD = "p@ss:w/rd"
BUS_URL = "rabbit://nova:p%40ss%3Aw%2Frd@mq1.example:5672,nova:p%40ss%3Aw%2Frd@mq2.example/cloud"
SHARD_QUEUES = {f"compute.{LABEL}", f"compute-alt.{LABEL}"}
# Everything else on the bus: never the shard's to delete.
OTHERS = {
    "compute",
    "compute-alt",
    f"compute.{OTHER}",
    "compute.cloud-compute",
    "compute_fanout_0b719883446e42ae9bef92312d897e73",
    "reply_aec70ade14804d13a1252dcd2b63d907",
}


@pytest.fixture
def broker(monkeypatch):
    from fake_bus import FakeBroker

    broker = FakeBroker(queues=SHARD_QUEUES | OTHERS, vhost="cloud")
    connect = module.shard_bus.connect
    monkeypatch.setattr(
        module.shard_bus, "connect", lambda url, timeout: connect(url, timeout, broker.factory)
    )
    return broker


def bus_args(args, **kw):
    values = dict(order=[*ORDER, "queues"], transport_url=BUS_URL, queue_services=["nova-compute"])
    values.update(kw)
    return args(**values)


def test_the_shard_host_s_queues_are_deleted_and_looked_for_again(cloud, run_module, args, broker):
    shard(cloud, LABEL)

    result = run_module(module, bus_args(args))

    assert result.get("failed") is not True, result
    assert broker.queues("cloud") == OTHERS
    assert sorted(broker.deleted) == sorted(SHARD_QUEUES)
    assert {d for d in result["deleted"] if d.startswith("queue:")} == {
        f"queue:{q}" for q in SHARD_QUEUES
    }
    assert sorted(e["name"] for e in result["found"]["queues"]) == sorted(SHARD_QUEUES)
    assert result["left"]["queues"] == []
    steps = [s["step"] for s in result["steps"]]
    assert steps[-3:] == ["queues", "leak check", "queues leak check"]
    # The credentials reached the broker decoded, and no output holds them.
    assert {c["password"] for c in broker.connections} == {PASSWORD}
    assert PASSWORD not in str(result) and "p%40ss" not in str(result)


def test_only_queues_make_a_change_when_nothing_else_is_left(cloud, run_module, args, broker):
    # The cloud side already gone (an earlier teardown that failed on the bus).
    result = run_module(module, bus_args(args))
    assert result["changed"] is True
    assert sorted(result["deleted"]) == sorted(f"queue:{q}" for q in SHARD_QUEUES)

    again = run_module(module, bus_args(args))
    assert again["changed"] is False and again["deleted"] == []
    assert broker.queues("cloud") == OTHERS


def test_check_mode_deletes_no_queue(cloud, run_module, args, broker):
    result = run_module(module, bus_args(args), check_mode=True)

    assert result["changed"] is True
    assert broker.deleted == [] and broker.queues("cloud") == SHARD_QUEUES | OTHERS
    assert sorted(result["deleted"]) == sorted(f"queue:{q}" for q in SHARD_QUEUES)


def test_a_queue_still_there_after_its_delete_is_a_leak(cloud, run_module, args, broker):
    broker.keep.add(f"compute.{LABEL}")  # the broker accepts the delete, the queue stays

    result = run_module(module, bus_args(args))

    assert result["failed"] is True
    assert result["msg"] == f"leak: 1 resource(s) still carry label {LABEL}: queues"
    assert result["left"]["queues"] == [{"id": f"compute.{LABEL}", "name": f"compute.{LABEL}"}]


def test_a_bus_that_does_not_answer_fails_teardown_after_the_rest(cloud, run_module, args, broker):
    shard(cloud, LABEL)
    broker.refuse = {"mq1.example:5672", "mq2.example:5672"}

    result = run_module(module, bus_args(args))

    assert result["failed"] is True
    assert result["msg"].startswith(
        "cannot reach the message bus: no host of the message bus accepted a connection"
    )
    assert PASSWORD not in str(result) and "p%40ss" not in str(result)
    # Last in the order: everything else was deleted first.
    assert all(not v for v in labelled(cloud, LABEL).values())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"transport_url": None}, "order has queues: transport_url is required"),
        ({"queue_services": ["nova-conductor"]}, "unknown queue_services: nova-conductor"),
    ],
)
def test_bad_bus_input_is_one_line(cloud, run_module, args, broker, options, message):
    result = run_module(module, bus_args(args, **options))
    assert result["failed"] is True
    assert result["msg"].startswith(message)
    assert broker.connections == [] and cloud.mutations == []


def test_a_profile_without_queues_tears_down_whatever_service_it_names(cloud, run_module, args):
    # The role passes every profile's service as queue_services; glance-api has no
    # topic on the bus and no queues in its order: its teardown must still run.
    glance = yaml.safe_load((paths.ROLES / "shard/profiles/glance-api/profile.yaml").read_text())
    shard(cloud, LABEL)
    order = glance["teardown_order"]
    result = run_module(module, args(order=order, queue_services=[glance["service"]["name"]]))
    assert result.get("failed") is not True, result
    assert result["steps"][-1]["step"] == "leak check" and result["left"] == {"images": []}
