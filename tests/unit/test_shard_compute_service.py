"""shard_compute_service: waiting for a compute host, proving its mapping, removing it."""

import os
import subprocess

import fake_cloud
import pytest
import shard_compute_service as module
from ansible.module_utils.basic import AnsibleModule

from shard_jobs.rules import phases, processes

HOST = "shard-0123abcd4567"
LABEL = "shard-0123abcd4567"


def present(**kwargs):
    args = dict(host=HOST, timeout=60)
    args.update(kwargs)
    return args


# -- present ----------------------------------------------------------------


def test_present_waits_for_service_provider_and_mapping(cloud, clock, run_module):
    # The process starts: the service record appears at 3 s, its provider at 4 s,
    # the scheduler maps the host at 7 s.
    cloud.at(3, lambda: cloud.add_service(HOST))
    cloud.at(4, lambda: cloud.add_provider(HOST))
    cloud.at(7, lambda: cloud.mapped_hosts.add(HOST))

    result = run_module(module, present(aggregate=LABEL, label=LABEL))

    assert result["changed"] is True
    assert result["mapped"] is True
    assert result["service"]["host"] == HOST and result["service"]["state"] == "up"
    assert result["resource_provider"]["name"] == HOST
    assert result["aggregate"]["name"] == LABEL and result["aggregate"]["hosts"] == [HOST]
    aggregate = cloud.aggregates[0]
    # Isolating: only flavors or images requiring the shard's trait land there.
    assert aggregate.metadata == {
        "shard_label": LABEL,
        "trait:CUSTOM_SHARD_0123ABCD4567": "required",
    }
    # The provider joined the aggregate in placement before the host was mapped.
    puts = [c for c in cloud.called("placement.put") if c[1][0].endswith("/aggregates")]
    assert len(puts) == 1 and puts[0][2]["json"]["aggregates"] == [aggregate.uuid]
    assert cloud.provider_named(HOST)["aggregates"] == [aggregate.uuid]
    # GET /os-hosts/{host} answered 404 until the host was mapped; only then the add.
    probes = cloud.called("compute.get")
    assert len(probes) > 1
    assert all(c[1] == (f"/os-hosts/{HOST}",) and c[2]["microversion"] == "2.1" for c in probes)
    assert len(cloud.called("compute.add_host_to_aggregate")) == 1
    assert 7 <= clock.now - 1000 < 10


def test_present_isolates_the_provider_before_its_host_is_mapped(cloud, clock, run_module):
    # The host is mapped at 7 s; placement must have the provider in the
    # (isolating) aggregate by then.
    seen_at_mapping = {}
    cloud.at(3, lambda: cloud.add_service(HOST))
    cloud.at(4, lambda: cloud.add_provider(HOST))

    def map_host():
        seen_at_mapping["aggregates"] = list(cloud.provider_named(HOST)["aggregates"])
        cloud.mapped_hosts.add(HOST)

    cloud.at(7, map_host)

    run_module(module, present(aggregate=LABEL, label=LABEL))

    assert seen_at_mapping["aggregates"] == [cloud.aggregates[0].uuid]


def test_present_adds_the_isolating_trait_to_an_older_aggregate_of_the_label(cloud, run_module):
    cloud.add_compute(HOST)
    cloud.add_aggregate(LABEL, metadata={"shard_label": LABEL})

    result = run_module(module, present(aggregate=LABEL, label=LABEL))

    assert result["changed"] is True
    assert cloud.aggregates[0].metadata["trait:CUSTOM_SHARD_0123ABCD4567"] == "required"


def test_present_fails_when_placement_does_not_have_the_provider_in_the_aggregate(
    cloud, run_module, monkeypatch
):
    cloud.add_compute(HOST)
    aggregate = cloud.add_aggregate(LABEL, metadata={"shard_label": LABEL}, hosts=[HOST])
    # nova has the host in the aggregate, placement does not: the scheduler could
    # not isolate it. (The join before mapping is skipped: an aggregate without uuid.)
    monkeypatch.setattr(module.ComputeServiceModule, "_join_in_placement", lambda *a: False)

    result = run_module(module, present(aggregate=LABEL, label=LABEL))

    assert result["failed"] is True

    assert f"not in aggregate {LABEL} ({aggregate.uuid}) in placement" in result["msg"]


