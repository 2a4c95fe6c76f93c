"""shard_cloud_health: a real openstacksdk connection to a stub cloud over local HTTP.

The stub answers keystone's version discovery and token requests, nova's
service list and the root of each catalog endpoint; the message bus is a real
TCP server on a free port. The connection is made from a clouds.yaml named by
OS_CLIENT_CONFIG_FILE, as on a node, so the keystoneauth and openstacksdk
errors the module sees are the real ones.
"""

import json
import socket
import socketserver
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import shard_cloud_health as module
import yaml

from shard_jobs.rules import secrets

PASSWORD = "s3cret-admin-password"
RABBIT_PASSWORD = "s3cret-rabbit-password"
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
SERVICE_TYPES = ("compute", "placement", "image", "network")


def free_port():
    """A port nothing listens on (bound for a moment, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StubCloud:
    """What the stub HTTP server answers, and the requests it got."""

    def __init__(self):
        self.password = PASSWORD  # the password keystone accepts
        self.token_status = None  # answer the token request with this error status
        self.nova_services = [
            dict(binary="nova-conductor", host="ctl", state="up"),
            dict(binary="nova-scheduler", host="ctl", state="up"),
            dict(binary="nova-compute", host="cmp-1", state="up"),
        ]
        self.services_status = 200
        self.status = {}  # service type -> status of its endpoint root
        self.catalog = {}  # service type -> endpoint URL (set once the port is known)
        self.requests = []  # (method, path, with a token)
        self.port = None

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_url(self):
        return f"{self.base}/identity/v3"

    def token(self):
        catalog = [
            {
                "type": service_type,
                "name": service_type,
                "id": service_type,
                "endpoints": [
                    {
                        "id": f"{service_type}-public",
                        "interface": "public",
                        "region": "RegionOne",
                        "region_id": "RegionOne",
                        "url": url,
                    }
                ],
            }
            for service_type, url in self.catalog.items()
        ]
        project = {"id": "p1", "name": "admin", "domain": {"id": "default", "name": "Default"}}
        return {
            "token": {
                "methods": ["password"],
                "issued_at": "2026-01-01T00:00:00.000000Z",
                "expires_at": "2999-01-01T00:00:00.000000Z",
                "user": {"id": "u1", "name": "admin", "domain": project["domain"]},
                "project": project,
                "roles": [{"id": "r1", "name": "admin"}],
                "catalog": catalog,
            }
        }


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, body=None, headers=()):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        stub = self.server.stub
        stub.requests.append(("POST", self.path, "X-Auth-Token" in self.headers))
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/identity/v3/auth/tokens"
        password = body["auth"]["identity"]["password"]["user"]["password"]
        if stub.token_status:
            return self.send(stub.token_status, {"error": {"code": stub.token_status}})
        if password != stub.password:
            message = "The request you have made requires authentication."
            return self.send(
                401, {"error": {"code": 401, "title": "Unauthorized", "message": message}}
            )
        self.send(201, stub.token(), [("X-Subject-Token", "token-1")])

    def do_GET(self):
        stub = self.server.stub
        stub.requests.append(("GET", self.path, "X-Auth-Token" in self.headers))
        path = self.path.rstrip("/")
        if path == "/identity/v3":
            link = {"rel": "self", "href": stub.auth_url + "/"}
            return self.send(200, {"version": {"id": "v3.14", "status": "stable", "links": [link]}})
        service_type = path.split("/")[1]
        if path.startswith("/compute/v2.1/os-services"):
            if stub.services_status != 200:
                message = "Policy doesn't allow os_compute_api:os-services:list to be performed."
                return self.send(stub.services_status, {"forbidden": {"message": message}})
            services = [
                dict(s, id=str(i), status="enabled", zone="internal")
                for i, s in enumerate(stub.nova_services)
            ]
            return self.send(200, {"services": services})
        if service_type in stub.status:
            return self.send(stub.status[service_type], {})
        if service_type == "compute":
            link = {"rel": "self", "href": stub.base + "/compute/v2.1/"}
            version = {"id": "v2.1", "status": "CURRENT", "version": "2.95", "min_version": "2.1"}
            return self.send(200, {"version": dict(version, links=[link])})
        self.send(200, {"versions": []})


@pytest.fixture
def stub(tmp_path, monkeypatch):
    """The stub cloud, running, and a clouds.yaml whose cloud "target" points at it."""
    for name in ("OS_CLOUD", "OS_AUTH_URL", "OS_PASSWORD", "OS_USERNAME", "OS_REGION_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    cloud = StubCloud()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.stub = cloud
    cloud.port = server.server_port
    cloud.catalog = {
        service_type: f"{cloud.base}/{service_type}"
        for service_type in ("identity",) + SERVICE_TYPES
    }
    cloud.catalog["identity"] = cloud.auth_url
    cloud.catalog["compute"] = f"{cloud.base}/compute/v2.1"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()

    def write_clouds(auth_url=None):
        auth = dict(
            auth_url=auth_url or cloud.auth_url,
            username="admin",
            password=PASSWORD,
            project_name="admin",
            user_domain_name="Default",
            project_domain_name="Default",
        )
        clouds = {"clouds": {"target": dict(auth=auth, region_name="RegionOne")}}
        (tmp_path / "clouds.yaml").write_text(yaml.safe_dump(clouds))

    cloud.write_clouds = write_clouds
    write_clouds()
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "clouds.yaml"))
    yield cloud
    server.shutdown()
    server.server_close()


@pytest.fixture
def broker():
    """broker(reply) -> (port, received): a TCP server answering each connection with reply.

    reply None keeps the connection open and silent. received collects what each
    connection sent first (up to the 8 bytes of an AMQP protocol header).
    """
    servers = []
    stop = threading.Event()

    def start(reply):
        received = []

        class BrokerHandler(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(5)
                data = b""
                try:
                    while len(data) < 8:
                        chunk = self.request.recv(8 - len(data))
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    pass
                received.append(data)
                if reply is None:
                    stop.wait(10)
                else:
                    self.request.sendall(reply)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), BrokerHandler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server.server_address[1], received

    yield start
    stop.set()
    for server in servers:
        server.shutdown()
        server.server_close()


def connection_start_frame():
    """AMQP 0-9-1 Connection.Start, as RabbitMQ sends it after the protocol header."""

    def longstr(value):
        return struct.pack(">I", len(value)) + value

    properties = b"\x07productS" + longstr(b"RabbitMQ")
    payload = (
        struct.pack(">HHBB", 10, 10, 0, 9)
        + struct.pack(">I", len(properties))
        + properties
        + longstr(b"AMQPLAIN PLAIN")
        + longstr(b"en_US")
    )
    return struct.pack(">BHI", 1, 0, len(payload)) + payload + b"\xce"


def rabbit(*ports):
    hosts = ",".join(f"nova:{RABBIT_PASSWORD}@127.0.0.1:{port}" for port in ports)
    return f"rabbit://{hosts}/"


def health(**kwargs):
    args = dict(cloud="target", probe_timeout=2)
    args.update(kwargs)
    return args


# -- healthy ------------------------------------------------------------------


def test_a_healthy_cloud_passes_and_changes_nothing(stub, broker, run_module):
    port, received = broker(connection_start_frame())

    result = run_module(module, health(transport_url=rabbit(port)))

    assert result["changed"] is False
    assert "failed" not in result
    assert result["checked"] == [
        "identity",
        "compute",
        "placement",
        "image",
        "network",
        "nova-conductor",
        "nova-scheduler",
        "message bus",
    ]
    assert received == [AMQP_HEADER]
    # Read-only: one token request, GETs otherwise; the probes go without the token.
    assert [r for r in stub.requests if r[0] != "GET"] == [
        ("POST", "/identity/v3/auth/tokens", False)
    ]
    for service_type in ("placement", "image", "network"):
        assert ("GET", f"/{service_type}", False) in stub.requests
    assert ("GET", "/compute/v2.1", False) in stub.requests
    assert ("GET", "/compute/v2.1/os-services", True) in stub.requests
    assert RABBIT_PASSWORD not in json.dumps(result)
    assert PASSWORD not in json.dumps(result)


def test_check_mode_checks_all_the_same(stub, broker, run_module):
    port, received = broker(connection_start_frame())

    result = run_module(module, health(transport_url=rabbit(port)), check_mode=True)

    assert result["changed"] is False
    assert result["checked"][-1] == "message bus"
    assert received == [AMQP_HEADER]


def test_only_the_services_asked_for_are_checked(stub, run_module):
    result = run_module(module, health(services=["placement"], nova_services=[]))

    assert result["checked"] == ["identity", "placement"]
    gets = [r[1] for r in stub.requests if r[0] == "GET" and r[1] != "/identity/v3"]
    assert gets == ["/placement"]


def test_an_endpoint_answering_4xx_or_3xx_is_up(stub, run_module):
    stub.status.update(image=300, network=401)

    result = run_module(module, health(nova_services=[]))

    assert result["checked"] == ["identity", "compute", "placement", "image", "network"]


def test_one_conductor_up_of_two_is_enough(stub, run_module):
    stub.nova_services.insert(0, dict(binary="nova-conductor", host="old", state="down"))

    result = run_module(module, health())

    assert "failed" not in result
    assert "nova-conductor" in result["checked"]


# -- unhealthy ----------------------------------------------------------------


def test_a_missing_endpoint_is_named(stub, run_module):
    del stub.catalog["image"]

    result = run_module(module, health())

    assert result["failed"] is True
    assert result["msg"] == "target cloud unhealthy: image (no endpoint in the catalog)"


def test_an_endpoint_answering_5xx_is_named(stub, run_module):
    stub.status["placement"] = 503

    result = run_module(module, health())

    assert result["failed"] is True
    assert result["msg"] == (
        f"target cloud unhealthy: placement at {stub.base}/placement answers HTTP 503"
    )


def test_an_unreachable_endpoint_is_named(stub, run_module):
    url = f"http://127.0.0.1:{free_port()}/network"
    stub.catalog["network"] = url

    result = run_module(module, health())

    assert result["failed"] is True
    assert result["msg"].startswith(f"target cloud unhealthy: network at {url} unreachable (")
    assert f"Unable to establish connection to {url}" in result["msg"]


def test_an_endpoint_that_does_not_answer_is_named(stub, broker, run_module):
    port, received = broker(None)  # accepts the connection, never answers
    url = f"http://127.0.0.1:{port}/image"
    stub.catalog["image"] = url

    result = run_module(module, health(probe_timeout=1))

    assert result["failed"] is True
    assert (
        result["msg"]
        == f"target cloud unhealthy: image at {url} unreachable (Request to {url} timed out)"
    )
    assert received == [b"GET /ima"]


def test_a_conductor_that_is_down(stub, run_module):
    stub.nova_services[0]["state"] = "down"

    result = run_module(module, health())

    assert result["failed"] is True
    assert result["msg"] == "target cloud unhealthy: nova-conductor is down"


def test_a_scheduler_that_never_ran(stub, run_module):
    stub.nova_services = [s for s in stub.nova_services if s["binary"] != "nova-scheduler"]

    result = run_module(module, health())

    assert result["failed"] is True
    assert result["msg"] == "target cloud unhealthy: nova-scheduler is not running"


def test_services_that_cannot_be_listed(stub, run_module):
    stub.services_status = 403  # not an admin

    result = run_module(module, health())

    assert result["failed"] is True
    assert result["msg"].startswith(
        "target cloud unhealthy: compute services cannot be listed (ForbiddenException: 403"
    )
    assert len(result["msg"]) < 300


def test_a_broker_that_speaks_something_else(stub, broker, run_module):
    port, received = broker(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    result = run_module(module, health(transport_url=rabbit(port)))

    assert result["failed"] is True
    assert result["msg"] == (
        f"target cloud unhealthy: message bus at 127.0.0.1:{port} does not speak AMQP 0-9-1"
    )
    assert received == [AMQP_HEADER]


def test_a_broker_that_closes_without_a_word(stub, broker, run_module):
    port, _ = broker(b"")

    result = run_module(module, health(transport_url=rabbit(port)))

    assert result["msg"] == (
        f"target cloud unhealthy: message bus at 127.0.0.1:{port} does not speak AMQP 0-9-1"
    )


def test_a_broker_that_does_not_answer(stub, broker, run_module):
    port, received = broker(None)

    result = run_module(module, health(transport_url=rabbit(port), probe_timeout=1))

    assert result["failed"] is True
    assert result["msg"] == (
        f"target cloud unhealthy: message bus at 127.0.0.1:{port} unreachable (timed out)"
    )
    assert received == [AMQP_HEADER]


def test_a_closed_broker_port(stub, run_module):
    port = free_port()

    result = run_module(module, health(transport_url=rabbit(port)))

    assert result["failed"] is True
    assert result["msg"] == (
        f"target cloud unhealthy: message bus at 127.0.0.1:{port} unreachable (Connection refused)"
    )
    assert RABBIT_PASSWORD not in json.dumps(result)


def test_a_broker_url_without_a_port_means_5672(stub, monkeypatch, run_module):
    probed = []

    def create_connection(address, timeout=None):
        probed.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(module.socket, "create_connection", create_connection)

    result = run_module(module, health(transport_url="rabbit://nova:pw@mq.example/"))

    assert probed == [("mq.example", 5672)]
    assert result["msg"] == (
        "target cloud unhealthy: message bus at mq.example:5672 unreachable (Connection refused)"
    )


def test_every_host_of_a_multi_host_url_is_probed(stub, broker, run_module):
    # oslo.messaging's form: user:password@host:port for each host, comma separated.
    # A compute may connect to any of them, so each must answer (the old probe
    # looked at the first host only).
    good, received = broker(connection_start_frame())
    other, received_other = broker(connection_start_frame())
    closed = free_port()

    both_good = run_module(module, health(transport_url=rabbit(good, other)))
    second_closed = run_module(module, health(transport_url=rabbit(good, closed)))

    assert "failed" not in both_good and both_good["checked"][-1] == "message bus"
    assert received == [AMQP_HEADER, AMQP_HEADER] and received_other == [AMQP_HEADER]
    assert second_closed["msg"] == (
        f"target cloud unhealthy: message bus at 127.0.0.1:{closed} unreachable "
        "(Connection refused)"
    )


# A password with '@', ':' and '/', percent-encoded
# (module_utils/shard_secrets.py, url_quoted), two names of one broker.
HARD = "ab@cd:ef/gh"


def test_a_percent_encoded_password_and_two_hosts_are_read_as_oslo_messaging_does(
    stub, monkeypatch, run_module
):
    probed = []

    class Broker:  # answers a protocol header with a connection.start frame
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def sendall(self, data):
            pass

        def recv(self, size):
            return b"\x01\x00\x00\x00\x00\x01\x00"[:size]

    def create_connection(address, timeout=None):
        probed.append(address)
        if address == ("localhost", 5673):  # the second host is down
            raise ConnectionRefusedError(111, "Connection refused")
        return Broker()

    monkeypatch.setattr(module.socket, "create_connection", create_connection)
    pw = secrets.url_quoted(HARD)
    url = f"rabbit://nova:{pw}@127.0.0.1:5672,nova:{pw}@localhost:5673/vhost"

    result = run_module(module, health(transport_url=url))

    # The second host was read (its port too) and probed after the first answered.
    assert probed == [("127.0.0.1", 5672), ("localhost", 5673)]
    assert result["msg"] == (
        "target cloud unhealthy: message bus at localhost:5673 unreachable (Connection refused)"
    )
    for form in (HARD, pw, "cd:ef"):
        assert form not in json.dumps(result)


def test_a_port_that_is_not_a_number_is_said_without_the_url(stub, monkeypatch, run_module):
    # An unencoded password after the last '@' reads as a port: the message names
    # the host's place, never the text (the old probe raised int()'s ValueError
    # with the text in it).
    monkeypatch.setattr(module.socket, "create_connection", lambda *a, **k: None)

    result = run_module(module, health(transport_url="rabbit://nova:pw@mq.example:pa55word/"))

    assert result["msg"] == (
        "target cloud unhealthy: message bus URL unusable "
        "(host #1 of the URL has a port that is not a port number)"
    )
    assert "pa55word" not in json.dumps(result)


def test_an_ipv6_broker_address_is_connected_to_without_brackets_and_named_with_them(
    stub, monkeypatch, run_module
):
    probed = []

    def create_connection(address, timeout=None):
        probed.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(module.socket, "create_connection", create_connection)

    result = run_module(module, health(transport_url="rabbit://nova:pw@[fd00::5]:5673/"))

    assert probed == [("fd00::5", 5673)]
    assert result["msg"] == (
        "target cloud unhealthy: message bus at [fd00::5]:5673 unreachable (Connection refused)"
    )


# -- identity and credentials ---------------------------------------------------


def test_wrong_credentials_are_said_to_be_the_problem(stub, run_module):
    stub.password = "another-password"

    result = run_module(module, health())

    assert result["failed"] is True
    assert result["msg"] == (
        f"cannot authenticate to the target cloud at {stub.auth_url}: "
        "wrong user name, password or project (HTTP 401)"
    )
    assert PASSWORD not in json.dumps(result)
    # Nothing was probed after the failed authentication.
    assert [r[1] for r in stub.requests] == ["/identity/v3", "/identity/v3/auth/tokens"]


def test_an_unreachable_keystone(stub, run_module):
    auth_url = f"http://127.0.0.1:{free_port()}/v3"
    stub.write_clouds(auth_url)

    result = run_module(module, health())

    assert result["failed"] is True
    assert result["msg"] == f"target cloud unhealthy: identity at {auth_url} unreachable"


def test_a_keystone_answering_5xx(stub, run_module):
    stub.token_status = 500

    result = run_module(module, health())

    assert result["failed"] is True
    assert result["msg"].startswith(f"target cloud unhealthy: identity at {stub.auth_url}: ")
    assert "500" in result["msg"]


def test_an_unknown_cloud_name(stub, run_module):
    result = run_module(module, health(cloud="nope"))

    assert result["failed"] is True
    assert result["msg"] == "cloud 'nope' not usable: Cloud nope was not found."
    assert stub.requests == []


# -- the probe on its own -------------------------------------------------------


def test_amqp_probe_accepts_a_connection_start(broker):
    port, _ = broker(connection_start_frame())

    assert module.amqp_probe(f"rabbit://127.0.0.1:{port}", 2) is None


# -- what the exercise needs: the image it boots, room in the quota -------------


def needs_cloud(cloud, images=(), **absolute):
    """The fake cloud, with images and the project's compute limits."""
    from fake_cloud import compute_limits, ns

    cloud.images = [ns(id=f"i-{name}", name=name, is_hidden=False) for name in images]
    return compute_limits(cloud, **absolute)


