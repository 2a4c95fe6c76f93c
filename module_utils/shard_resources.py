# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""What carries a shard label in a cloud, and how each kind of it is deleted.

The one home of both, for the modules that find (shard_labelled_resources,
the janitor), delete one kind (the absent states of shard_server and
shard_compute_service) or tear a whole run down in one connection
(shard_teardown_cloud). Every function takes an openstacksdk connection.
"""

import contextlib
import time
from urllib.parse import quote

from ansible.module_utils.shard_labels import LABEL_PREFIX
from ansible.module_utils.shard_openstack import (
    TRAIT_PREFIX,
    api_error,
    created_of_description,
    find_resource_provider,
    is_label,
    label_of_description,
    label_of_metadata,
    label_of_server,
    label_of_trait,
    parse_timestamp,
    placement,
    provider_allocations,
)
from ansible.module_utils.shard_tempest import is_account_name
from ansible.module_utils.shard_waits import WaitTimeout, wait_until

try:
    from keystoneauth1 import exceptions as ksa_exceptions
    from openstack import exceptions as sdk_exceptions

    # A service missing from the catalog: its kinds are skipped.
    NO_SERVICE = (
        sdk_exceptions.EndpointNotFound,
        sdk_exceptions.ServiceDisabledException,
        sdk_exceptions.ServiceDiscoveryException,
        ksa_exceptions.EndpointNotFound,
    )
except ImportError:  # pragma: no cover - reported by ShardModule.connect
    NO_SERVICE = ()
    sdk_exceptions = None

# Every kind of resource a run may label, in the order they are listed. Not
# an order to delete them in: a trait must go after the providers that have
# it (placement refuses, 409) and servers before their compute; the callers
# give theirs (a profile's teardown_order, shard_janitor_order).
KINDS = [
    "servers",
    "flavors",
    "traits",
    "compute_services",
    "resource_providers",
    "aggregates",
    "images",
    # What a run's own projects and users hold (tempest's accounts,
    # module_utils/shard_tempest.py), then they themselves.
    "server_groups",
    "keypairs",
    "users",
    "projects",
]
# Kinds whose finder needs the run's own accounts (what a run's project or
# user holds carries its label).
_BY_ACCOUNTS = ("servers", "images", "server_groups", "keypairs", "users", "projects")
# Keystone's filter on a name's start: only names that may be a run's are listed.
_NAME_STARTSWITH = "name__startswith"
# Nova: keypairs of another user (user_id) from 2.10.
KEYPAIRS_MICROVERSION = "2.10"
# Placement microversion that filters providers by required trait.
REQUIRED_TRAIT_MICROVERSION = "1.18"
# Deleting a compute service deletes its resource provider: seconds to let it.
PROVIDER_GRACE = 10


class TeardownError(Exception):
    """A deletion that cannot be done or did not finish: one line saying which and why."""


def entry(id, name, label, source, created, **fields):
    """One found resource: what every kind reports, plus the fields of its kind."""
    found = dict(id=id, name=name, label=label, source=source, created=created)
    found.update(fields)
    return found


# ---------------------------------------------------------------- finding


def find(conn, kinds, wanted):
    """({kind: [entry]}, {kind: why unsearched}) of what carries a wanted label.

    wanted(label) decides among valid labels; a kind whose service is not in
    the catalog is reported as unsearched, not as empty.
    """

    def match(candidate):
        return is_label(candidate) and wanted(candidate)

    resources, unsearched = {}, {}
    accounts = _RunAccounts(conn, match)
    for kind in KINDS:
        if kind not in kinds:
            continue
        try:
            if kind in _BY_ACCOUNTS:
                resources[kind] = FINDERS[kind](conn, match, accounts)
            else:
                resources[kind] = FINDERS[kind](conn, match)
        except NO_SERVICE as exc:
            resources[kind] = []
            unsearched[kind] = api_error(exc)
    return resources, unsearched


# Kinds that belong to a project, and the field that names it. Teardown and
# the janitor act only on the jobs' own project's, and on a run's own
# projects' (see _RunAccounts for what makes one): any tenant can
# write a label into a server's metadata or an image's properties (a live
# build's label is printed in public logs), so another project's labelled
# resource is reported, never deleted, and never counts for a label's age or
# a leak.
PROJECT_FIELDS = {"servers": "project_id", "images": "owner"}
# The source of a label taken from the resource's project (a run's own).
BY_PROJECT = "project"


def split_foreign(conn, resources):
    """(own, foreign): the found resources split by whether the connection's project, or
    one of the run's own projects, owns them."""
    project = conn.current_project_id
    own, foreign = {}, {}
    for kind, entries in resources.items():
        field = PROJECT_FIELDS.get(kind)

        def owned(e, field=field):
            return field is None or e.get(field) == project or e.get("source") == BY_PROJECT

        own[kind] = [e for e in entries if owned(e)]
        others = [e for e in entries if not owned(e)]
        if others:
            foreign[kind] = others
    return own, foreign


