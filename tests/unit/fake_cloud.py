"""A small stateful stand-in for an openstacksdk connection, for the unit tests.

It implements only the proxy calls the shard-jobs modules make, keeps the
state they act on (services, providers, traits, servers, ...) and records every
call in ``calls``, so tests can check what was called and that check mode
mutates nothing. Errors are openstacksdk's own exceptions, built from HTTP
responses as the SDK builds them.
"""

import itertools
import json
import re
import time
from types import SimpleNamespace
from urllib.parse import parse_qs, unquote, urlsplit

import requests
from openstack import exceptions

MUTATING_PREFIXES = ("create_", "delete_", "update_", "set_", "add_", "remove_", "assign_")
STANDARD_TRAITS = {"COMPUTE_NODE", "HW_CPU_X86_AVX2", "COMPUTE_DEVICE_TAGGING"}
OWN_PROJECT = "project-own"

_ERROR_KEYS = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest"}


def utc_iso(epoch):
    """An OpenStack API timestamp (as nova's os-services gives updated_at)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000", time.gmtime(epoch))


def response(status, body=None, url="http://cloud.example/"):
    """A requests.Response as keystoneauth hands it to the SDK."""
    resp = requests.Response()
    resp.status_code = status
    resp.url = url
    resp.reason = {200: "OK", 204: "No Content"}.get(status, "Error")
    resp.headers["content-type"] = "application/json"
    resp._content = json.dumps(body).encode() if body is not None else b""
    return resp


def http_error(status, message, url="http://cloud.example/"):
    """The SDK exception of an HTTP error answer carrying message (as nova words it)."""
    body = {_ERROR_KEYS.get(status, "error"): {"message": message, "code": status}}
    try:
        exceptions.raise_from_response(response(status, body, url))
    except exceptions.HttpException as exc:
        return exc
    raise AssertionError(f"status {status} is not an error")


def ns(**kwargs):
    return SimpleNamespace(**kwargs)


class FakeCloud:
    def __init__(self, clock):
        self.clock = clock
        clock.on_sleep.append(self._tick)
        self.calls = []
        self.events = []
        self.connect_kwargs = None
        self.current_project_id = OWN_PROJECT
        self.current_user_id = "user-own"
        self._ids = itertools.count(1)
        # compute
        self.services = []
        self.aggregates = []
        self.servers = []
        self.deleted_servers = []  # what nova lists with deleted=true (admin)
        self.flavors = []
        self.mapped_hosts = set()
        self.os_hosts_forbidden = False  # the policy of GET /os-hosts/{host}
        self.compute_max_microversion = (2, 104)
        self.boot_result = "ACTIVE"  # what a new server turns into on its first look
        self.boot_fault = "No valid host was found. "
        self.boot_fault_late = False  # the first look at an ERROR server shows no fault yet
        self.delete_polls = 1  # looks at a deleted server before it is gone
        self.cascade = True  # deleting a compute service deletes its provider
        # placement
        self.providers = {}
        self.traits = set(STANDARD_TRAITS)
        self.conflicts = 0  # PUTs of provider traits answered 409 (someone else wrote)
        # The next PUTs of provider aggregates answer 500 with these details.
        self.aggregate_put_errors = []
        # what a run's own projects and users hold (tempest's accounts)
        self.server_groups = []
        self.keypairs = {}  # user id: [keypair names]
        # image
        self.images = []
        self.compute = FakeCompute(self)
        self.placement = FakePlacement(self)
        self.image = FakeImage(self)
        self.identity = FakeIdentity(self)

    def connect(self, **kwargs):
        self.connect_kwargs = kwargs
        return self

    # -- bookkeeping -----------------------------------------------------

    def record(self, call, /, *args, **kwargs):
        self.calls.append((call, args, kwargs))

    def called(self, name):
        return [c for c in self.calls if c[0] == name]

    @property
    def mutations(self):
        return [
            c
            for c in self.calls
            if c[0].split(".")[-1].startswith(MUTATING_PREFIXES)
            or c[0] in ("placement.put", "placement.post", "placement.delete")
        ]

    def new_id(self, prefix):
        return f"{prefix}-{next(self._ids):04d}"

    def at(self, seconds, action):
        """Run action() once the fake clock has advanced by seconds."""
        self.events.append((self.clock.now + seconds, action))

    def _tick(self, now):
        due = [e for e in self.events if e[0] <= now]
        self.events = [e for e in self.events if e[0] > now]
        for _, action in due:
            action()

    # -- building state --------------------------------------------------

    def add_service(
        self, host, binary="nova-compute", state="up", forced_down=False, updated_at=None
    ):
        # updated_at: its last report, by default the real time now (a process's
        # start time, which the module compares it with, is real too).
        service = ns(
            id=self.new_id("svc"),
            host=host,
            binary=binary,
            state=state,
            status="enabled",
            is_forced_down=forced_down,
            updated_at=updated_at or utc_iso(time.time()),
        )
        self.services.append(service)
        return service

    def add_provider(self, name, traits=(), allocations=None, generation=1, inventories=None):
        uuid = f"{next(self._ids):08x}-0000-4000-8000-000000000000"
        self.providers[uuid] = dict(
            uuid=uuid,
            name=name,
            generation=generation,
            traits=set(traits),
            allocations=dict(allocations or {}),
            aggregates=[],
            # What a fake-driver compute reports (nova's defaults of the fake driver).
            inventories=(
                {
                    "VCPU": {"total": 1000},
                    "MEMORY_MB": {"total": 800000},
                    "DISK_GB": {"total": 600000},
                }
                if inventories is None
                else inventories
            ),
        )
        return uuid

    def provider_named(self, name):
        return next((p for p in self.providers.values() if p["name"] == name), None)

    def add_compute(self, host, mapped=True):
        """A running compute: service up, provider, host mapping."""
        self.add_service(host)
        self.add_provider(host, traits={"COMPUTE_NODE"})
        if mapped:
            self.mapped_hosts.add(host)

    def add_aggregate(self, name, hosts=(), metadata=None, created_at="2026-11-25T13:00:00.000000"):
        number = next(self._ids)
        aggregate = ns(
            id=number,
            uuid=f"{number:08x}-aaaa-4000-8000-000000000000",
            name=name,
            hosts=list(hosts),
            metadata=dict(metadata or {}),
            created_at=created_at,
        )
        self.aggregates.append(aggregate)
        return aggregate

    def add_server(
        self,
        name,
        metadata=None,
        tags=(),
        host="compute-1",
        status="ACTIVE",
        project_id=OWN_PROJECT,
        created_at="2026-11-25T13:20:01Z",
    ):
        server = ns(
            id=self.new_id("srv"),
            name=name,
            status=status,
            task_state=None,
            compute_host=host,
            hypervisor_hostname=host,
            metadata=dict(metadata or {}),
            tags=list(tags),
            flavor={"original_name": "tiny", "vcpus": 1, "ram": 64, "disk": 0, "extra_specs": {}},
            created_at=created_at,
            fault=None,
            project_id=project_id,
            deleting=None,
        )
        self.servers.append(server)
        return server

    def add_flavor(self, name, description=None, extra_specs=None, is_public=True, projects=()):
        flavor = ns(
            id=self.new_id("flv"),
            name=name,
            description=description,
            extra_specs=dict(extra_specs or {}),
            is_public=is_public,
            vcpus=1,
            ram=64,
            disk=0,
            projects=list(projects),  # the projects given access (a private flavor's)
        )
        self.flavors.append(flavor)
        return flavor

    def add_image(self, name, properties=None, hidden=False):
        image = ns(
            id=self.new_id("img"),
            name=name,
            properties=dict(properties or {}),
            created_at="2026-11-25T13:00:00Z",
            status="active",
            visibility="public",
            owner=OWN_PROJECT,
            is_hidden=hidden,
        )
        self.images.append(image)
        return image


class _Proxy:
    prefix = ""

    def __init__(self, cloud):
        self.cloud = cloud

    def _record(self, call, /, *args, **kwargs):
        self.cloud.record(f"{self.prefix}.{call}", *args, **kwargs)


class FakeCompute(_Proxy):
    prefix = "compute"
    default_microversion = None

    def get_endpoint_data(self):
        return ns(min_microversion=(2, 1), max_microversion=self.cloud.compute_max_microversion)

    # services

    def services(self, **query):
        self._record("services", **query)
        return [
            s
            for s in list(self.cloud.services)
            if all(getattr(s, k) == v for k, v in query.items() if k in ("host", "binary"))
        ]

    def update_service_forced_down(self, service, host=None, binary=None, forced=True):
        self._record("update_service_forced_down", service.id, host=host, binary=binary)
        service.is_forced_down = forced
        service.state = "down"
        return service

    def delete_service(self, service, ignore_missing=True):
        self._record("delete_service", service.id)
        if service not in self.cloud.services:
            if ignore_missing:
                return None
            raise http_error(404, f"Service {service.id} not found.")
        if service.binary == "nova-compute" and any(
            s.compute_host == service.host for s in self.cloud.servers
        ):
            raise http_error(
                409,
                "Unable to delete compute service that is hosting instances. "
                "Migrate or delete the instances first.",
            )
        self.cloud.services.remove(service)
        if service.binary == "nova-compute":
            self.cloud.mapped_hosts.discard(service.host)
            for aggregate in self.cloud.aggregates:
                if service.host in aggregate.hosts:
                    aggregate.hosts.remove(service.host)
            provider = self.cloud.provider_named(service.host)
            if provider and self.cloud.cascade:
                del self.cloud.providers[provider["uuid"]]
        return None

    # aggregates

    def aggregates(self, **query):
        self._record("aggregates", **query)
        return list(self.cloud.aggregates)

    def get_aggregate(self, aggregate_id):
        self._record("get_aggregate", aggregate_id)
        return next(a for a in self.cloud.aggregates if a.id == aggregate_id)

    def create_aggregate(self, name, **attrs):
        self._record("create_aggregate", name=name, **attrs)
        if any(a.name == name for a in self.cloud.aggregates):
            raise http_error(409, f"Aggregate {name} already exists.")
        return self.cloud.add_aggregate(name, created_at=None)

    def set_aggregate_metadata(self, aggregate, metadata):
        self._record("set_aggregate_metadata", aggregate.id, metadata)
        aggregate.metadata.update(metadata)
        return _as_of_2_1(aggregate)

    def get(self, url, microversion=None, **kwargs):
        """nova's REST API through conn.compute.get: GET /os-hosts/{host} (<= 2.42), and a
        user's keypairs (GET /os-keypairs?user_id=, >= 2.10)."""
        self._record("get", url, microversion=microversion)
        split = urlsplit(url)
        path = [unquote(p) for p in split.path.strip("/").split("/")]
        if path == ["os-keypairs"]:
            assert microversion == "2.10", microversion
            user_id = parse_qs(split.query)["user_id"][0]
            names = self.cloud.keypairs.get(user_id, [])
            return response(200, {"keypairs": [{"keypair": {"name": n}} for n in names]})
        assert path[0] == "os-hosts" and len(path) == 2, url
        if self.cloud.os_hosts_forbidden:
            return response(403, {"forbidden": {"code": 403, "message": "Policy doesn't allow"}})
        host = path[1]
        if host not in self.cloud.mapped_hosts:
            message = f"Host '{host}' is not mapped to any cell"
            return response(404, {"itemNotFound": {"code": 404, "message": message}})
        return response(200, {"host": [{"resource": {"host": host, "project": "(total)"}}]})

    def delete(self, url, microversion=None, **kwargs):
        """DELETE /os-keypairs/{name}?user_id= (>= 2.10)."""
        self._record("delete", url, microversion=microversion)
        split = urlsplit(url)
        path = [unquote(p) for p in split.path.strip("/").split("/")]
        assert path[0] == "os-keypairs" and len(path) == 2, url
        names = self.cloud.keypairs.get(parse_qs(split.query)["user_id"][0], [])
        if path[1] not in names:
            return response(404, {"itemNotFound": {"code": 404, "message": "not found"}})
        names.remove(path[1])
        return response(202)

    def server_groups(self, all_projects=False, **query):
        self._record("server_groups", all_projects=all_projects, **query)
        # As nova: another project's groups only with all_projects (admin).
        return [
            g
            for g in self.cloud.server_groups
            if all_projects or g.project_id == self.cloud.current_project_id
        ]

    def delete_server_group(self, group, ignore_missing=True):
        self._record("delete_server_group", group)
        self.cloud.server_groups = [g for g in self.cloud.server_groups if g.id != group]

    def add_host_to_aggregate(self, aggregate, host):
        self._record("add_host_to_aggregate", aggregate.id, host)
        # nova finds the host through its mapping, else by searching every cell.
        if not any(s.host == host for s in self.cloud.services):
            raise http_error(404, f"Compute host {host} could not be found.")
        if host in aggregate.hosts:
            raise http_error(409, f"Aggregate {aggregate.id} already has host {host}.")
        aggregate.hosts.append(host)
        # nova mirrors the membership to placement.
        provider = self.cloud.provider_named(host)
        if provider is not None and aggregate.uuid not in provider["aggregates"]:
            provider["aggregates"].append(aggregate.uuid)
            provider["generation"] += 1
        return _as_of_2_1(aggregate)

    # servers

    def servers(self, details=True, all_projects=False, **query):
        self._record("servers", details=details, all_projects=all_projects, **query)
        found = []
        for server in self.cloud.servers:
            if not all_projects and server.project_id != OWN_PROJECT:
                continue
            if "name" in query and not re.search(query["name"], server.name):
                continue
            if "compute_host" in query and server.compute_host != query["compute_host"]:
                continue
            found.append(server)
        return found

    def create_server(self, **attrs):
        self._record("create_server", **attrs)
        host = attrs.get("host")
        if host and host not in self.cloud.mapped_hosts:
            raise http_error(400, f"Compute host {host} could not be found.")
        server = self.cloud.add_server(
            attrs["name"],
            metadata=attrs.get("metadata"),
            tags=attrs.get("tags", []),
            host=None,
            status="BUILD",
        )
        server.target = host or "compute-1"
        return server

    def get_server(self, server_id):
        self._record("get_server", server_id)
        server = next((s for s in self.cloud.servers if s.id == server_id), None)
        if server is None:
            raise http_error(404, f"Instance {server_id} could not be found.")
        if server.deleting is not None:
            if server.deleting <= 0:
                self.cloud.servers.remove(server)
                raise http_error(404, f"Instance {server_id} could not be found.")
            server.deleting -= 1
            return server
        if server.status == "ERROR" and server.fault is None:
            # As nova's conductor: the ERROR state is saved, the fault a moment after.
            server.fault = {"code": 500, "message": self.cloud.boot_fault}
        if server.status == "BUILD" and self.cloud.boot_result != "BUILD":
            server.status = self.cloud.boot_result
            if server.status != "ERROR":
                server.compute_host = server.hypervisor_hostname = server.target
            elif not self.cloud.boot_fault_late:
                server.fault = {"code": 500, "message": self.cloud.boot_fault}
        return server

    def delete_server(self, server, ignore_missing=True):
        self._record("delete_server", server.id)
        server.deleting = self.cloud.delete_polls
        server.task_state = "deleting"

    # flavors

    def find_flavor(self, name_or_id, ignore_missing=True, **query):
        self._record("find_flavor", name_or_id)
        for flavor in self.cloud.flavors:
            if name_or_id in (flavor.id, flavor.name):
                return flavor
        if ignore_missing:
            return None
        raise exceptions.NotFoundException(f"No Flavor found for {name_or_id}")

    def flavors(self, details=True, **query):
        self._record("flavors", details=details, **query)
        return list(self.cloud.flavors)


