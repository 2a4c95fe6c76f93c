# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Glance's image API as it answers: the one home of the image reads, and of what
tells that an endpoint is glance's image API.

glance filters and pages itself (``GET /v2/images`` with query parameters,
a ``next`` link per page); openstacksdk's image proxy would list every image
and filter on the client. Used by the shard_image_info and shard_canaries
modules (as ``ansible.module_utils.shard_images``); each takes a connection's
``image`` adapter (``conn.image``).
"""

import json
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit


def raise_for(response):
    """The SDK's exception for a failed response (its message names the error)."""
    from openstack import exceptions

    exceptions.raise_from_response(response)


def get_image(image, image_id):
    """One image's record by id, or None when glance does not know it (or it was deleted)."""
    response = image.get(f"/images/{image_id}")
    if response.status_code == 404:
        return None
    raise_for(response)
    return response.json()


def list_images(image, filters=None):
    """Every image glance finds for I(filters) (query parameters), every page, in its order."""
    params = {k: str(v) for k, v in (filters or {}).items()}
    found, seen = [], set()
    while True:
        response = image.get("/images", params=params)
        raise_for(response)
        body = response.json()
        page = body.get("images", [])
        for record in page:
            if record["id"] not in seen:
                seen.add(record["id"])
                found.append(record)
        following = body.get("next")
        if not following or not page:
            return found
        # glance's next link: /v2/images?marker=...&<the same filters>
        query = parse_qs(urlsplit(following).query)
        params = {k: v[-1] for k, v in query.items()}


# -- an endpoint of glance's own (a glance-api shard), asked without a token


def answers(url, timeout=5):
    """Whether GET <url>/versions answers (any success) within timeout seconds."""
    try:
        with urllib.request.urlopen(url + "/versions", timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def image_api_problem(url, timeout=30):
    """Why the endpoint at url is not glance's image API with keystone auth, or None.

    It must offer the image API v2 as CURRENT and refuse a request without a
    token (401: keystone auth is in its pipeline).
    """
    try:
        with urllib.request.urlopen(url + "/versions", timeout=timeout) as response:
            versions = json.load(response)["versions"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"the shard at {url} did not list its API versions: {exc}"
    current = [
        v for v in versions if v.get("status") == "CURRENT" and v.get("id", "").startswith("v2")
    ]
    if not current:
        return f"the shard at {url} offers no CURRENT image API v2: {versions}"
    try:
        urllib.request.urlopen(url + "/v2/images", timeout=timeout).close()
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            return None
        return f"the shard answered {exc.code} to a request without a token, not 401"
    except OSError as exc:
        return f"the shard at {url} did not answer a request without a token: {exc}"
    return "the shard served a request without a token"
