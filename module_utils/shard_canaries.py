# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Canaries: what a shard must not have touched, and how to tell that it did.

Two checks, both failing the job with the image named:

- the glance-api shard's own access log (gunicorn's ``--access-logfile``, in the
  service's log) lists every request it served: a write to an image the job did
  not create (upload, stage, import, update, delete, tags, members, actions,
  a store's copy, the cache) is one the change had no business serving;
- the operator's canaries, images (around glance shards) and servers (around
  nova-compute shards, on the cloud's ordinary computes): a snapshot of each is
  taken at pre-flight and must read the same after the exercise and after
  teardown.

A busy cloud changes by itself, so only these are compared: the requests this
shard served, and images and servers the operator says nothing else changes.
A nova-compute holding the bus URL can make the conductor change any server
(docs/source/trust.rst): a canary server is how a site sees that one did.

Used by library/shard_canaries.py (as ``ansible.module_utils.shard_canaries``)
and the unit tests. Standard library only, no import of another module_utils file.
"""

import re

# gunicorn's default access log format:
#   %(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"
# 127.0.0.1 - - [03/Dec/2026:02:30:00 +0000] "DELETE /v2/images/ID HTTP/1.1" 204 0 "-" "ua"
ACCESS_LINE_RE = re.compile(
    r'^\S+ \S+ \S+ \[[^\]]*\] "(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) '
)
# Methods that only read.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_UUID = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
# Paths of the image API that name one image (glance 2026.2's v2 routes):
# /v2/images/ID[/file|/stage|/import|/tags/T|/members[/M]|/actions/A|/locations],
# /v2/stores/STORE/ID, /v2/cache/ID.
_IMAGE_PATH_RES = (
    re.compile(rf"^/v2/images/(?P<id>{_UUID})(?:/.*)?$"),
    re.compile(rf"^/v2/stores/[^/]+/(?P<id>{_UUID})/?$"),
    re.compile(rf"^/v2/cache/(?P<id>{_UUID})/?$"),
)
# The kinds of canary, as the credentials name them (canary_images, canary_servers)
# and as the snapshot file keys them.
KINDS = ("images", "servers")
# What a canary's snapshot leaves out: links, which say nothing of the image or server.
_LINK_KEYS = frozenset({"self", "file", "schema", "links"})


def canaries_for(credentials, profile):
    """Kind to the operator's canaries of that kind (the credentials' ``canary_<kind>``, a
    list, or one name), for the kinds the profile's shard could touch (its ``canaries``).

    ValueError, with the one line to show, for a kind this module does not know, a
    profile written for the earlier ``canary_images: true``, or credentials whose
    canaries are not a list of names or ids.
    """
    if "canary_images" in profile:
        raise ValueError(
            "the profile's 'canary_images: true' is now 'canaries: [images]' (see shards.rst)"
        )
    kinds = profile.get("canaries") or []
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise ValueError(f"unknown canary kinds {unknown}: a profile's canaries are among {KINDS}")
    found = {}
    for kind in kinds:
        value = credentials.get(f"canary_{kind}") or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"canary_{kind} in the credentials is not a list of ids or names")
        found[kind] = value
    return found


def parse_access_line(line):
    """(method, path, status) of an access log line, or None for any other line."""
    match = ACCESS_LINE_RE.match(line)
    if not match:
        return None
    path = match["target"].split("?", 1)[0]
    return match["method"], path, int(match["status"])


def image_of_path(path):
    """The image id a request path names, or None."""
    for pattern in _IMAGE_PATH_RES:
        match = pattern.match(path)
        if match:
            return match["id"]
    return None


def written_image(line):
    """(image id, request) when the line records a write to one image, else None."""
    parsed = parse_access_line(line)
    if parsed is None:
        return None
    method, path, status = parsed
    if method in READ_METHODS:
        return None
    image_id = image_of_path(path)
    if image_id is None:
        return None
    return image_id, f"{method} {path} {status}"


def foreign_writes(lines, own_ids):
    """{image id: [requests]} of writes to images not in own_ids, in log order."""
    own = {i.lower() for i in own_ids}
    found = {}
    for line in lines:
        written = written_image(line)
        if written and written[0].lower() not in own:
            found.setdefault(written[0], []).append(written[1])
    return found


def foreign_writes_error(found):
    """The job's one line for foreign_writes' result, or None."""
    if not found:
        return None
    parts = [f"{image_id} ({', '.join(requests[:3])})" for image_id, requests in found.items()]
    return (
        "the shard served writes to images the job did not create: "
        + "; ".join(parts)
        + " (its access log)"
    )


def snapshot(record):
    """What is compared of a canary: the API's record of it, links aside.

    glance's GET /v2/images/ID, or nova's GET /servers/ID (its ``server``): status,
    host, power and task state, metadata, ``updated`` and the rest.
    """
    return {k: v for k, v in record.items() if k not in _LINK_KEYS}


def differences(before, after):
    """The keys whose values differ between two snapshots (None after: deleted)."""
    if after is None:
        return ["deleted"]
    keys = sorted(set(before) | set(after))
    return [k for k in keys if before.get(k) != after.get(k)]


def canary_error(recorded, now, when, kind="images"):
    """The job's one line when a canary of KIND changed, else None.

    recorded: {id: snapshot} taken at pre-flight; now: {id: snapshot or None}.
    """
    changed = []
    for canary_id, before in recorded.items():
        diff = differences(before, now.get(canary_id))
        if diff:
            name = before.get("name") or canary_id
            changed.append(f"{name} ({canary_id}): {', '.join(diff)}")
    if not changed:
        return None
    return f"canary {kind} changed {when}: " + "; ".join(changed)