class FakeImage(_Proxy):
    prefix = "image"

    def find_image(self, name_or_id, ignore_missing=True):
        self._record("find_image", name_or_id)
        for image in self.cloud.images:
            if name_or_id in (image.id, image.name):
                return image
        return None

    def images(self, **query):
        self._record("images", **query)
        hidden = bool(query.get("is_hidden"))
        return [i for i in self.cloud.images if i.is_hidden == hidden]


class FakePlacement(_Proxy):
    """Placement's REST API, as reached through conn.placement.get/put/delete."""

    prefix = "placement"

    def get(self, url, **kwargs):
        return self._request("get", url, **kwargs)

    def put(self, url, **kwargs):
        return self._request("put", url, **kwargs)

    def delete(self, url, **kwargs):
        return self._request("delete", url, **kwargs)

    def _request(self, method, url, json=None, microversion=None):
        self._record(method, url, json=json, microversion=microversion)
        parts = urlsplit(url)
        path = [unquote(p) for p in parts.path.strip("/").split("/")]
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        cloud = self.cloud
        if path[0] == "traits":
            return self._traits(query)
        if path == ["resource_providers"]:
            providers = list(cloud.providers.values())
            if "name" in query:
                providers = [p for p in providers if p["name"] == query["name"]]
            if "required" in query:
                providers = [p for p in providers if query["required"] in p["traits"]]
            return response(200, {"resource_providers": [_rp(p) for p in providers]})
        provider = cloud.providers.get(path[1])
        if provider is None:
            return _placement_error(404, f"No resource provider with uuid {path[1]} found")
        if len(path) == 2:
            if method == "delete":
                if provider["allocations"]:
                    return _placement_error(409, "Unable to delete resource provider: in use")
                del cloud.providers[path[1]]
                return response(204)
            return response(200, _rp(provider))
        if path[2] == "allocations":
            return response(
                200,
                {
                    "allocations": provider["allocations"],
                    "resource_provider_generation": provider["generation"],
                },
            )
        if path[2] == "inventories" and method == "get":
            return response(
                200,
                {
                    "inventories": provider["inventories"],
                    "resource_provider_generation": provider["generation"],
                },
            )
        if path[2] == "aggregates" and method == "get":
            return response(200, _aggregates_body(provider))
        if path[2] == "aggregates" and method == "put":
            if cloud.aggregate_put_errors:
                return _placement_error(500, cloud.aggregate_put_errors.pop(0))
            if json["resource_provider_generation"] != provider["generation"]:
                return _placement_error(409, "resource provider generation conflict")
            provider["aggregates"] = list(json["aggregates"])
            provider["generation"] += 1
            return response(200, _aggregates_body(provider))
        if path[2] == "traits" and method == "get":
            return response(200, _traits_body(provider))
        if path[2] == "traits" and method == "put":
            if cloud.conflicts > 0:
                cloud.conflicts -= 1
                provider["generation"] += 1  # somebody else (nova-compute) wrote first
            if json["resource_provider_generation"] != provider["generation"]:
                return _placement_error(409, "resource provider generation conflict")
            unknown = sorted(set(json["traits"]) - cloud.traits)
            if unknown:
                return _placement_error(400, f"No such trait(s): {', '.join(unknown)}")
            provider["traits"] = set(json["traits"])
            provider["generation"] += 1
            return response(200, _traits_body(provider))
        raise AssertionError(f"unexpected placement call {method} {url}")

    def _traits(self, query):
        names = sorted(self.cloud.traits)
        spec = query.get("name", "")
        if spec.startswith("in:"):
            wanted = set(spec[3:].split(","))
            names = [n for n in names if n in wanted]
        elif spec.startswith("startswith:"):
            names = [n for n in names if n.startswith(spec[len("startswith:") :])]
        return response(200, {"traits": names})

    def create_trait(self, name):
        self._record("create_trait", name)
        self.cloud.traits.add(name)


