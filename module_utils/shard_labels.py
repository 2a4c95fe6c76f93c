# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""The names of a shard run: the one home of the label, the trait, the description,
the names of what a run creates and the port a shard listens on.

Everything a run creates is named after its Zuul build id and marked with its
label, so that teardown and the janitor find exactly it. Every consumer uses
these functions, never a copy of the rule:

- the modules, as ``ansible.module_utils.shard_labels`` (Ansible ships
  module_utils/ with them to the node);
- Jinja, through the filters of roles/shard/filter_plugins/shard_rules.py, one
  per function (``shard_label``, ``shard_trait``, ``shard_port``, ...);
- the CLI, the bench and the tests, as ``shard_jobs.rules.labels``.

Standard library only, and no import of another module_utils file: each of
those consumers imports it under another name.
"""

import re
import time

# A Zuul build id: uuid4().hex, 32 lowercase hexadecimal digits. Nothing
# else is accepted: the id is rendered into names, paths and comments.
BUILD_ID_RE = re.compile(r"[0-9a-f]{32}")
# The label is "shard-" and the build id's first 12 digits: short enough for
# a host name, long enough that two runs never share it.
LABEL_HEX_DIGITS = 12
LABEL_PREFIX = "shard-"
LABEL_RE = re.compile(f"{LABEL_PREFIX}[0-9a-f]{{{LABEL_HEX_DIGITS}}}")
# Searched in labels, it matches every label (the janitor's default): only
# valid labels are ever searched, so the prefix is enough.
ALL_LABELS_PATTERN = "^" + re.escape(LABEL_PREFIX)
# Where the label is kept on each kind of resource.
LABEL_METADATA_KEY = "shard_label"
LABEL_DESCRIPTION_PREFIX = "shard-jobs label="
# What trait_for makes of the prefix (the inverse, label_of_trait, looks for it).
TRAIT_PREFIX = "CUSTOM_" + LABEL_PREFIX.upper().replace("-", "_")
# The label, then the end or one space (what description_for writes).
_DESCRIPTION_RE = re.compile(f"{re.escape(LABEL_DESCRIPTION_PREFIX)}({LABEL_RE.pattern})(?: |$)")
_CREATED_RE = re.compile(r"created=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")


def build_id_error(build_id):
    """Why I(build_id) is not a Zuul build id, or None when it is one."""
    if isinstance(build_id, str) and BUILD_ID_RE.fullmatch(build_id):
        return None
    shown = repr(str(build_id)[:40])
    return (
        f"invalid build id {shown}: shard names are derived from it; expected a Zuul "
        "build id (32 lowercase hexadecimal digits)"
    )


# A run may deploy several shards (the rolling upgrade): shard i's label keeps
# the build's first digits and counts on in the last two, so that the shards
# of one run read as one run's, and each is still a label like any other
# (teardown, the janitor, the bus and the trait take it as it is).
MAX_SHARDS = 16
_INDEX_HEX_DIGITS = 2


def label_for(build_id, index=0):
    """shard-<12 hex>: the label of a build's shard I(index) (0: the build's own label).

    ValueError for anything but a build id, or an index outside 0..MAX_SHARDS-1.
    """
    error = build_id_error(build_id)
    if error:
        raise ValueError(error)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < MAX_SHARDS:
        raise ValueError(f"invalid shard index {str(index)[:20]!r}: expected 0 to {MAX_SHARDS - 1}")
    head = LABEL_HEX_DIGITS - _INDEX_HEX_DIGITS
    if index == 0:
        return LABEL_PREFIX + build_id[:LABEL_HEX_DIGITS]
    tail = (int(build_id[head:LABEL_HEX_DIGITS], 16) + index) % 16**_INDEX_HEX_DIGITS
    return f"{LABEL_PREFIX}{build_id[:head]}{tail:0{_INDEX_HEX_DIGITS}x}"


def shards_error(count):
    """Why I(count) is not a number of shards a run may deploy, or None when it is one."""
    if not isinstance(count, bool):
        try:
            if 1 <= int(str(count)) <= MAX_SHARDS:
                return None
        except ValueError:
            pass
    return f"invalid number of shards {str(count)[:20]!r}: expected 1 to {MAX_SHARDS}"


def labels_for(build_id, shards=1):
    """The labels of a build's I(shards) shards, shard 0 (the build's label) first."""
    return [label_for(build_id, index) for index in range(shards)]


def is_label(text):
    """Whether I(text) is exactly a label the jobs generate (nothing before or after)."""
    return isinstance(text, str) and LABEL_RE.fullmatch(text) is not None


def label_error(label, option="label"):
    """Why I(label) is not a shard label, or None when it is one."""
    if is_label(label):
        return None
    return (
        f"{option} {str(label)[:60]!r} is not a shard label: expected "
        f"'{LABEL_PREFIX}' followed by {LABEL_HEX_DIGITS} lowercase hex digits"
    )


def trait_for(label):
    """CUSTOM_SHARD_<HEX>: the placement trait of a label."""
    return TRAIT_PREFIX + label[len(LABEL_PREFIX) :].upper()


def label_of_trait(name):
    """The label of a CUSTOM_SHARD_<HEX> trait (the inverse of trait_for), or None."""
    if not isinstance(name, str) or not name.startswith(TRAIT_PREFIX):
        return None
    label = LABEL_PREFIX + name[len(TRAIT_PREFIX) :].lower()
    return label if is_label(label) and trait_for(label) == name else None


def trait_requirement(label):
    """{trait:<TRAIT>: required}: what makes a flavor's servers (or an aggregate's
    hosts) require a label's trait, as nova's extra specs and metadata write it."""
    return {f"trait:{trait_for(label)}": "required"}


def aggregate_metadata(label):
    """The metadata of a shard's host aggregate: its label, and the trait that isolates it.

    With nova's [scheduler] enable_isolated_aggregate_filtering, an aggregate
    whose metadata has trait:<TRAIT>=required takes only servers whose flavor
    or image requires that trait: nobody else's servers land on the shard.
    """
    return {LABEL_METADATA_KEY: label, **trait_requirement(label)}


def label_of_metadata(metadata):
    """The label in a metadata or properties dict (key shard_label), or None."""
    label = (metadata or {}).get(LABEL_METADATA_KEY)
    return label if is_label(label) else None


def description_for(label, created=None):
    """'shard-jobs label=<label> created=<UTC time>': how a flavor records its label."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
    return f"{LABEL_DESCRIPTION_PREFIX}{label} created={stamp}"