NO_SERVICES = dict(services=[], nova_services=[])
AUTH_CONFIG = type("Config", (), {"get_auth_args": staticmethod(lambda: {"auth_url": "http://k"})})


def test_the_image_and_the_room_are_checked_in_the_same_run(cloud, run_module, monkeypatch):
    monkeypatch.setattr(type(cloud), "config", property(lambda self: AUTH_CONFIG))
    needs_cloud(cloud, images=["cirros"], instances_used=3)

    result = run_module(
        module, health(image="cirros", room=dict(servers=1, vcpus=1, ram=128), **NO_SERVICES)
    )

    assert "failed" not in result
    assert result["checked"] == ["identity", "image cirros", "quota"]
    assert result["limits"]["instances"] == {"max": 10, "used": 3, "needed": 1}
    assert cloud.mutations == []


def test_a_missing_image_is_named_with_what_to_do(cloud, run_module, monkeypatch):
    monkeypatch.setattr(type(cloud), "config", property(lambda self: AUTH_CONFIG))
    needs_cloud(cloud, images=["other"])

    result = run_module(module, health(image="cirros", **NO_SERVICES))

    assert result["failed"] is True
    assert result["msg"].startswith("image cirros not found in the target cloud: ")
    assert "shard_profile_options {image: ...}" in result["msg"]