def _rp(provider):
    return {k: provider[k] for k in ("uuid", "name", "generation")}


def _as_of_2_1(aggregate):
    """An aggregate as nova's actions answer it: at microversion 2.1, without its uuid."""
    return ns(**{**vars(aggregate), "uuid": None})


def _aggregates_body(provider):
    return {
        "aggregates": list(provider["aggregates"]),
        "resource_provider_generation": provider["generation"],
    }


def _traits_body(provider):
    return {
        "traits": sorted(provider["traits"]),
        "resource_provider_generation": provider["generation"],
    }


# What placement answers when MariaDB chose it as a deadlock's victim.
DEADLOCK = (
    "The server has either erred or is incapable of performing the requested operation. "
    "(pymysql.err.OperationalError) (1213, 'Deadlock found when trying to get lock; try "
    "restarting transaction')"
)


def _placement_error(status, detail):
    return response(status, {"errors": [{"status": status, "detail": detail, "title": "Error"}]})


class FakeIdentity(_Proxy):
    """Keystone, with the calls shard_identity_catalog makes."""

    prefix = "identity"

    def __init__(self, cloud):
        super().__init__(cloud)
        self.domain = ns(id="default", name="Default")
        self.projects_ = []
        self.roles_ = []
        self.users_ = []
        self.assignments = set()  # (user id, project id, role id)
        self.services_ = []
        self.endpoints_ = []

    def find_domain(self, name, ignore_missing=True):
        self._record("find_domain", name)
        return self.domain

    def projects(self, **query):
        self._record("projects", **query)
        return list(self.projects_)

    def create_project(self, name, domain_id, description=None):
        self._record("create_project", name=name, domain_id=domain_id)
        project = ns(
            id=self.cloud.new_id("project"), name=name, domain_id=domain_id, description=description
        )
        self.projects_.append(project)
        return project

    def get(self, url, **kwargs):
        """GET /projects or /users?name__startswith= (keystone's filter on a name's start)."""
        self._record("get", url)
        split = urlsplit(url)
        collection = split.path.strip("/")
        query = parse_qs(split.query)
        start = query["name__startswith"][0]
        domain = query.get("domain_id", [None])[0]
        items = {"projects": self.projects_, "users": self.users_}[collection]
        items = [i for i in items if domain is None or getattr(i, "domain_id", "default") == domain]
        body = [
            {
                "id": i.id,
                "name": i.name,
                "domain_id": getattr(i, "domain_id", "default"),
                "description": getattr(i, "description", None),
            }
            for i in items
            if i.name.startswith(start)
        ]
        return response(200, {collection: body, "links": {"next": None}})

    def delete_project(self, project, ignore_missing=True):
        self._record("delete_project", project)
        self.projects_ = [p for p in self.projects_ if p.id != project]

    def delete_user(self, user, ignore_missing=True):
        self._record("delete_user", user)
        self.users_ = [u for u in self.users_ if u.id != user]

    def roles(self, **query):
        self._record("roles", **query)
        return list(self.roles_)

    def create_role(self, name):
        self._record("create_role", name=name)
        role = ns(id=self.cloud.new_id("role"), name=name)
        self.roles_.append(role)
        return role

    def users(self, **query):
        self._record("users", **query)
        return list(self.users_)

    def create_user(self, name, password, domain_id, default_project_id=None, description=None):
        self._record("create_user", name=name, domain_id=domain_id)
        user = ns(
            id=self.cloud.new_id("user"),
            name=name,
            password=password,
            domain_id=domain_id,
            description=description,
            default_project_id=default_project_id,
        )
        self.users_.append(user)
        return user

    def role_assignments(self, user_id, scope_project_id):
        self._record("role_assignments", user_id=user_id, scope_project_id=scope_project_id)
        return [
            ns(role={"id": role_id})
            for (u, p, role_id) in self.assignments
            if u == user_id and p == scope_project_id
        ]

    def assign_project_role_to_user(self, project, user, role):
        self._record("assign_project_role_to_user", project.name, user.name, role.name)
        self.assignments.add((user.id, project.id, role.id))

    def services(self, **query):
        self._record("services", **query)
        return list(self.services_)

    def create_service(self, name, type):
        self._record("create_service", name=name, type=type)
        service = ns(id=self.cloud.new_id("service"), name=name, type=type)
        self.services_.append(service)
        return service

    def endpoints(self, **query):
        self._record("endpoints", **query)
        return list(self.endpoints_)

    def create_endpoint(self, service_id, interface, url, region_id):
        self._record("create_endpoint", service_id=service_id, interface=interface, url=url)
        endpoint = ns(
            id=self.cloud.new_id("endpoint"),
            service_id=service_id,
            interface=interface,
            url=url,
            region_id=region_id,
        )
        self.endpoints_.append(endpoint)
        return endpoint