def test_present_second_run_is_a_no_op(cloud, run_module):
    cloud.add_compute(HOST)
    first = run_module(module, present(aggregate=LABEL, label=LABEL))
    cloud.calls.clear()

    second = run_module(module, present(aggregate=LABEL, label=LABEL))

    assert first["changed"] is True
    assert second["changed"] is False
    assert second["mapped"] is True
    assert cloud.mutations == []


def test_present_without_aggregate_only_waits(cloud, run_module):
    cloud.add_compute(HOST)

    result = run_module(module, present())

    assert result["changed"] is False
    assert result["mapped"] is True
    assert "aggregate" not in result
    assert cloud.mutations == []


def test_present_uses_an_existing_aggregate_as_it_is(cloud, run_module):
    cloud.add_compute(HOST)
    cloud.add_aggregate("existing", hosts=["other"], metadata={"owner": "ops"})

    result = run_module(module, present(aggregate="existing"))

    assert result["changed"] is True
    assert result["aggregate"]["hosts"] == ["other", HOST]
    assert cloud.aggregates[0].metadata == {"owner": "ops"}
    assert not cloud.called("compute.create_aggregate")


def test_present_times_out_clearly_when_the_service_stays_away(cloud, clock, run_module):
    result = run_module(module, present(timeout=30))

    assert result["failed"] is True
    assert result["msg"].startswith(
        f"compute service for host {HOST} did not come up within 30s (no service record)"
    )
    assert 30 <= clock.now - 1000 < 32


def test_present_reports_a_down_service(cloud, run_module):
    cloud.add_service(HOST, state="down")

    result = run_module(module, present(timeout=5))

    assert result["failed"] is True
    assert "did not come up within 5s (state down, status enabled)" in result["msg"]


def test_present_times_out_clearly_without_provider(cloud, run_module):
    cloud.add_service(HOST)

    result = run_module(module, present(timeout=5))

    assert result["failed"] is True
    assert result["msg"].startswith(
        f"resource provider {HOST} of compute service {HOST} did not appear in placement within 5s"
    )


def test_present_times_out_clearly_when_the_host_is_never_mapped(cloud, run_module):
    cloud.add_compute(HOST, mapped=False)

    result = run_module(module, present(aggregate=LABEL, label=LABEL, timeout=10))

    assert result["failed"] is True
    assert result["msg"].startswith(
        f"host {HOST} was not mapped to a cell within 10s (GET /os-hosts/{HOST} still answers "
        "404); does nova-scheduler discover hosts"
    )
    # The isolating aggregate came first (teardown removes it by its label);
    # the host that cannot take servers was not added to it in nova.
    assert [a.metadata["shard_label"] for a in cloud.aggregates] == [LABEL]
    assert not cloud.called("compute.add_host_to_aggregate")


def test_present_says_which_policy_the_mapping_check_needs(cloud, run_module):
    cloud.add_compute(HOST)
    cloud.os_hosts_forbidden = True

    result = run_module(module, present())

    assert result["failed"] is True
    assert result["msg"] == (
        f"cannot tell whether host {HOST} is mapped to a cell: GET /os-hosts/{HOST} is "
        "forbidden; the account needs the os_compute_api:os-hosts:show policy"
    )


def test_present_creating_an_aggregate_needs_a_label(cloud, run_module):
    cloud.add_compute(HOST)

    result = run_module(module, present(aggregate="new-aggregate"))

    assert result["failed"] is True
    assert result["msg"] == "aggregate new-aggregate does not exist; creating it requires label"
    assert cloud.mutations == []


def test_present_check_mode_changes_nothing_and_does_not_wait(cloud, clock, run_module):
    cloud.add_compute(HOST, mapped=False)

    result = run_module(module, present(aggregate=LABEL, label=LABEL), check_mode=True)

    assert result["changed"] is True
    assert result["mapped"] is False
    assert cloud.mutations == []
    assert clock.slept == []


def test_present_check_mode_no_change_when_already_member(cloud, run_module):
    cloud.add_compute(HOST)
    cloud.add_aggregate(LABEL, hosts=[HOST], metadata={"shard_label": LABEL})

    result = run_module(module, present(aggregate=LABEL, label=LABEL), check_mode=True)

    assert result["changed"] is False
    assert result["mapped"] is True