def label_of_description(description):
    """The label recorded in a description ('shard-jobs label=shard-abc ...'), or None."""
    if not isinstance(description, str):
        return None
    match = _DESCRIPTION_RE.match(description)
    return match.group(1) if match else None


def created_of_description(description):
    """The creation time recorded in a description, as epoch seconds, or None."""
    import calendar

    match = _CREATED_RE.search(description or "")
    if not match:
        return None
    return calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%SZ"))


# ---------------------------------------------------------------- names and ports


def name_for(label, purpose):
    """<label>-<purpose>: the name of what a run creates for that purpose (flavor,
    server, survivor, probe, ...). A name is for people; the label, kept where
    each kind keeps it, is what teardown and the janitor go by."""
    return f"{label}-{purpose}"


def flavor_name_for(label):
    """<label>-flavor: the flavor that requires the shard's trait (its servers land on it)."""
    return name_for(label, "flavor")


def server_name_for(label):
    """<label>-server: the server the exercise boots on the shard."""
    return name_for(label, "server")


# A shard's own port on the node, for a service that listens (glance-api):
# derived from the label so that shards of concurrent builds on one node do
# not collide; 20000-29999, below Linux's ephemeral range and clear of the
# cloud's APIs.
PORT_BASE = 20000
PORT_SPAN = 10000


def port_for(label):
    """The port a shard listens on, from its label's digits; ValueError for anything else."""
    error = label_error(label)
    if error:
        raise ValueError(error)
    return PORT_BASE + int(label[len(LABEL_PREFIX) :], 16) % PORT_SPAN
