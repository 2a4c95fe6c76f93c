# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Jinja filters for the shared rules of module_utils/: the run's names
(shard_labels.py), which profiles exist (shard_profiles.py), the operator's
canaries a profile's shard is checked against (shard_canaries.py), the masked
copy of the credentials and the encoding of a password in a URL
(shard_secrets.py), a service's keystoneauth options (shard_auth.py), tempest's
selection (shard_tempest.py) and the efficiency report's page
(shard_report_page.py).

Templates and task files derive the label, the trait, the flavor's
description, the names of what a run creates, a shard's port, and the
credentials a logged configuration is rendered with, through these filters,
so that Jinja uses the same functions as the modules, the CLI and the tests.
A filter plugin runs on the controller (Zuul's executor), where Ansible puts
module_utils/ on no import path: this plugin
adds the repository's module_utils/ (next to roles/, in the checkout Zuul
prepares) to the path of the ``ansible.module_utils`` package once, as
shard_jobs/rules.py does for the CLI, so that each file imports under the one
name it has on a node (shard_report_page imports shard_phases that way).
The embedded_cloud role loads this same file through a link in its own
filter_plugins/ (it does not depend on the shard role).
"""

import os

import ansible.module_utils
from ansible.errors import AnsibleFilterError

_MODULE_UTILS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
    "module_utils",
)
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)

from ansible.module_utils import (  # noqa: E402
    shard_auth,
    shard_canaries,
    shard_image_stores,
    shard_labels,
    shard_profiles,
    shard_report_page,
    shard_secrets,
    shard_tempest,
)


def _filter(rule, *, blank_none=False):
    """A rule of module_utils as a filter: its ValueError an AnsibleFilterError (one
    line, the rule's own), and, for the "why not" rules, None (nothing wrong) as ''."""

    def apply(*args, **kwargs):
        try:
            value = rule(*args, **kwargs)
        except ValueError as exc:
            raise AnsibleFilterError(str(exc)) from None
        return "" if blank_none and value is None else value

    apply.__name__, apply.__doc__ = rule.__name__, rule.__doc__
    return apply


# Where Jinja's values need converting before the rule sees them (a loop's
# index may be text; an option left empty means "none").
def _label(build_id, index=0):
    return shard_labels.label_for(build_id, int(index))


def _description(label, created=None):
    return shard_labels.description_for(label, None if created is None else float(created))


def _profile_error(name, root, profile_dir=""):
    return shard_profiles.profile_error(name, root, profile_dir or None)


def _profile_path(name, root, profile_dir=""):
    return shard_profiles.profile_path(name, root, profile_dir or None)


class FilterModule:
    def filters(self):
        return {
            # The run's names (shard_labels).
            "shard_label": _filter(_label),
            "shard_build_id_error": _filter(shard_labels.build_id_error, blank_none=True),
            "shard_shards_error": _filter(shard_labels.shards_error, blank_none=True),
            "shard_trait": _filter(shard_labels.trait_for),
            "shard_description": _filter(_description),
            "shard_trait_requirement": _filter(shard_labels.trait_requirement),
            "shard_flavor_name": _filter(shard_labels.flavor_name_for),
            "shard_server_name": _filter(shard_labels.server_name_for),
            "shard_name": _filter(shard_labels.name_for),
            "shard_port": _filter(shard_labels.port_for),
            # Profiles and what a profile's shard is checked against.
            "shard_profile_error": _filter(_profile_error, blank_none=True),
            "shard_profile_path": _filter(_profile_path),
            "shard_canaries": _filter(shard_canaries.canaries_for),
            "shard_unsupported_stores": _filter(shard_image_stores.unsupported),
            "shard_file_stores": _filter(shard_image_stores.file_stores),
            "shard_file_store_missing": _filter(shard_image_stores.missing_dir),
            # Credentials (shard_secrets, shard_auth).
            "shard_masked": _filter(shard_secrets.masked),
            "shard_url_quoted": _filter(shard_secrets.url_quoted),
            "shard_service_auth": _filter(shard_auth.service_options),
            "shard_auth_error": _filter(shard_auth.auth_error),
            "shard_service_auth_error": _filter(shard_auth.service_account_error),
            "shard_service_auth_note": _filter(shard_auth.service_account_note),
            # tempest's selection (shard_tempest).
            "shard_tempest_selection": _filter(shard_tempest.selection),
            # The efficiency report's page.
            "shard_report_html": _filter(shard_report_page.render),
        }