class _RunAccounts:
    """The run's own projects and users, each looked up once, when first asked: those
    whose description carries a wanted label, whose name is exactly one the run gives
    its tempest accounts, in the jobs' own project's domain, and that are not the
    jobs' own project or user. Everything such a project holds is deleted with it,
    so the label alone is not enough: on keystone's default policy a domain's
    managers may write any description in their domain (the jobs' domain must
    have none but the operator: docs/source/trust.rst)."""

    def __init__(self, conn, match):
        self.conn, self.match = conn, match
        self._domain = None
        self._found = {}

    def entries(self, collection):
        """The run's own "projects" or "users", as entries."""
        if collection not in self._found:
            self._found[collection] = self._look_up(collection)
        return self._found[collection]

    def label_of(self, project_id):
        """The label of one of the run's own projects, or None."""
        return next((e["label"] for e in self.entries("projects") if e["id"] == project_id), None)

    def _look_up(self, collection):
        conn = self.conn
        own_project = conn.current_project_id
        if self._domain is None:
            self._domain = conn.identity.get_project(own_project).domain_id
        found = []
        for item in _identity_list(conn, collection, self._domain):
            label = label_of_description(item.get("description"))
            if (
                not self.match(label)
                or not is_account_name(collection, item.get("name"), label)
                or item["id"] in (own_project, conn.current_user_id)
            ):
                continue
            found.append(
                entry(
                    item["id"],
                    item["name"],
                    label,
                    "description",
                    created_of_description(item.get("description")),
                    domain_id=item.get("domain_id"),
                )
            )
        return found


def _identity_list(conn, collection, domain_id):
    """Keystone's projects or users of a domain whose name may be a run's (dicts)."""
    url = f"/{collection}?{_NAME_STARTSWITH}={quote(LABEL_PREFIX)}&domain_id={quote(domain_id)}"
    response = conn.identity.get(url)
    sdk_exceptions.raise_from_response(response)
    body = response.json()
    if body.get("truncated"):
        # keystone's list_limit cut the list: never report a partial search as clean.
        raise TeardownError(
            f"keystone truncated the list of {collection} (its list_limit): cannot search them all"
        )
    return body.get(collection) or []


def find_servers(conn, match, accounts):
    found = []
    for server in conn.compute.servers(details=True, all_projects=True):
        label, source = label_of_server({"metadata": server.metadata or {}, "tags": server.tags})
        # A run's own project's server is that run's, whatever it says.
        project_label = accounts.label_of(server.project_id)
        if project_label:
            label, source = project_label, BY_PROJECT
        if not match(label):
            # A server may carry a matching tag besides another metadata label.
            tags = [t for t in server.tags or [] if match(t)]
            if not tags:
                continue
            label, source = tags[0], "tag"
        found.append(
            entry(
                server.id,
                server.name,
                label,
                source,
                parse_timestamp(server.created_at),
                status=server.status,
                project_id=server.project_id,
                compute_host=server.compute_host,
            )
        )
    return found


def find_flavors(conn, match):
    found = []
    # is_public=None lists public and private flavors (admin).
    for flavor in conn.compute.flavors(details=True, is_public="None"):
        label = label_of_description(flavor.description)
        if not match(label):
            continue
        found.append(
            entry(
                flavor.id,
                flavor.name,
                label,
                "description",
                created_of_description(flavor.description),
                description=flavor.description,
                extra_specs=dict(flavor.extra_specs or {}),
                is_public=flavor.is_public,
            )
        )
    return found


def find_traits(conn, match):
    found = []
    query = quote("startswith:" + TRAIT_PREFIX, safe=":")
    for name in placement(conn, "get", f"/traits?name={query}")["traits"]:
        label = label_of_trait(name)
        if not match(label):
            continue
        providers = placement(
            conn,
            "get",
            f"/resource_providers?required={quote(name)}",
            microversion=REQUIRED_TRAIT_MICROVERSION,
        )["resource_providers"]
        found.append(
            entry(name, name, label, "name", None, providers=sorted(p["name"] for p in providers))
        )
    return found