@pytest.mark.parametrize(
    "label",
    [
        "shard-XYZ",
        "shard-123",
        "build-0123abcd4567",
        "shard-0123abcd4567 ",
        "shard-0123abcd4567\n",
        "shard-0123abcd",  # 8 digits: not what the jobs generate
        "shard-0123abcd4567ab",
    ],
)
def test_invalid_label_fails_clearly(cloud, run_module, label):
    result = run_module(module, present(aggregate=LABEL, label=label))

    assert result["failed"] is True
    assert result["msg"] == (
        f"label {label!r} is not a shard label: expected 'shard-' followed by "
        "12 lowercase hex digits"
    )
    assert cloud.calls == []


def test_aggregate_needs_nova_compute(cloud, run_module):
    result = run_module(module, present(aggregate=LABEL, label=LABEL, binary="nova-conductor"))

    assert result["failed"] is True
    assert result["msg"] == "aggregate only applies to binary nova-compute"


def test_other_binary_has_no_provider_to_wait_for(cloud, run_module):
    cloud.add_service(HOST, binary="nova-conductor")

    result = run_module(module, present(binary="nova-conductor"))

    assert result["changed"] is False
    assert result["service"]["binary"] == "nova-conductor"
    assert "resource_provider" not in result


# -- absent -----------------------------------------------------------------


def test_absent_forces_down_then_deletes_and_the_provider_goes(cloud, run_module):
    cloud.add_compute(HOST)
    service_id = cloud.services[0].id
    uuid = cloud.provider_named(HOST)["uuid"]

    result = run_module(module, dict(host=HOST, state="absent"))

    assert result["changed"] is True
    assert result["deleted"] == [f"service:{service_id}"]
    names = [c[0] for c in cloud.mutations]
    assert names == ["compute.update_service_forced_down", "compute.delete_service"]
    assert cloud.services == []
    assert uuid not in cloud.providers


def test_absent_does_not_force_down_a_down_service(cloud, run_module):
    cloud.add_service(HOST, state="down")

    result = run_module(module, dict(host=HOST, state="absent"))

    assert result["changed"] is True
    assert not cloud.called("compute.update_service_forced_down")


def test_absent_deletes_every_record_of_the_host_and_no_other(cloud, run_module):
    cloud.add_service(HOST, state="down")
    cloud.add_service(HOST, state="down")
    other = cloud.add_service("shard-ffff00001111", state="down")
    conductor = cloud.add_service(HOST, binary="nova-conductor")

    result = run_module(module, dict(host=HOST, state="absent"))

    assert len(result["deleted"]) == 2
    assert cloud.services == [other, conductor]


def test_absent_is_a_no_op_when_nothing_exists(cloud, run_module):
    cloud.add_compute("shard-ffff00001111")

    result = run_module(module, dict(host=HOST, state="absent"))

    assert result["changed"] is False
    assert result["deleted"] == []
    assert cloud.mutations == []


def test_absent_deletes_a_provider_left_without_allocations(cloud, clock, run_module):
    cloud.cascade = False
    cloud.add_compute(HOST)
    uuid = cloud.provider_named(HOST)["uuid"]

    result = run_module(module, dict(host=HOST, state="absent"))

    assert result["changed"] is True
    assert result["deleted"][-1] == f"resource_provider:{uuid}"
    assert ("placement.delete", (f"/resource_providers/{uuid}",)) in [
        c[:2] for c in cloud.mutations
    ]
    assert cloud.providers == {}


def test_absent_deletes_an_orphan_provider(cloud, run_module):
    uuid = cloud.add_provider(HOST)

    result = run_module(module, dict(host=HOST, state="absent"))

    assert result["changed"] is True
    assert result["deleted"] == [f"resource_provider:{uuid}"]
    assert cloud.providers == {}


def test_absent_fails_clearly_on_a_provider_with_allocations(cloud, run_module):
    uuid = cloud.add_provider(HOST, allocations={"consumer-1": {"resources": {"VCPU": 1}}})

    result = run_module(module, dict(host=HOST, state="absent"))

    assert result["failed"] is True
    assert result["msg"] == (
        f"resource provider {HOST} ({uuid}) still has allocations of 1 consumer(s) "
        "(consumer-1); delete or migrate them first"
    )
    assert uuid in cloud.providers


