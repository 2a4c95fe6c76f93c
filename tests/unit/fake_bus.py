"""A fake AMQP broker for module_utils/shard_bus.py: py-amqp's Connection as far as the
rule uses it (connect, channel, passive queue_declare, queue_delete, close)."""

from collections import namedtuple

# As amqp.protocol.queue_declare_ok_t.
DeclareOk = namedtuple("DeclareOk", ("queue", "message_count", "consumer_count"))


class AMQPError(Exception):
    """As py-amqp's errors: a reply code and the broker's text."""

    def __init__(self, code, text):
        super().__init__(text)
        self.code = code


class FakeBroker:
    def __init__(self, queues=(), vhost="/", refuse=()):
        self.vhosts = {vhost: set(queues)}
        self.refuse = set(refuse)  # host:port that refuse connections
        self.connections = []  # the keyword arguments of each connection made
        self.made = []  # each connection made
        self.deleted = []
        self.keep = set()  # queues whose delete is accepted but not carried out
        self.consumers = {}  # queue -> how many consumers it has (0 when absent)

    def queues(self, vhost="/"):
        return self.vhosts.setdefault(vhost, set())

    def factory(self, **kw):
        self.connections.append(kw)
        self.made.append(FakeConnection(self, kw))
        return self.made[-1]


class FakeConnection:
    def __init__(self, broker, kw):
        self.broker, self.kw, self.open, self.channels = broker, kw, False, []

    def connect(self):
        if self.kw["host"] in self.broker.refuse:
            raise ConnectionRefusedError(111, "Connection refused")
        self.open = True

    def channel(self):
        assert self.open, "a channel of a connection that is not open"
        channel = FakeChannel(self)
        self.channels.append(channel)
        return channel

    def close(self):
        self.open = False


class FakeChannel:
    def __init__(self, conn):
        self.conn, self.closed = conn, False

    def _queues(self):
        assert not self.closed, "a channel used after the broker closed it"
        return self.conn.broker.queues(self.conn.kw["virtual_host"])

    def queue_declare(self, queue, passive=False):
        assert passive, "only passive declares: the rule never creates a queue"
        if queue not in self._queues():
            self.closed = True  # a channel error closes the channel
            raise AMQPError(404, f"NOT_FOUND - no queue '{queue}'")
        return DeclareOk(queue, 0, self.conn.broker.consumers.get(queue, 0))

    def queue_delete(self, queue):
        queues = self._queues()
        if queue not in queues:
            self.closed = True
            raise AMQPError(404, f"NOT_FOUND - no queue '{queue}'")
        if queue not in self.conn.broker.keep:
            queues.discard(queue)
        self.conn.broker.deleted.append(queue)
        return 0

    def close(self):
        self.closed = True
