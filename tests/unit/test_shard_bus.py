"""module_utils/shard_bus.py: which queues are a shard host's, the transport URL, and
their deletion, against a fake broker."""

import pytest
from fake_bus import AMQPError, FakeBroker

from shard_jobs.rules import bus

HOST = "shard-0123abcd4567"
OTHER = "shard-ffff00001111"
# What the bus holds while the shard and the cloud's own compute run (as listed on
# the embedded cloud): the shared topic queues, each host's, the transient ones.
QUEUES = {
    "compute",
    "compute-alt",
    f"compute.{HOST}",
    f"compute-alt.{HOST}",
    f"compute.{OTHER}",
    "compute.cloud-compute",
    "compute_fanout_0b719883446e42ae9bef92312d897e73",
    "reply_aec70ade14804d13a1252dcd2b63d907",
    "conductor",
    "conductor.vm",
}
# A password with every character a URL's user information may not hold as is.
PASSWORD = "p@ss:w/rd%,?#"
ENCODED = "p%40ss%3Aw%2Frd%25%2C%3F%23"


def test_a_shard_host_s_queues_are_its_topics_under_its_name():
    assert bus.host_queues(HOST, ["nova-compute"]) == [f"compute.{HOST}", f"compute-alt.{HOST}"]
    # The janitor does not know a label's kind: every kind's.
    assert bus.host_queues(HOST) == [f"compute.{HOST}", f"compute-alt.{HOST}"]
    # A glance-api listens on no topic.
    assert bus.host_queues(HOST, ["glance-api"]) == []


@pytest.mark.parametrize("host", ["shard-0123abcd", "cloud-compute", "", "*", None])
def test_only_a_shard_s_host_has_queues_named(host):
    # Never the queues of a host the jobs did not make (the cloud's computes).
    with pytest.raises(ValueError, match="is not a shard's host name"):
        bus.host_queues(host)


def test_what_a_listing_counts_as_the_host_s():
    assert sorted(q for q in QUEUES if bus.carries_host(q, HOST)) == [
        f"compute-alt.{HOST}",
        f"compute.{HOST}",
    ]
    assert not bus.carries_host("compute.cloud-compute", "cloud-compute")


def test_a_multi_host_url_with_an_encoded_password():
    url = f"rabbit://nova:{ENCODED}@mq1.example:5672,nova:{ENCODED}@mq2.example:5673/shard%2Fha"
    hosts, vhost = bus.parse_transport_url(url)
    assert [(h["host"], h["port"], h["userid"], h["password"]) for h in hosts] == [
        ("mq1.example", 5672, "nova", PASSWORD),
        ("mq2.example", 5673, "nova", PASSWORD),
    ]
    assert vhost == "shard/ha"


def test_a_password_with_a_raw_at_sign_and_colon_is_read_as_oslo_messaging_reads_it():
    # The last '@' ends the user information, the first ':' ends the user name.
    hosts, _ = bus.parse_transport_url("rabbit://nova:p@s:s@mq.example/")
    assert (hosts[0]["userid"], hosts[0]["password"], hosts[0]["host"]) == (
        "nova",
        "p@s:s",
        "mq.example",
    )


@pytest.mark.parametrize(
    ("url", "address", "vhost"),
    [
        ("rabbit://u:p@mq.example/", "mq.example:5672", "/"),
        ("rabbit://u:p@mq.example", "mq.example:5672", "/"),
        ("rabbit://u:p@10.0.0.5:5673/nova", "10.0.0.5:5673", "nova"),
        ("rabbit://u:p@[fd00::5]:5673/", "[fd00::5]:5673", "/"),
        ("rabbit://u:p@[fd00::5]/", "[fd00::5]:5672", "/"),
    ],
)
def test_addresses_ports_and_vhosts(url, address, vhost):
    hosts, parsed_vhost = bus.parse_transport_url(url)
    assert bus.address_of(hosts[0]) == address
    assert parsed_vhost == vhost


@pytest.mark.parametrize(
    "url", [f"nova:{PASSWORD}", f"rabbit://nova:{ENCODED}@/", f"rabbit://u:{ENCODED}@mq:56x2/"]
)
def test_a_bad_url_is_named_without_its_password(url):
    with pytest.raises(bus.BusError) as err:
        bus.parse_transport_url(url)
    assert PASSWORD not in str(err.value) and ENCODED not in str(err.value)


def test_connect_fails_over_to_the_next_host():
    broker = FakeBroker(refuse={"mq1.example:5672"}, vhost="shard-ha")
    url = f"rabbit://nova:{ENCODED}@mq1.example:5672,nova:{ENCODED}@mq2.example:5672/shard-ha"

    conn = bus.connect(url, 5, factory=broker.factory)

    assert conn.open and conn.kw["host"] == "mq2.example:5672"
    assert [c["host"] for c in broker.connections] == ["mq1.example:5672", "mq2.example:5672"]
    assert {(c["userid"], c["password"], c["virtual_host"]) for c in broker.connections} == {
        ("nova", PASSWORD, "shard-ha")
    }


def test_no_host_answering_is_one_error_without_the_password():
    broker = FakeBroker(refuse={"mq1.example:5672", "mq2.example:5672"})
    url = f"rabbit://nova:{ENCODED}@mq1.example,nova:{ENCODED}@mq2.example/"

    with pytest.raises(bus.BusError) as err:
        bus.connect(url, 5, factory=broker.factory)

    message = str(err.value)
    assert message.startswith("no host of the message bus accepted a connection (mq1.example:5672")
    assert "mq2.example:5672" in message
    assert PASSWORD not in message and ENCODED not in message


def connected(broker):
    return bus.connect("rabbit://u:p@mq/", 5, factory=broker.factory)


def test_only_the_host_s_queues_that_exist_are_deleted():
    broker = FakeBroker(queues=QUEUES - {f"compute-alt.{HOST}"})
    conn = connected(broker)

    deleted = bus.delete_queues(conn, bus.host_queues(HOST))

    assert deleted == broker.deleted == [f"compute.{HOST}"]
    assert broker.queues() == QUEUES - {f"compute.{HOST}", f"compute-alt.{HOST}"}
    assert bus.existing(conn, bus.host_queues(HOST)) == []
    # A NOT_FOUND closed its channel: each question had a channel of its own.
    assert all(channel.closed for channel in conn.channels)


def test_a_refused_delete_is_an_error_naming_the_queue(monkeypatch):
    broker = FakeBroker(queues=QUEUES)
    conn = connected(broker)

    def refused(self, queue):
        raise AMQPError(403, "ACCESS_REFUSED - configure access to queue refused")

    monkeypatch.setattr("fake_bus.FakeChannel.queue_delete", refused)
    with pytest.raises(
        bus.BusError, match=f"cannot delete queue compute.{HOST}: AMQPError: ACCESS"
    ):
        bus.delete_queues(conn, bus.host_queues(HOST))


def test_a_lookup_that_fails_otherwise_is_no_answer(monkeypatch):
    broker = FakeBroker(queues=QUEUES)
    conn = connected(broker)

    def refused(self, queue, passive=False):
        raise AMQPError(403, "ACCESS_REFUSED")

    monkeypatch.setattr("fake_bus.FakeChannel.queue_declare", refused)
    # Never read as "not found": a leak check must not pass on an error.
    with pytest.raises(bus.BusError, match=f"cannot look for queue compute.{HOST}"):
        bus.existing(conn, bus.host_queues(HOST))