def test_absent_refuses_while_servers_live_on_the_host(cloud, run_module):
    cloud.add_compute(HOST)
    server = cloud.add_server("vm", host=HOST)

    result = run_module(module, dict(host=HOST, state="absent"))

    assert result["failed"] is True
    assert result["msg"] == (
        f"cannot delete compute service of host {HOST}: 1 server(s) still on it "
        f"(vm ({server.id})); delete or migrate them first"
    )
    assert cloud.mutations == []


def test_absent_surfaces_nova_409(cloud, run_module, monkeypatch):
    # Servers invisible to the pre-check (another cell, a race): nova's 409 tells.
    cloud.add_compute(HOST)
    cloud.add_server("hidden", host=HOST)
    monkeypatch.setattr(type(cloud.compute), "servers", lambda self, **q: [])

    result = run_module(module, dict(host=HOST, state="absent"))

    assert result["failed"] is True
    assert result["msg"] == (
        f"cannot delete compute service of host {HOST}: Unable to delete compute service that "
        "is hosting instances. Migrate or delete the instances first. (HTTP 409)"
    )


def test_absent_check_mode_changes_nothing(cloud, run_module):
    cloud.add_compute(HOST)
    service_id = cloud.services[0].id

    result = run_module(module, dict(host=HOST, state="absent"), check_mode=True)

    assert result["changed"] is True
    assert result["deleted"] == [f"service:{service_id}"]
    assert cloud.mutations == []
    assert len(cloud.services) == 1 and len(cloud.providers) == 1


def test_connection_uses_the_cloud_and_timeout(cloud, run_module):
    cloud.add_compute(HOST)

    run_module(module, dict(host=HOST, cloud="my-cloud", timeout=42))

    assert cloud.connect_kwargs["cloud"] == "my-cloud"
    assert cloud.connect_kwargs["api_timeout"] == 42


# -- the service's process, watched while waiting ----------------------------

# oslo.service's eventlet backend (nova 33) logs this and keeps the process.
_OSLO = "2026-12-02 12:00:00.200 {pid} ERROR oslo_service.backend._eventlet.service"
_TOO_OLD = (
    "nova.exception.ServiceTooOld: This service is older (v71) than the minimum (v72) version "
    "of the rest of the deployment."
)
START_FAILED_LOG = "\n".join(
    [
        "2026-12-02 12:00:00.100 {pid} INFO nova.service [-] Starting compute node",
        f"{_OSLO} [-] Error starting thread.: {_TOO_OLD}",
        f"{_OSLO} Traceback (most recent call last):",
        f'{_OSLO}   File "nova/service.py", line 1',
        f"{_OSLO}     self.service_ref = create()",
        f"{_OSLO} {_TOO_OLD}",
        _OSLO,
        "",
    ]
)


def process_files(tmp_path, pid, log=""):
    pidfile = tmp_path / "nova-compute.pid"
    logfile = tmp_path / "nova-compute.log"
    processes.write_record(str(pidfile), {"pid": pid, "start_time": processes.start_time(pid) or 1})
    logfile.write_text(log)
    return dict(pidfile=str(pidfile), logfile=str(logfile))


def test_present_fails_at_once_when_the_service_failed_to_start(cloud, clock, run_module, tmp_path):
    files = process_files(tmp_path, os.getpid(), START_FAILED_LOG.format(pid=os.getpid()))

    result = run_module(module, present(timeout=300, **files))

    assert result["failed"] is True
    assert result["msg"] == (
        "nova-compute failed to start its service: nova.exception.ServiceTooOld: This service "
        "is older (v71) than the minimum (v72) version of the rest of the deployment., before "
        "the cloud saw it; the end of its log is in log_tail"
    )
    assert "Error starting thread" in result["log_tail"]
    assert clock.now - 1000 < 1  # not the 300 s wait


def test_present_ignores_another_process_s_failure_in_the_log(cloud, clock, run_module, tmp_path):
    # The log is appended to: an earlier process's failure is not this one's.
    files = process_files(tmp_path, os.getpid(), START_FAILED_LOG.format(pid=1))
    cloud.at(3, lambda: cloud.add_compute(HOST))

    result = run_module(module, present(**files))

    assert result["changed"] is False and result["mapped"] is True


def test_present_fails_at_once_when_the_process_exits(cloud, clock, run_module, tmp_path):
    child = subprocess.Popen(["sleep", "30"])
    files = process_files(tmp_path, child.pid, "a line\n")
    cloud.at(2, lambda: (child.kill(), child.wait()))

    result = run_module(module, present(timeout=300, **files))

    assert result["failed"] is True
    assert result["msg"].startswith("nova-compute exited after it was started, before the cloud")
    assert result["log_tail"] == "a line"
    assert 2 <= clock.now - 1000 < 3


