# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""The message bus side of a shard: which queues are its host's, and their deletion.

A service that listens for RPC as a server (nova-compute) makes oslo.messaging's
rabbit driver declare three queues per topic (amqpdriver.listen):

- ``<topic>``: shared by every server of the topic (every compute of the
  cloud). Never the shard's: never deleted.
- ``<topic>.<host>``: the host's own. Declared like any topic queue
  (auto_delete only with ``amqp_auto_delete``, false by default; no
  x-expires), so it stays on the bus for ever once the shard is gone: teardown
  deletes it. Not auto-delete instead: the upgrade job restarts the compute,
  and an auto-deleted queue would lose what was sent to it in between.
- ``<topic>_fanout_<uuid>``, and ``reply_<uuid>`` for the RPC calls it makes:
  declared with x-expires (``rabbit_transient_queues_ttl``, 30 minutes by
  default), so the broker removes them once unused. Their names do not carry
  the host (with ``use_queue_manager`` they carry the node's ``hostname``
  option, not nova's host), so nothing tells them from other computes' and
  teardown leaves them to expire.

Used by the modules (shard_teardown_cloud, for teardown and the janitor) and,
as shard_jobs.rules.bus, by the CLI and the tests. The AMQP client (py-amqp,
installed in the OpenStack client's virtualenv) is imported only to connect:
the names and the URL need the standard library only.
"""

import contextlib
from urllib.parse import unquote, urlsplit

from ansible.module_utils.shard_labels import is_label
from ansible.module_utils.shard_secrets import url_hosts

# The RPC topics each kind of shard's service listens on as a server, under
# its host name (nova/compute/rpcapi.py: RPC_TOPIC, and RPC_TOPIC_ALT since
# nova 2025.2's graceful shutdown; an older compute has no such queue, and a
# queue that does not exist is not deleted). A glance-api listens on none.
TOPICS = {"nova-compute": ("compute", "compute-alt")}
DEFAULT_PORT = 5672
# oslo.messaging's rabbit driver passes an empty virtual host to kombu, which reads it as "/".
DEFAULT_VHOST = "/"
# AMQP 0-9-1 reply code of a passive declare (or delete) of a queue that does not exist.
NOT_FOUND = 404


class BusError(Exception):
    """A problem with the message bus; its message never holds a credential."""


def host_queues(host, services=None):
    """The queues of I(host) that outlive it: <topic>.<host> for each topic of I(services)
    (every kind's when None, for the janitor, which does not know a label's kind).
    I(host) must be a shard label: a shard's host is always one, and a queue of
    any other host (the cloud's own computes) is never named."""
    if not is_label(host):
        raise ValueError(f"{str(host)[:60]!r} is not a shard's host name")
    names = []
    for service in sorted(TOPICS) if services is None else services:
        for topic in TOPICS.get(service, ()):
            name = f"{topic}.{host}"
            if name not in names:
                names.append(name)
    return names


def carries_host(queue, host):
    """Whether a queue's name carries I(host) (a shard label) at all: what a leak check
    that lists the bus (rabbitmqctl, in the tests) looks for, wider than host_queues."""
    return is_label(host) and host in queue


def parse_transport_url(url):
    """(hosts, virtual host) of an oslo.messaging transport URL, its hosts as
    shard_secrets.url_hosts reads them (the one reader of URL credentials): a list of
    dicts host, port (DEFAULT_PORT when absent), userid, password. Errors never show
    the URL."""
    if not isinstance(url, str) or "://" not in url:
        raise BusError("the transport URL is not a URL (scheme://...)")
    try:
        entries = url_hosts(url)
    except ValueError as exc:  # its message names the host's number, never the text
        raise BusError(f"the transport URL: {exc}") from None
    hosts = [
        {
            "host": entry["host"],
            "port": entry["port"] or DEFAULT_PORT,
            "userid": entry["user"],
            "password": entry["password"],
        }
        for entry in entries
        if entry["host"]
    ]
    if len(hosts) != len(entries) or not hosts:
        raise BusError("the transport URL names a host without an address")
    path = urlsplit(url).path
    vhost = unquote(path[1:]) if path.startswith("/") else ""
    return hosts, vhost or DEFAULT_VHOST


def address_of(entry):
    """host:port as py-amqp takes it (brackets around an IPv6 address)."""
    host = f"[{entry['host']}]" if ":" in entry["host"] else entry["host"]
    return f"{host}:{entry['port']}"


def connect(url, timeout, factory=None):
    """An open AMQP connection to the first host of I(url) that accepts one (oslo.messaging
    fails over between them the same way). I(factory) makes an unopened connection from
    py-amqp's keyword arguments (amqp.Connection by default; tests give a fake)."""
    hosts, vhost = parse_transport_url(url)
    if factory is None:
        import amqp  # in the OpenStack client's virtualenv (roles/shard)

        factory = amqp.Connection
    problems = []
    for entry in hosts:
        conn = factory(
            host=address_of(entry),
            userid=entry["userid"] or "guest",
            password=entry["password"] or "guest",
            virtual_host=vhost,
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
        )
        try:
            conn.connect()
            return conn
        except Exception as exc:  # socket errors, AMQP refusals: try the next host
            problems.append(f"{address_of(entry)}: {_error(exc)}")
            close(conn)
    raise BusError("no host of the message bus accepted a connection (" + "; ".join(problems) + ")")


def _error(exc):
    # py-amqp's errors say what the broker said (reply text), never the password.
    return f"{type(exc).__name__}: {str(exc)[:200]}" if str(exc) else type(exc).__name__


def close(thing):
    """Close a connection or channel, whatever state it is in."""
    # Closing after a failure, or after the answers are in: nothing more to learn.
    with contextlib.suppress(Exception):
        thing.close()


def server_queue(service, host):
    """The queue a server of I(service) on I(host) (a shard label) consumes its RPC calls
    from: <topic>.<host> of the service's first topic. A consumer on it shows that the
    service listens (nova-compute starts consuming once its compute node is recorded,
    5 s before its first heartbeat: nova's servicegroup INITIAL_REPORTING_DELAY)."""
    if service not in TOPICS:
        raise ValueError(f"{str(service)[:60]!r} listens on no RPC topic the jobs know")
    return host_queues(host, [service])[0]


def _declare_passive(conn, name):
    """py-amqp's answer to a passive declare of the queue (queue, message_count,
    consumer_count), or None when the queue does not exist; in a channel of its own (a
    NOT_FOUND answer closes the channel it came on)."""
    channel = None
    try:
        channel = conn.channel()
        return channel.queue_declare(queue=name, passive=True)
    except Exception as exc:
        if getattr(exc, "code", None) == NOT_FOUND:
            return None
        raise BusError(f"cannot look for queue {name}: {_error(exc)}") from None
    finally:
        if channel is not None:
            close(channel)


def queue_exists(conn, name):
    """Whether the queue exists."""
    return _declare_passive(conn, name) is not None


def consumers(conn, name):
    """How many consumers the queue has; 0 when it does not exist."""
    answer = _declare_passive(conn, name)
    return 0 if answer is None else answer.consumer_count


def existing(conn, names):
    """The queues of I(names) that exist."""
    return [name for name in names if queue_exists(conn, name)]


def delete_queues(conn, names):
    """Delete each queue of I(names) that exists, with its messages (nothing will consume
    them: their host is gone); the names deleted."""
    deleted = []
    for name in existing(conn, names):
        channel = conn.channel()
        try:
            channel.queue_delete(queue=name)
            deleted.append(name)
        except Exception as exc:
            if getattr(exc, "code", None) != NOT_FOUND:  # gone meanwhile: not ours to report
                raise BusError(f"cannot delete queue {name}: {_error(exc)}") from None
        finally:
            close(channel)
    return deleted