# -- the label rule (module_utils/shard_compute_label.py): flavor writes, traits
# Kept apart from the classes above: the calls only the label rule makes.


def _create_flavor(self, name, ram, vcpus, disk, description=None, is_public=True, **attrs):
    self._record(
        "create_flavor",
        name=name,
        ram=ram,
        vcpus=vcpus,
        disk=disk,
        description=description,
        is_public=is_public,
    )
    flavor = self.cloud.add_flavor(name, description=description, is_public=is_public)
    flavor.ram, flavor.vcpus, flavor.disk = ram, vcpus, disk
    flavor.projects = []
    return flavor


def _flavor_add_tenant_access(self, flavor, tenant):
    self._record("flavor_add_tenant_access", flavor.id, tenant)
    flavor.projects.append(tenant)


def _delete_flavor(self, flavor, ignore_missing=True):
    self._record("delete_flavor", flavor.id)
    if flavor in self.cloud.flavors:
        self.cloud.flavors.remove(flavor)
    elif not ignore_missing:
        raise http_error(404, f"Flavor {flavor.id} could not be found.")


def _create_flavor_extra_specs(self, flavor, extra_specs):
    """POST /flavors/{id}/os-extra_specs: sets these keys; nova answers with them only."""
    self._record("create_flavor_extra_specs", flavor.id, dict(extra_specs))
    flavor.extra_specs.update(extra_specs)
    return ns(**{**vars(flavor), "extra_specs": dict(extra_specs)})