def test_present_fails_when_the_process_exited_before_it_looked(cloud, run_module, tmp_path):
    # A change that dies on import can be gone before this step starts: its record
    # of the start is there, its process not.
    child = subprocess.Popen(["true"])
    child.wait()
    files = process_files(tmp_path, child.pid, "Traceback: SystemExit(3)\n")

    result = run_module(module, present(**files))

    assert result["failed"] is True
    assert result["msg"].startswith("nova-compute exited after it was started, before the cloud")
    assert result["log_tail"] == "Traceback: SystemExit(3)"


def test_present_fails_when_the_process_is_not_running(cloud, run_module, tmp_path):
    files = process_files(tmp_path, os.getpid())
    os.unlink(processes.record_path(str(tmp_path / "nova-compute.pid")))

    result = run_module(module, present(**files))

    assert result["failed"] is True
    assert result["msg"].startswith("nova-compute is not running")


def test_present_fails_on_servers_that_landed_before_the_isolation(cloud, run_module):
    # The scheduler mapped the host itself and placed a server before the join.
    cloud.add_service(HOST)
    cloud.add_provider(HOST, allocations={"tenant-server-uuid": {"resources": {"VCPU": 1}}})
    cloud.mapped_hosts.add(HOST)

    result = run_module(module, present(aggregate=LABEL, label=LABEL))

    assert result["failed"] is True
    assert result["msg"].startswith(
        f"servers landed on the shard {HOST} before it was isolated (consumers tenant-server-uuid)"
    )


def test_present_fails_at_once_on_a_critical_line(cloud, clock, run_module, tmp_path):
    # nova-compute 2026.2 (oslo.service's threading backend) ends with CRITICAL.
    pid = os.getpid()
    log = (
        f"2026-12-02 12:22:26.206 {pid} CRITICAL nova [None req-6df3 - - - - - -] Unhandled "
        "error: nova.exception_Remote.ServiceTooOld_Remote: This service is older (v73) than "
        "the minimum (v74) version of the rest of the deployment. Unable to continue.\n"
    )
    files = process_files(tmp_path, pid, log)

    result = run_module(module, present(timeout=300, **files))

    assert result["failed"] is True
    assert (
        "failed to start its service: Unhandled error: nova.exception_Remote.ServiceTooOld_"
        in (result["msg"])
    )
    assert clock.now - 1000 < 1


def test_present_on_a_shard_already_isolated_keeps_its_servers(cloud, run_module):
    # The upgrade job's shard comes back with its server: already in its
    # aggregate (nova and placement), so its allocations are its own.
    cloud.add_service(HOST)
    cloud.add_provider(HOST, allocations={"own-server-uuid": {"resources": {"VCPU": 1}}})
    cloud.mapped_hosts.add(HOST)
    aggregate = cloud.add_aggregate(
        LABEL,
        hosts=[HOST],
        metadata={"shard_label": LABEL, "trait:CUSTOM_SHARD_0123ABCD4567": "required"},
    )
    cloud.provider_named(HOST)["aggregates"].append(aggregate.uuid)

    result = run_module(module, present(aggregate=LABEL, label=LABEL))

    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is False


def watched_compute(cloud, tmp_path, reported):
    """A compute whose process is watched; its record last reported `reported` s after
    that process started. Its files, the process's start (epoch s) and its service."""
    files = process_files(tmp_path, os.getpid())
    started = processes.started_at(processes.read_record(files["pidfile"]))
    cloud.add_compute(HOST)
    service = cloud.services[0]
    service.updated_at = fake_cloud.utc_iso(started + reported)
    return files, started, service


def test_present_waits_for_a_report_from_the_process_it_watches(cloud, clock, run_module, tmp_path):
    # An upgrade: the previous release's record is still "up" (its last report
    # before it was stopped); the new process saves its version into it at 3 s,
    # and its first heartbeat comes at 8 s.
    files, started, service = watched_compute(cloud, tmp_path, reported=-30)
    cloud.at(3, lambda: setattr(service, "updated_at", fake_cloud.utc_iso(started + 5)))
    cloud.at(8, lambda: setattr(service, "updated_at", fake_cloud.utc_iso(started + 10)))

    result = run_module(module, present(**files))

    assert result["changed"] is False and result["mapped"] is True
    assert clock.now - 1000 >= 8


