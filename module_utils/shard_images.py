# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Glance's image records as its API returns them: the one home of the image reads.

glance filters and pages itself (``GET /v2/images`` with query parameters,
a ``next`` link per page); openstacksdk's image proxy would list every image
and filter on the client. Used by the shard_image_info and shard_canaries
modules (as ``ansible.module_utils.shard_images``); each takes a connection's
``image`` adapter (``conn.image``).
"""

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