def find_compute_services(conn, match):
    found = []
    for service in conn.compute.services():
        if not match(service.host):
            continue
        found.append(
            entry(
                service.id,
                service.host,
                service.host,
                "host",
                None,
                host=service.host,
                binary=service.binary,
                state=service.state,
                status=service.status,
                forced_down=bool(service.is_forced_down),
            )
        )
    return found


def find_resource_providers(conn, match):
    found = []
    for provider in placement(conn, "get", "/resource_providers")["resource_providers"]:
        if not match(provider["name"]):
            continue
        allocations = provider_allocations(conn, provider["uuid"])
        found.append(
            entry(
                provider["uuid"],
                provider["name"],
                provider["name"],
                "name",
                None,
                uuid=provider["uuid"],
                generation=provider["generation"],
                allocations=len(allocations),
            )
        )
    return found


def find_aggregates(conn, match):
    found = []
    for aggregate in conn.compute.aggregates():
        label = label_of_metadata(aggregate.metadata)
        if not match(label):
            continue
        found.append(
            entry(
                aggregate.id,
                aggregate.name,
                label,
                "metadata:shard_label",
                parse_timestamp(aggregate.created_at),
                hosts=list(aggregate.hosts or []),
                metadata=dict(aggregate.metadata or {}),
            )
        )
    return found


def find_images(conn, match, accounts):
    found, seen = [], set()
    # Hidden images (os_hidden) are only listed when asked for.
    images = list(conn.image.images()) + list(conn.image.images(is_hidden=True))
    for image in images:
        if image.id in seen:
            continue
        seen.add(image.id)
        label, source = label_of_metadata(dict(image.properties or {})), "property:shard_label"
        project_label = accounts.label_of(image.owner)
        if project_label:
            label, source = project_label, BY_PROJECT
        if not match(label):
            continue
        found.append(
            entry(
                image.id,
                image.name,
                label,
                source,
                parse_timestamp(image.created_at),
                status=image.status,
                visibility=image.visibility,
                owner=image.owner,
            )
        )
    return found


def find_server_groups(conn, match, accounts):
    found = []
    for group in conn.compute.server_groups(all_projects=True):
        label = accounts.label_of(group.project_id)
        if not match(label):
            continue
        found.append(
            entry(group.id, group.name, label, BY_PROJECT, None, project_id=group.project_id)
        )
    return found


def find_users(conn, match, accounts):
    return list(accounts.entries("users"))


def find_keypairs(conn, match, accounts):
    """The keypairs of the run's own users (nova keeps a user's keypairs after the user)."""
    found = []
    for user in accounts.entries("users"):
        url = f"/os-keypairs?user_id={quote(user['id'])}"
        response = conn.compute.get(url, microversion=KEYPAIRS_MICROVERSION)
        sdk_exceptions.raise_from_response(response)
        for item in response.json()["keypairs"]:
            name = item["keypair"]["name"]
            found.append(
                entry(f"{user['id']}/{name}", name, user["label"], "user", None, user_id=user["id"])
            )
    return found


def find_projects(conn, match, accounts):
    return list(accounts.entries("projects"))


FINDERS = {
    "servers": find_servers,
    "flavors": find_flavors,
    "traits": find_traits,
    "compute_services": find_compute_services,
    "resource_providers": find_resource_providers,
    "aggregates": find_aggregates,
    "images": find_images,
    "server_groups": find_server_groups,
    "keypairs": find_keypairs,
    "users": find_users,
    "projects": find_projects,
}


def expired_labels(resources, older_than, now):
    """Labels whose run is over and older than older_than seconds, with why.

    A label's age is that of its newest dated resource (servers, flavors,
    aggregates and images record when they were created). A label whose
    compute service still reports up belongs to a running shard and is never
    expired; one with nothing dated and no live service is debris of a run
    that died (a trait, a provider or a service record left behind).
    """
    by_label = {}
    for found in resources.values():
        for item in found:
            by_label.setdefault(item["label"], []).append(item)
    expired = {}
    for label, entries in by_label.items():
        live = any(
            e.get("state") == "up" and not e.get("forced_down")
            for e in resources.get("compute_services", [])
            if e["label"] == label
        )
        dates = [e["created"] for e in entries if e.get("created")]
        newest = max(dates) if dates else None
        if live:
            continue
        if newest is None:
            expired[label] = {"newest": None, "reason": "nothing dated and no live service"}
        elif now - newest >= older_than:
            age = int(now - newest)
            expired[label] = {"newest": newest, "reason": f"newest resource {age}s old"}
    return expired