def test_present_takes_a_new_report_whatever_the_cloud_s_clock(cloud, clock, run_module, tmp_path):
    # The cloud's clock is behind the node's: its reports look older than the
    # process; one that changes while the module watches is still the process's.
    files, started, service = watched_compute(cloud, tmp_path, reported=-300)
    cloud.at(4, lambda: setattr(service, "updated_at", fake_cloud.utc_iso(started - 290)))
    cloud.at(9, lambda: setattr(service, "updated_at", fake_cloud.utc_iso(started - 280)))

    result = run_module(module, present(**files))

    assert result["mapped"] is True
    assert clock.now - 1000 >= 9


def test_present_does_not_take_the_version_save_for_a_running_service(
    cloud, clock, run_module, tmp_path
):
    # The new process saved its version into the old record, then hung before
    # its first heartbeat (the record still "up" from the previous process's).
    files, started, service = watched_compute(cloud, tmp_path, reported=-30)
    cloud.at(3, lambda: setattr(service, "updated_at", fake_cloud.utc_iso(started + 5)))

    result = run_module(module, present(timeout=20, **files))

    assert result["failed"] is True
    assert "not yet a heartbeat of this process" in result["msg"]


def a_record_created_at_2s(cloud, heartbeat_at):
    """The watched process records its compute at 2 s (no report yet) and sends its first
    heartbeat at I(heartbeat_at) s."""
    cloud.at(2, lambda: cloud.add_compute(HOST))
    cloud.at(2, lambda: setattr(cloud.services[0], "updated_at", None))
    cloud.at(
        heartbeat_at, lambda: setattr(cloud.services[0], "updated_at", fake_cloud.utc_iso(1.0))
    )


def test_present_takes_the_first_heartbeat_of_a_record_the_process_created(
    cloud, clock, run_module, tmp_path
):
    files = process_files(tmp_path, os.getpid())
    a_record_created_at_2s(cloud, heartbeat_at=6)

    result = run_module(module, present(**files))

    # Any update of a record this process created is its own, whatever its date.
    assert result["mapped"] is True
    assert 6 <= clock.now - 1000 < 7


def test_present_times_out_on_a_record_only_the_previous_process_reported(
    cloud, clock, run_module, tmp_path
):
    files, _, service = watched_compute(cloud, tmp_path, reported=-30)
    stale = service.updated_at

    result = run_module(module, present(timeout=20, **files))

    assert result["failed"] is True
    assert result["msg"].startswith(f"compute service for host {HOST} did not come up within 20s")
    assert f"last update {stale} not yet a heartbeat of this process" in result["msg"]


def test_present_joins_placement_through_a_database_deadlock(cloud, run_module):
    # Eight shards joining at once: placement answered PUTs with a 500 deadlock.
    cloud.add_compute(HOST, mapped=False)
    cloud.at(1, lambda: cloud.mapped_hosts.add(HOST))
    cloud.aggregate_put_errors = [fake_cloud.DEADLOCK, fake_cloud.DEADLOCK]

    result = run_module(module, present(aggregate=LABEL, label=LABEL))

    assert result["changed"] is True and cloud.aggregate_put_errors == []
    provider = cloud.providers[result["resource_provider"]["uuid"]]
    assert provider["aggregates"] == [cloud.aggregates[0].uuid]


def test_present_does_not_retry_other_server_errors(cloud, run_module):
    cloud.add_compute(HOST)
    cloud.aggregate_put_errors = ["Internal Server Error: something else", fake_cloud.DEADLOCK]

    result = run_module(module, present(aggregate=LABEL, label=LABEL))

    assert result["failed"] is True
    assert "something else" in result["msg"]
    assert cloud.aggregate_put_errors == [fake_cloud.DEADLOCK]


BUS_URL = "rabbit://nova:p%40ss@mq.example:5672/cloud"


@pytest.fixture
def broker(monkeypatch):
    from fake_bus import FakeBroker

    broker = FakeBroker(vhost="cloud")
    connect = module.shard_bus.connect
    monkeypatch.setattr(
        module.shard_bus, "connect", lambda url, timeout: connect(url, timeout, broker.factory)
    )
    return broker


