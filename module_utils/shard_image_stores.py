# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""The cloud's image stores as a glance-api shard meets them: the one home of the rules.

A glance-api shard serves the cloud's images from the cloud's own stores (the
credentials' ``glance.stores``, glance_store's multi-store configuration, and
``glance.default_store``). Its profile says which store types it serves
(``image_store.types``). A network store (rbd, swift, s3, cinder) is the same
from any host. A ``file`` store is a directory of the cloud's: the shard can
serve it only where the node sees that same directory (the cloud's own host,
or a filesystem both mount). glance_store's filesystem driver keeps an image's
data as ``<filesystem_store_datadir>/<image id>``, so the data of an image the
cloud holds (the operator's canary image, found in pre-flight) shows whether
this node sees the store.

Used by library/shard_canaries.py (as ``ansible.module_utils.shard_image_stores``),
the shard role's filters and the unit tests. Standard library only.
"""

import os

# The store type whose data is a directory of the cloud's, and that directory's option.
FILE_TYPE = "file"
FILE_DIR_OPTION = "filesystem_store_datadir"


def _stores(stores):
    return sorted((sid, store) for sid, store in (stores or {}).items() if isinstance(store, dict))


def unsupported(stores, types):
    """'glance.stores.ID.type 'T'' for each store whose type the profile does not serve."""
    return [
        f"glance.stores.{sid}.type {store.get('type')!r}"
        for sid, store in _stores(stores)
        if store.get("type") not in (types or [])
    ]


def file_stores(stores):
    """Store id to the directory of each of the cloud's file stores, as the credentials
    hand them out."""
    return {
        sid: str(store[FILE_DIR_OPTION])
        for sid, store in _stores(stores)
        if store.get("type") == FILE_TYPE and store.get(FILE_DIR_OPTION)
    }


def unseen_dirs(image, stores_dirs):
    """The file store directories where this host should see the image's data and does
    not (an empty list when it sees it, or when the image is in no file store).

    An image with data (active) names its stores in ``stores`` (glance's multi-store,
    comma-separated ids); without that, it is in whichever store the cloud has. glance's
    file store keeps the data as DIR/<image id>."""
    if image.get("status") != "active" or not stores_dirs:
        return []
    named = [s.strip() for s in str(image.get("stores") or "").split(",") if s.strip()]
    dirs = (
        [stores_dirs[s] for s in named if s in stores_dirs] if named else list(stores_dirs.values())
    )
    if not dirs or any(os.path.isfile(os.path.join(d, image["id"])) for d in dirs):
        return []
    return dirs


# What a site does about it, the end of both lines below.
_BOTH_REACH = (
    "a glance-api shard on another host than the cloud's needs a store both reach (a "
    "filesystem both mount, or a network store of the profile's image_store.types)"
)


def unreachable(image_name, image_id, dirs):
    """The one line that stops a glance-api shard whose node does not see the file store
    that holds an image of the cloud's."""
    return (
        f"the cloud's file image store is not reachable from this node: the data of its "
        f"image {image_name} ({image_id}) is not in {', '.join(dirs)} here; {_BOTH_REACH}"
    )


def missing_dir(directory):
    """The one line that stops a glance-api shard whose node lacks a file store's directory."""
    return (
        f"the cloud's file image store {directory} is not a directory on this node; {_BOTH_REACH}"
    )