# ---------------------------------------------------------------- deleting


def delete_servers(conn, servers, deadline):
    """Delete servers and wait until they are gone: every delete first, then the waits."""
    for server in servers:
        conn.compute.delete_server(server["id"], ignore_missing=True)
    for server in servers:
        wait_server_gone(conn, server["id"], server["name"], deadline)
    return [s["id"] for s in servers]


def wait_server_gone(conn, server_id, name, deadline):
    """Poll until the server is gone; ask again, once, if its host died meanwhile.

    Not openstacksdk's wait_for_delete: the wait must re-delete in between.
    """
    seconds = max(0, round(deadline - time.monotonic()))
    redeleted = []

    def gone():
        try:
            current = conn.compute.get_server(server_id)
        except sdk_exceptions.NotFoundException:
            return True
        if current.status == "DELETED":
            return True
        # A delete cast to a compute that died waits for it forever. Once the
        # host's service reports down, nova deletes locally: ask again, once.
        if not redeleted and current.task_state == "deleting" and host_down(conn, current):
            conn.compute.delete_server(current, ignore_missing=True)
            redeleted.append(True)
        gone.last = current
        return False

    gone.last = None

    def why():
        last = gone.last
        state = f"status {last.status}, task state {last.task_state}" if last else "unknown"
        host = last.compute_host if last else None
        return (
            f"server {name} ({server_id}) was not deleted within {seconds}s ({state}); "
            f"is its compute host {host} running?"
        )

    wait_until(gone, deadline=deadline, on_timeout=why, error=TeardownError)


def host_down(conn, server):
    """Whether the server's compute service reports down (False when it cannot tell)."""
    if not server.compute_host:
        return False
    try:
        services = list(conn.compute.services(host=server.compute_host, binary="nova-compute"))
    except sdk_exceptions.SDKException:
        return False
    return bool(services) and all(s.state == "down" for s in services)


def servers_on_host(conn, host):
    """Servers of every project hosted on a compute host."""
    # The host filter is an admin one; nova's 409 on the delete still tells without it.
    return [
        s
        for s in conn.compute.servers(all_projects=True, compute_host=host)
        if s.compute_host == host
    ]


def delete_compute_service(conn, host, binary, deadline, check_mode=False):
    """Delete a host's compute service record, then its resource provider; what was deleted.

    Refuses (TeardownError) while servers live on the host. A service that
    still reports up is forced down first, so that nova does not wait for it.
    """
    is_compute = binary == "nova-compute"
    deleted = []
    services = [
        s
        for s in conn.compute.services(host=host, binary=binary)
        if s.host == host and s.binary == binary
    ]
    if services and is_compute:
        servers = servers_on_host(conn, host)
        if servers:
            names = ", ".join(sorted(f"{s.name} ({s.id})" for s in servers)[:5])
            raise TeardownError(
                f"cannot delete compute service of host {host}: {len(servers)} server(s) "
                f"still on it ({names}); delete or migrate them first"
            )
    for service in services:
        deleted.append(f"service:{service.id}")
        if check_mode:
            continue
        if service.state == "up" and not service.is_forced_down:
            conn.compute.update_service_forced_down(
                service, host=service.host, binary=service.binary, forced=True
            )
        try:
            conn.compute.delete_service(service, ignore_missing=True)
        except sdk_exceptions.ConflictException as exc:
            raise TeardownError(
                f"cannot delete compute service of host {host}: {api_error(exc)}"
            ) from None
    if is_compute and not (services and check_mode):
        # (In check mode deleting the services would take the provider with them.)
        grace = min(deadline, time.monotonic() + PROVIDER_GRACE) if services else None
        deleted += delete_resource_provider(conn, host, check_mode, grace_until=grace)
    return deleted