FakeCompute.create_flavor = _create_flavor
FakeCompute.flavor_add_tenant_access = _flavor_add_tenant_access
FakeCompute.delete_flavor = _delete_flavor
FakeCompute.create_flavor_extra_specs = _create_flavor_extra_specs

_placement_request = FakePlacement._request


def _placement_request_with_trait_writes(self, method, url, json=None, microversion=None):
    """PUT /traits/{name} (201 created, 204 existed) and DELETE /traits/{name} (409 in use)."""
    path = [unquote(p) for p in urlsplit(url).path.strip("/").split("/")]
    if path[0] != "traits" or len(path) != 2 or method not in ("put", "delete"):
        return _placement_request(self, method, url, json=json, microversion=microversion)
    self._record(method, url, json=json, microversion=microversion)
    name, traits = path[1], self.cloud.traits
    if method == "put":
        if name in traits:
            return response(204)
        traits.add(name)
        return response(201)
    if name not in traits:
        return _placement_error(404, f"No such trait(s): {name}")
    if any(name in p["traits"] for p in self.cloud.providers.values()):
        return _placement_error(409, f"The trait {name} is in use by a resource provider.")
    traits.remove(name)
    return response(204)


FakePlacement._request = _placement_request_with_trait_writes


# -- shard_server: server actions (stop, start, reboot) ---------------------
# Kept apart from the classes above: the calls only shard_server's `actions` make.
# As nova does them: the API refuses (409) a server whose state does not allow
# the action or that has a task state; else it sets the task state (and with
# it the status a reboot shows) before it answers 202, and the compute finishes
# `action_seconds` later on the fake clock, clearing the task state.