def test_no_room_is_the_quota_rule_message(cloud, run_module, monkeypatch):
    monkeypatch.setattr(type(cloud), "config", property(lambda self: AUTH_CONFIG))
    needs_cloud(cloud, images=["cirros"], total_cores=2, total_cores_used=2)

    result = run_module(module, health(image="cirros", room=dict(vcpus=1, ram=64), **NO_SERVICES))

    assert result["failed"] is True
    assert result["msg"] == (
        "target cloud has no room: the quota of project p-shard-ci is exhausted: "
        "cores 2 of 2 cores used, 1 more needed"
    )


def test_pre_flight_checks_the_services_the_embedded_cloud_waits_for():
    """The role's default is what pre-flight checks on every job; the embedded cloud's
    readiness waits for module_utils/shard_nova_services.py's list: one list."""
    from ansible.module_utils.shard_nova_services import CONTROL_SERVICES

    from shard_jobs import paths

    role = paths.ROLES / "shard_preflight"
    defaults = yaml.safe_load((role / "defaults" / "main.yaml").read_text())
    spec = yaml.safe_load((role / "meta" / "argument_specs.yaml").read_text())
    option = spec["argument_specs"]["main"]["options"]["shard_preflight_nova_services"]
    assert defaults["shard_preflight_nova_services"] == list(CONTROL_SERVICES)
    assert option["default"] == list(CONTROL_SERVICES)