def delete_resource_provider(conn, name, check_mode=False, grace_until=None):
    """Delete a resource provider without allocations; with grace_until, first give the
    cloud until then to delete it itself (a compute service's deletion does)."""
    provider = None

    def gone():
        nonlocal provider
        provider = find_resource_provider(conn, name)
        return provider is None

    # Without a grace, a deadline already past: one look.
    with contextlib.suppress(WaitTimeout):
        wait_until(gone, deadline=grace_until or 0)
    if not provider:
        return []
    allocations = provider_allocations(conn, provider["uuid"])
    if allocations:
        consumers = ", ".join(sorted(allocations)[:5])
        raise TeardownError(
            f"resource provider {name} ({provider['uuid']}) still has allocations of "
            f"{len(allocations)} consumer(s) ({consumers}); delete or migrate them first"
        )
    if not check_mode:
        try:
            placement(conn, "delete", f"/resource_providers/{provider['uuid']}")
        except sdk_exceptions.NotFoundException:
            pass  # went meanwhile
        except sdk_exceptions.ConflictException as exc:
            raise TeardownError(
                f"cannot delete resource provider {name} ({provider['uuid']}): {api_error(exc)}"
            ) from None
    return [f"resource_provider:{provider['uuid']}"]


def delete_aggregate(conn, aggregate_id):
    """Remove an aggregate's hosts, then the aggregate."""
    try:
        aggregate = conn.compute.get_aggregate(aggregate_id)
    except sdk_exceptions.NotFoundException:
        return []
    for host in aggregate.hosts or []:
        conn.compute.remove_host_from_aggregate(aggregate, host)
    conn.compute.delete_aggregate(aggregate, ignore_missing=True)
    return [f"aggregate:{aggregate_id}"]


def delete_flavor(conn, flavor_id):
    conn.compute.delete_flavor(flavor_id, ignore_missing=True)
    return [f"flavor:{flavor_id}"]


def delete_trait(conn, name):
    try:
        placement(conn, "delete", f"/traits/{quote(name)}")
    except sdk_exceptions.NotFoundException:
        pass
    except sdk_exceptions.ConflictException as exc:
        raise TeardownError(f"cannot delete trait {name}: {api_error(exc)}") from None
    return [f"trait:{name}"]


def delete_image(conn, image_id):
    conn.image.delete_image(image_id, ignore_missing=True)
    return [f"image:{image_id}"]


def disable_accounts(conn, match, check_mode=False):
    """Disable the run's own users and projects (tempest's accounts); what was disabled.

    Before anything is looked for: keystone then refuses their tokens, so a
    tempest still running on a node whose executor went away creates nothing
    in a project after teardown looked into it (which would leave it without
    a label once the project is gone).
    """
    accounts = _RunAccounts(conn, match)
    disabled = []
    for user in accounts.entries("users"):
        disabled.append(f"user:{user['id']}")
        if not check_mode:
            conn.identity.update_user(user["id"], is_enabled=False)
    for project in accounts.entries("projects"):
        disabled.append(f"project:{project['id']}")
        if not check_mode:
            conn.identity.update_project(project["id"], is_enabled=False)
    return disabled


def delete_keypair(conn, user_id, name):
    url = f"/os-keypairs/{quote(name, safe='')}?user_id={quote(user_id)}"
    response = conn.compute.delete(url, microversion=KEYPAIRS_MICROVERSION)
    if response.status_code != 404:
        sdk_exceptions.raise_from_response(response)
    return [f"keypair:{user_id}/{name}"]


def delete_kind(conn, kind, entries, deadline):
    """Delete the found entries of one kind; the list of what was deleted."""
    if kind == "servers":
        return [f"server:{i}" for i in delete_servers(conn, entries, deadline)]
    deleted = []
    for item in entries:
        if kind == "compute_services":
            deleted += delete_compute_service(
                conn, item["host"], item.get("binary") or "nova-compute", deadline
            )
        elif kind == "resource_providers":
            deleted += delete_resource_provider(conn, item["name"])
        elif kind == "aggregates":
            deleted += delete_aggregate(conn, item["id"])
        elif kind == "flavors":
            deleted += delete_flavor(conn, item["id"])
        elif kind == "traits":
            deleted += delete_trait(conn, item["name"])
        elif kind == "images":
            deleted += delete_image(conn, item["id"])
        elif kind == "server_groups":
            conn.compute.delete_server_group(item["id"], ignore_missing=True)
            deleted.append(f"server_group:{item['id']}")
        elif kind == "keypairs":
            deleted += delete_keypair(conn, item["user_id"], item["name"])
        elif kind == "users":
            conn.identity.delete_user(item["id"], ignore_missing=True)
            deleted.append(f"user:{item['id']}")
        elif kind == "projects":
            conn.identity.delete_project(item["id"], ignore_missing=True)
            deleted.append(f"project:{item['id']}")
        else:
            raise TeardownError(f"unknown kind of resource {kind!r}")
    return deleted
