# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Shared code of the shard-jobs modules: connection, options, labels, retries.

Modules import it as ``ansible.module_utils.shard_openstack``; Ansible ships it
with them to the node, found in the module_utils directory next to the
playbooks (playbooks/module_utils) or given by ANSIBLE_MODULE_UTILS.
"""

import random
import re
import time
import traceback
from urllib.parse import quote

from ansible.module_utils import shard_phases, shard_secrets
from ansible.module_utils.basic import AnsibleModule

# The run's names (label, trait, description) live in shard_labels; re-exported
# here so that a module imports its helpers from one place.
from ansible.module_utils.shard_labels import (  # noqa: F401
    LABEL_DESCRIPTION_PREFIX,
    LABEL_METADATA_KEY,
    TRAIT_PREFIX,
    created_of_description,
    description_for,
    is_label,
    label_error,
    label_of_description,
    label_of_metadata,
    label_of_trait,
    trait_for,
)

try:
    import openstack

    HAS_SDK = True
    SDK_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by the module
    HAS_SDK = False
    SDK_IMPORT_ERROR = traceback.format_exc()

# Options every module takes; the connection comes from clouds.yaml (the file
# named by OS_CLIENT_CONFIG_FILE, as openstacksdk reads it) or an inline entry.
CONNECTION_ARGS = dict(
    cloud=dict(type="raw", required=True, no_log=False),
    region_name=dict(type="str"),
    interface=dict(type="str", default="public", choices=["public", "internal", "admin"]),
    timeout=dict(type="int", default=180),
)

# Placement: trait routes need 1.6; openstacksdk has no provider trait calls.
PLACEMENT_MICROVERSION = "1.6"
UUID_RE = re.compile(r"^[0-9a-f]{8}(-?[0-9a-f]{4}){3}-?[0-9a-f]{12}$", re.IGNORECASE)


def label_of_server(server):
    """(label, source) of a server: metadata shard_label first, then a label tag."""
    label = label_of_metadata(server.get("metadata"))
    if label:
        return label, "metadata:" + LABEL_METADATA_KEY
    for tag in server.get("tags") or []:
        if is_label(tag):
            return tag, "tag"
    return None, None


def server_has_label(server, label):
    """Whether the server carries I(label), in its metadata or as a tag."""
    return (server.get("metadata") or {}).get(LABEL_METADATA_KEY) == label or label in (
        server.get("tags") or []
    )


def parse_timestamp(text):
    """An OpenStack API timestamp ('2026-11-25T13:20:01Z', '...:01.000000') as epoch
    seconds, to the second. UTC: an offset, which these APIs do not give, is ignored."""
    import calendar

    if not text:
        return None
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))


class ShardModule:
    """AnsibleModule plus an openstacksdk connection, in the openstack.cloud style.

    Subclasses set ``argument_spec`` (merged with CONNECTION_ARGS and the
    ``phase`` option of module_utils/shard_phases.py), optional
    ``module_kwargs``, and implement ``run()``, which calls ``exit_json``.
    """

    argument_spec = {}
    module_kwargs = {}

    def __init__(self):
        spec = dict(CONNECTION_ARGS, phase=shard_phases.PHASE_OPTION)
        spec.update(self.argument_spec)
        self.ansible = AnsibleModule(argument_spec=spec, **self.module_kwargs)
        self.params = self.ansible.params
        if isinstance(self.params.get("cloud"), dict):
            # A cloud given inline (not a name in clouds.yaml) holds its secrets:
            # Ansible masks these values wherever the result would show them
            # (its invocation, a message).
            self.ansible.no_log_values.update(
                shard_secrets.secret_values(self.params["cloud"]).values()
            )
        self.check_mode = self.ansible.check_mode
        self.results = {"changed": False}
        self.conn = None
        self.phase_ended = False

    def connect(self):
        if not HAS_SDK:
            self.fail_json(msg="openstacksdk is required", exception=SDK_IMPORT_ERROR)
        cloud = self.params["cloud"]
        kwargs = dict(
            region_name=self.params["region_name"],
            interface=self.params["interface"],
            api_timeout=self.params["timeout"],
        )
        # A cloud given as a dict holds its credentials: never in a message.
        named = f"cloud {cloud!r}" if isinstance(cloud, str) else "the cloud given inline"
        try:
            if isinstance(cloud, dict):
                config = dict(cloud)
                config.update({k: v for k, v in kwargs.items() if v is not None})
                return openstack.connect(**config)
            return openstack.connect(cloud=cloud, **kwargs)
        except openstack.exceptions.ConfigException as exc:
            self.fail_json(msg=f"{named} not usable: {exc}")
        except Exception as exc:  # keystoneauth / requests errors
            self.fail_json(msg=f"cannot connect to {named}: {exc}")

    def fail_json(self, **kwargs):
        self.ansible.fail_json(**kwargs)

    def end_phase(self):
        """Record the end of the C(phase) option now, once (exit_json does it otherwise): for
        a module whose phase ends before the rest of its work (another phase's)."""
        if not self.phase_ended:
            self.phase_ended = True
            shard_phases.module_event(self.ansible, "end")

    def exit_json(self, **kwargs):
        result = dict(self.results)
        result.update(kwargs)
        self.end_phase()
        self.ansible.exit_json(**result)

    def require_label(self, option="label"):
        """Fail unless option I(option) holds a valid shard label; return it (or None if unset)."""
        label = self.params.get(option)
        if label is not None:
            error = label_error(label, option)
            if error:
                self.fail_json(msg=error)
        return label

    def __call__(self):
        shard_phases.module_event(self.ansible, "start")
        self.conn = self.connect()
        try:
            self.run()
        except openstack.exceptions.SDKException as exc:
            msg = _one_line(exc)
            details = _details(exc)
            if details and details not in msg:
                msg = f"{msg}: {details}"
            self.fail_json(msg=msg, exception=traceback.format_exc())
        except TimeoutError as exc:
            self.fail_json(msg=str(exc))

    def run(self):  # pragma: no cover - abstract
        raise NotImplementedError


def _one_line(exc):
    return " ".join(str(exc).split())


def _details(exc):
    """The message of an API error answer, on one line, or None."""
    details = getattr(exc, "details", None)
    try:  # placement words its errors as {"errors": [{"detail": ...}]}
        errors = exc.response.json()["errors"]
        details = "; ".join(e["detail"] for e in errors if e.get("detail")) or details
    except Exception:
        pass
    return " ".join(str(details).split()) if details else None


def api_error(exc):
    """What the API said, on one line: its message and HTTP status, else the exception text."""
    details = _details(exc)
    status = getattr(exc, "status_code", None)
    if details:
        return f"{details} (HTTP {status})" if status else details
    return _one_line(exc)


def placement(conn, method, url, body=None, microversion=PLACEMENT_MICROVERSION):
    """One placement REST call; the decoded JSON answer (None if empty).

    Errors raise openstacksdk's HttpException subclasses, as its proxies do
    (NotFoundException, ConflictException, ...).
    """
    kwargs = {"microversion": microversion}
    if body is not None:
        kwargs["json"] = body
    response = getattr(conn.placement, method)(url, **kwargs)
    openstack.exceptions.raise_from_response(response)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def find_resource_provider(conn, name_or_uuid):
    """The placement resource provider (a dict) with this uuid or name, or None."""
    if UUID_RE.match(name_or_uuid):
        try:
            return placement(conn, "get", f"/resource_providers/{name_or_uuid}")
        except openstack.exceptions.NotFoundException:
            pass
    found = placement(conn, "get", "/resource_providers?name=" + quote(name_or_uuid, safe=""))
    providers = found.get("resource_providers", [])
    return providers[0] if providers else None


def provider_allocations(conn, uuid):
    """{consumer uuid: {...}} of the allocations against a resource provider."""
    return placement(conn, "get", f"/resource_providers/{uuid}/allocations").get("allocations", {})


def retry_on_conflict(func, attempts=10, interval=0.2):
    """A read-then-write of a provider (func) again while placement says it raced.

    409: the provider's generation moved. 500 naming a database deadlock:
    placement lets oslo.db's DBDeadlock through on concurrent aggregate writes
    (seen with eight shards joining at once). Both are safe to retry because
    func reads the generation again each time.

    A retry of a refused write, not a wait for a state (shard_waits): it
    counts attempts, not seconds, and jitters its pause.
    """
    for attempt in range(attempts):
        try:
            return func()
        except openstack.exceptions.HttpException as exc:
            if not raced(exc) or attempt == attempts - 1:
                raise
            # Jittered: shards that raced each other do not retry in step.
            time.sleep(interval * (1 + random.random()))


def raced(exc):
    """Whether placement refused a write because another writer got there first."""
    return isinstance(exc, openstack.exceptions.ConflictException) or (
        exc.status_code == 500 and "deadlock" in api_error(exc).lower()
    )


# -- provider traits (shard_compute_label) --------------------------------

# Writes of a provider's traits tried before giving up on a provider that keeps changing.
PROVIDER_TRAITS_ATTEMPTS = 10


class ProviderTraitsError(Exception):
    """A provider's traits could not be written; the message is one line for fail_json."""


def missing_traits(conn, names):
    """The traits among I(names) that placement does not know, in their order."""
    if not names:
        return []
    query = quote("in:" + ",".join(names), safe=":,")
    known = set(placement(conn, "get", f"/traits?name={query}")["traits"])
    return [t for t in names if t not in known]


def change_provider_traits(
    conn, provider, add=(), remove=(), check_mode=False, attempts=PROVIDER_TRAITS_ATTEMPTS
):
    """Add and remove traits of a resource provider (a dict), keeping its other traits.

    Writes the whole list with the generation read with it; when nova-compute
    updated the provider meanwhile placement answers 409, and the traits are
    read again and written again (retry_on_conflict). In check mode nothing is
    written. Returns dict(changed, traits (sorted, as they are or would be),
    generation); raises ProviderTraitsError when the provider kept changing or
    went away.
    """
    uuid, name = provider["uuid"], provider["name"]
    state = {"changed": False}

    def apply():
        current = placement(conn, "get", f"/resource_providers/{uuid}/traits")
        generation = current["resource_provider_generation"]
        have = set(current["traits"])
        want = (have | set(add)) - set(remove)
        state.update(changed=want != have, traits=sorted(want), generation=generation)
        if want == have or check_mode:
            return
        answer = placement(
            conn,
            "put",
            f"/resource_providers/{uuid}/traits",
            body={"traits": sorted(want), "resource_provider_generation": generation},
        )
        state.update(
            traits=sorted(answer["traits"]), generation=answer["resource_provider_generation"]
        )

    try:
        retry_on_conflict(apply, attempts=attempts)
    except openstack.exceptions.NotFoundException as exc:
        raise ProviderTraitsError(f"resource provider {name} disappeared from placement") from exc
    except openstack.exceptions.HttpException as exc:
        if not raced(exc):
            raise
        raise ProviderTraitsError(
            f"cannot update traits of resource provider {name}: it kept changing during "
            f"{attempts} attempts ({api_error(exc)})"
        ) from exc
    return state


def endpoint_problem(conn, service_type, interface="public", region_name=None, timeout=10):
    """Why a service of the catalog does not answer, on one line, or None when it does.

    An unauthenticated GET of its endpoint (its version document): anything but
    a 5xx answer means the API is up.
    """
    try:
        endpoint = conn.session.get_endpoint(
            service_type=service_type,
            interface=interface,
            region_name=region_name or conn.config.get_region_name(),
        )
    except Exception:
        endpoint = None
    if not endpoint:
        return f"{service_type} (no endpoint in the catalog)"
    try:
        resp = conn.session.get(endpoint, authenticated=False, raise_exc=False, timeout=timeout)
    except Exception as exc:
        return f"{service_type} at {endpoint} unreachable ({short_error(exc)})"
    if resp.status_code >= 500:
        return f"{service_type} at {endpoint} answers HTTP {resp.status_code}"
    return None


def short_error(exc):
    """An exception's text on one line, at most 200 characters."""
    return _one_line(exc)[:200]