MUTATING_PREFIXES += ("stop_", "start_", "reboot_")
FakeCloud.action_seconds = 1.5  # how long the compute takes over an action
FakeCloud.action_fault = None  # a fault message: the action ends in ERROR with it
FakeCloud.reboot_shows_status = True  # False: the status stays ACTIVE while a reboot runs

# action: (statuses it is allowed from, task state, status while it runs, status after)
_SERVER_ACTIONS = {
    "stop": (("ACTIVE", "ERROR"), "powering-off", None, "SHUTOFF"),
    "start": (("SHUTOFF",), "powering-on", None, "ACTIVE"),
    "reboot SOFT": (("ACTIVE",), "rebooting", "REBOOT", "ACTIVE"),
    "reboot HARD": (("ACTIVE", "SHUTOFF", "ERROR"), "rebooting_hard", "HARD_REBOOT", "ACTIVE"),
}
_VM_STATES = {"ACTIVE": "active", "SHUTOFF": "stopped", "ERROR": "error"}


def _begin_server_action(compute, server, action, kind):
    cloud = compute.cloud
    server_id = getattr(server, "id", server)
    server = next((s for s in cloud.servers if s.id == server_id), None)
    if server is None:
        raise http_error(404, f"Instance {server_id} could not be found.")
    allowed, task_state, running, after = _SERVER_ACTIONS[kind]
    if server.task_state is not None:
        state = server.task_state
        raise http_error(
            409, f"Cannot '{action}' instance {server_id} while it is in task_state {state}"
        )
    if server.status not in allowed:
        vm_state = _VM_STATES.get(server.status, server.status.lower())
        raise http_error(
            409, f"Cannot '{action}' instance {server_id} while it is in vm_state {vm_state}"
        )
    server.task_state = task_state
    if running and cloud.reboot_shows_status:
        server.status = running

    def finish():
        if server.deleting is not None:
            return
        server.task_state = None
        if cloud.action_fault:
            server.status, server.fault = "ERROR", {"code": 500, "message": cloud.action_fault}
        else:
            server.status = after

    cloud.at(cloud.action_seconds, finish)


def _stop_server(self, server):
    self._record("stop_server", getattr(server, "id", server))
    _begin_server_action(self, server, "stop", "stop")


def _start_server(self, server):
    self._record("start_server", getattr(server, "id", server))
    _begin_server_action(self, server, "start", "start")


def _reboot_server(self, server, reboot_type):
    self._record("reboot_server", getattr(server, "id", server), reboot_type)
    _begin_server_action(self, server, "reboot", f"reboot {reboot_type}")


FakeCompute.stop_server = _stop_server
FakeCompute.start_server = _start_server
FakeCompute.reboot_server = _reboot_server