@pytest.fixture
def warned(monkeypatch):
    """The module's warnings, as it gives them (what Ansible returns of them depends on
    what earlier tests warned)."""
    messages = []
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, msg: messages.append(msg))
    return messages


def consuming(broker, host):
    """The host's process starts consuming its RPC queue."""
    broker.queues("cloud").add(f"compute.{host}")
    broker.consumers[f"compute.{host}"] = 1


def test_present_takes_a_new_record_once_its_process_listens_on_the_bus(
    cloud, clock, run_module, tmp_path, broker
):
    # nova-compute records itself at 2 s and consumes compute.<host> at 3 s;
    # its first heartbeat would come at 8 s.
    files = process_files(tmp_path, os.getpid())
    a_record_created_at_2s(cloud, heartbeat_at=8)
    cloud.at(3, lambda: consuming(broker, HOST))

    result = run_module(module, present(transport_url=BUS_URL, **files))

    assert result.get("failed") is not True, result.get("msg")
    assert result["mapped"] is True
    assert 3 <= clock.now - 1000 < 4
    # The connection is closed once the service is up.
    assert len(broker.made) == 1 and not broker.made[0].open


def test_present_does_not_take_a_consumer_for_a_record_that_existed(
    cloud, clock, run_module, tmp_path, broker
):
    # An upgrade: the host's queue may still have the previous process's
    # consumer; only this process's heartbeats count.
    files, started, service = watched_compute(cloud, tmp_path, reported=-30)
    consuming(broker, HOST)
    cloud.at(3, lambda: setattr(service, "updated_at", fake_cloud.utc_iso(started + 5)))
    cloud.at(8, lambda: setattr(service, "updated_at", fake_cloud.utc_iso(started + 10)))

    result = run_module(module, present(transport_url=BUS_URL, **files))

    assert result["mapped"] is True
    assert clock.now - 1000 >= 8


def test_present_without_an_answering_bus_waits_for_the_heartbeat(
    cloud, clock, run_module, tmp_path, broker, warned
):
    broker.refuse.add("mq.example:5672")
    files = process_files(tmp_path, os.getpid())
    a_record_created_at_2s(cloud, heartbeat_at=6)
    cloud.at(2, lambda: consuming(broker, HOST))

    result = run_module(module, present(transport_url=BUS_URL, **files))

    assert result["mapped"] is True
    assert 6 <= clock.now - 1000 < 7
    assert len(warned) == 1 and warned[0].startswith("not watching the message bus (")
    assert "p@ss" not in warned[0] and "p%40ss" not in warned[0]
    # One try: a bus that refused is not asked again at every poll.
    assert len(broker.connections) == 1


def test_the_phase_option_brackets_the_step_and_a_failed_one_has_no_end(
    cloud, clock, run_module, tmp_path
):
    # Every cloud module has the option (module_utils/shard_openstack.py ShardModule).
    ws = tmp_path / "ws"
    phase = dict(workspace=str(ws), name="deploy", start=True, end=True)

    def events():
        return [(e["phase"], e["event"]) for e in phases.read_events(ws / phases.PHASES_FILE)]

    cloud.add_compute(HOST)
    assert run_module(module, present(phase=phase))["mapped"] is True
    assert events() == [("deploy", "start"), ("deploy", "end")]

    failed = run_module(module, present(host="shard-0123abcd4568", timeout=5, phase=phase))
    assert failed["failed"] is True
    assert events() == [("deploy", "start"), ("deploy", "end"), ("deploy", "start")]

    run_module(module, present(phase=phase), check_mode=True)
    assert len(events()) == 3


def test_present_falls_back_to_the_heartbeat_when_the_bus_connection_drops(
    cloud, clock, run_module, tmp_path, broker, warned, monkeypatch
):

    def dropped(self):
        raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(type(broker.factory(host="x", virtual_host="/")), "channel", dropped)
    files = process_files(tmp_path, os.getpid())
    a_record_created_at_2s(cloud, heartbeat_at=6)
    cloud.at(2, lambda: consuming(broker, HOST))

    result = run_module(module, present(transport_url=BUS_URL, **files))

    assert result.get("failed") is not True, result.get("msg")
    assert 6 <= clock.now - 1000 < 7
    assert len(warned) == 1
    assert warned[0].startswith(
        f"not watching the message bus (cannot look for queue compute.{HOST}: ConnectionResetError"
    )