# -- shard_teardown_cloud: deletes by id, aggregates, the APIs' health -------
# Kept apart from the classes above: the calls only the teardown module makes.
# openstacksdk's proxies take an id or a resource: so do these.


def _resolve(items, value):
    wanted = getattr(value, "id", value)
    return next((item for item in items if item.id == wanted), None)


_delete_server_object = FakeCompute.delete_server
_delete_flavor_object = FakeCompute.delete_flavor


def _delete_server_by_id(self, server, ignore_missing=True):
    found = _resolve(self.cloud.servers, server)
    if found is None:
        self._record("delete_server", getattr(server, "id", server))
        return None
    return _delete_server_object(self, found, ignore_missing)


def _delete_flavor_by_id(self, flavor, ignore_missing=True):
    found = _resolve(self.cloud.flavors, flavor)
    if found is None:
        self._record("delete_flavor", getattr(flavor, "id", flavor))
        return None
    return _delete_flavor_object(self, found, ignore_missing)


def _remove_host_from_aggregate(self, aggregate, host):
    self._record("remove_host_from_aggregate", aggregate.id, host)
    aggregate.hosts.remove(host)


def _delete_aggregate(self, aggregate, ignore_missing=True):
    found = _resolve(self.cloud.aggregates, aggregate)
    self._record("delete_aggregate", getattr(aggregate, "id", aggregate))
    if found is not None:
        if found.hosts:
            raise http_error(400, "Cannot remove aggregate with hosts.")
        self.cloud.aggregates.remove(found)


def _delete_image(self, image, ignore_missing=True):
    found = _resolve(self.cloud.images, image)
    self._record("delete_image", getattr(image, "id", image))
    if found is not None:
        self.cloud.images.remove(found)


FakeCompute.delete_server = _delete_server_by_id
FakeCompute.delete_flavor = _delete_flavor_by_id
FakeCompute.remove_host_from_aggregate = _remove_host_from_aggregate
FakeCompute.delete_aggregate = _delete_aggregate
FakeImage.delete_image = _delete_image


class FakeSession:
    """conn.session as the health waits use it: endpoints from a catalog, plain GETs."""

    def __init__(self, cloud):
        self.cloud = cloud
        # service type -> HTTP status its endpoint answers (a missing type: no endpoint)
        self.status = {"compute": 200, "placement": 200, "image": 200, "network": 200}

    def get_endpoint(self, service_type, interface=None, region_name=None):
        if service_type not in self.status:
            return None
        return f"http://cloud.example/{service_type}"

    def get(self, url, authenticated=True, raise_exc=True, timeout=None):
        self.cloud.record("session.get", url)
        return response(self.status[url.rsplit("/", 1)[1]])


def _session(cloud):
    if "_session" not in vars(cloud):
        cloud._session = FakeSession(cloud)
    return cloud._session


FakeCloud.session = property(_session)
FakeCloud.authorize = lambda self: "token"
FakeCloud.region_name = "RegionOne"  # the connection's region (None: its cloud names none)
FakeCloud.config = property(
    lambda self: ns(get_region_name=lambda: self.region_name, region_name=self.region_name)
)


def compute_limits(cloud, **absolute):
    """Give the fake cloud the project's compute limits (GET /limits), defaults overridden."""
    values = dict(
        instances=10,
        instances_used=0,
        total_cores=20,
        total_cores_used=0,
        total_ram=51200,
        total_ram_used=0,
    )
    values.update(absolute)
    cloud.compute.get_limits = lambda: ns(absolute=ns(**values))
    cloud.current_project_id = "p-shard-ci"
    return cloud


# -- tempest's accounts and result (shard_tempest_accounts, shard_tempest_result) --
# Kept apart from the classes above: the calls only those modules make.
# openstacksdk's find_* look a name or an id up (None, or NotFoundException
# without ignore_missing); its get_* raise 404 for what does not exist.

FakeCloud.identity_url = "http://cloud.example/identity/v3"  # keystoneauth's discovered v3


def _find_by_name_or_id(items, name_or_id, ignore_missing, what, domain_id=None):
    for item in items:
        if domain_id is not None and getattr(item, "domain_id", "default") != domain_id:
            continue
        if name_or_id in (item.id, item.name):
            return item
    if ignore_missing:
        return None
    raise exceptions.NotFoundException(f"No {what} found for {name_or_id}")


def _find_project(self, name_or_id, ignore_missing=True, domain_id=None, **query):
    self._record("find_project", name_or_id, domain_id=domain_id)
    return _find_by_name_or_id(self.projects_, name_or_id, ignore_missing, "Project", domain_id)


def _find_user(self, name_or_id, ignore_missing=True, domain_id=None, **query):
    self._record("find_user", name_or_id, domain_id=domain_id)
    return _find_by_name_or_id(self.users_, name_or_id, ignore_missing, "User", domain_id)


def _find_role(self, name_or_id, ignore_missing=True, **query):
    self._record("find_role", name_or_id)
    return _find_by_name_or_id(self.roles_, name_or_id, ignore_missing, "Role")


def _get_project(self, project):
    """A project by id; the connection's own project, which the fake does not list, too."""
    project_id = getattr(project, "id", project)
    self._record("get_project", project_id)
    found = _resolve(self.projects_, project_id)
    if found is not None:
        return found
    if project_id == self.cloud.current_project_id:
        return ns(id=project_id, name="shard-ci", domain_id=self.domain.id, description=None)
    raise http_error(404, f"Could not find project: {project_id}.")


def _get_domain(self, domain):
    domain_id = getattr(domain, "id", domain)
    self._record("get_domain", domain_id)
    if domain_id != self.domain.id:
        raise http_error(404, f"Could not find domain: {domain_id}.")
    return self.domain


def _update_user(self, user, **attrs):
    found = _resolve(self.users_, user)
    # The attributes' names only: a password is not kept in the calls.
    self._record("update_user", getattr(user, "id", user), *sorted(attrs))
    if found is None:
        raise http_error(404, f"Could not find user: {getattr(user, 'id', user)}.")
    for key, value in attrs.items():
        setattr(found, key, value)
    return found


def _update_project(self, project, **attrs):
    found = _resolve(self.projects_, project)
    self._record("update_project", getattr(project, "id", project), *sorted(attrs))
    if found is None:
        raise http_error(404, f"Could not find project: {getattr(project, 'id', project)}.")
    for key, value in attrs.items():
        setattr(found, key, value)
    return found


def _validate_user_has_project_role(self, project, user, role, *, inherited=False):
    ids = tuple(getattr(x, "id", x) for x in (user, project, role))
    self._record("validate_user_has_project_role", *ids)
    return ids in self.assignments


def _identity_endpoint_data(self):
    return ns(url=self.cloud.identity_url)


FakeIdentity.find_project = _find_project
FakeIdentity.find_user = _find_user
FakeIdentity.find_role = _find_role
FakeIdentity.get_project = _get_project
FakeIdentity.update_project = _update_project
FakeIdentity.get_domain = _get_domain
FakeIdentity.update_user = _update_user
FakeIdentity.validate_user_has_project_role = _validate_user_has_project_role
FakeIdentity.get_endpoint_data = _identity_endpoint_data


def _flavor_or_404(compute, flavor):
    found = _resolve(compute.cloud.flavors, flavor)
    if found is None:
        raise http_error(404, f"Flavor {getattr(flavor, 'id', flavor)} could not be found.")
    return found


def _get_flavor_access(self, flavor):
    """GET /flavors/{id}/os-flavor-access: [{flavor_id, tenant_id}]; nova's 404 for a public one."""
    self._record("get_flavor_access", getattr(flavor, "id", flavor))
    found = _flavor_or_404(self, flavor)
    if found.is_public:
        raise http_error(404, "Access list not available for public flavors.")
    return [{"flavor_id": found.id, "tenant_id": t} for t in found.projects]


def _fetch_flavor_extra_specs(self, flavor):
    """The flavor, with its extra specs (a copy, as the SDK's fetch answers a new resource)."""
    self._record("fetch_flavor_extra_specs", getattr(flavor, "id", flavor))
    found = _flavor_or_404(self, flavor)
    return ns(**{**vars(found), "extra_specs": dict(found.extra_specs)})


_compute_get_before_servers = FakeCompute.get


def _server_detail(server):
    return {
        "id": server.id,
        "name": server.name,
        "status": server.status,
        "tenant_id": server.project_id,
        "OS-EXT-SRV-ATTR:host": server.compute_host,
    }


def _compute_get_with_servers(self, url, microversion=None, **kwargs):
    """GET /servers/detail (all_tenants, project_id, deleted: nova's admin filters); the
    other paths as before."""
    split = urlsplit(url)
    if split.path.strip("/") != "servers/detail":
        return _compute_get_before_servers(self, url, microversion=microversion, **kwargs)
    self._record("get", url, microversion=microversion)
    query = {k: v[0] for k, v in parse_qs(split.query).items()}
    deleted = query.get("deleted", "false").lower() in ("true", "1", "yes")
    servers = self.cloud.deleted_servers if deleted else self.cloud.servers
    if query.get("all_tenants", "0").lower() not in ("1", "true", "yes"):
        # Without all_tenants, nova lists the caller's project's servers only.
        servers = [s for s in servers if s.project_id == self.cloud.current_project_id]
    if "project_id" in query:
        servers = [s for s in servers if s.project_id == query["project_id"]]
    return response(200, {"servers": [_server_detail(s) for s in servers]})


def _add_deleted_server(self, name, host="compute-1", project_id=OWN_PROJECT, status="DELETED"):
    """A server nova has deleted but still lists with deleted=true (until archived)."""
    server = self.add_server(name, host=host, project_id=project_id, status=status)
    self.servers.remove(server)
    self.deleted_servers.append(server)
    return server


FakeCompute.get_flavor_access = _get_flavor_access
FakeCompute.fetch_flavor_extra_specs = _fetch_flavor_extra_specs
FakeCompute.get = _compute_get_with_servers
FakeCloud.add_deleted_server = _add_deleted_server
