# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Jinja filters for the shared rules of module_utils/: the run's names
(shard_labels.py), which profiles exist (shard_profiles.py), the operator's
canaries a profile's shard is checked against (shard_canaries.py), the masked
copy of the credentials and the encoding of a password in a URL
(shard_secrets.py), a service's keystoneauth options (shard_auth.py) and the
efficiency report's page (shard_report_page.py).

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
    shard_labels,
    shard_profiles,
    shard_report_page,
    shard_secrets,
)


def shard_label(build_id, index=0):
    """shard-<12 hex> of a Zuul build id (its shard I(index)); an error naming a bad id."""
    try:
        return shard_labels.label_for(build_id, int(index))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def shard_build_id_error(build_id):
    """Why the value is not a Zuul build id, or '' when it is one."""
    return shard_labels.build_id_error(build_id) or ""


def shard_shards_error(count):
    """Why the value is not a number of shards a run may deploy, or '' when it is one."""
    return shard_labels.shards_error(count) or ""


def shard_profile_error(name, root, profile_dir=""):
    """Why the job's profile cannot be loaded (naming the known ones), or '' when it can."""
    return shard_profiles.profile_error(name, root, profile_dir or None) or ""


def shard_profile_path(name, root, profile_dir=""):
    """The directory of the job's profile: profile_dir when given, else root/name."""
    return shard_profiles.profile_path(name, root, profile_dir or None)


def shard_canaries_of(credentials, profile):
    """Kind to the operator's canaries of that kind, for the kinds the profile names."""
    try:
        return shard_canaries.canaries_for(credentials, profile)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def shard_trait(label):
    """CUSTOM_SHARD_<HEX> of a label."""
    return shard_labels.trait_for(label)


def shard_description(label, created=None):
    """The description that records a label and its creation time (flavors): now, or
    I(created) (epoch seconds)."""
    return shard_labels.description_for(label, None if created is None else float(created))


def shard_trait_requirement(label):
    """{trait:<TRAIT>: required}: a flavor's extra spec that requires the label's trait."""
    return shard_labels.trait_requirement(label)


def shard_flavor_name(label):
    """<label>-flavor: the flavor that requires the shard's trait."""
    return shard_labels.flavor_name_for(label)


def shard_server_name(label):
    """<label>-server: the server the exercise boots."""
    return shard_labels.server_name_for(label)


def shard_name(label, purpose):
    """<label>-<purpose>: the name of what a run creates for another purpose."""
    return shard_labels.name_for(label, purpose)


def shard_port(label):
    """The port a shard listens on, derived from its label."""
    try:
        return shard_labels.port_for(label)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def shard_masked(credentials):
    """The credentials with every secret replaced by a marker (see shard_secrets)."""
    return shard_secrets.masked(credentials)


def shard_url_quoted(value):
    """value percent-encoded for a URL's user information (see shard_secrets.url_quoted;
    Jinja's urlencode leaves '/')."""
    return shard_secrets.url_quoted(value)


def shard_service_auth(credentials):
    """[(option, value)] of the service under test's keystoneauth sections, for the
    job's credentials: their service_auth when they hold one, else their cloud
    (password or application credential; see shard_auth)."""
    try:
        return shard_auth.service_options(credentials)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def shard_service_auth_error(credentials):
    """Why the credentials' service_auth cannot work, or '' when it can or is absent."""
    return shard_auth.service_account_error(credentials)


def shard_service_auth_note(credentials):
    """One line: which account the service under test runs with."""
    return shard_auth.service_account_note(credentials)


def shard_auth_error(cloud):
    """Why a clouds.yaml entry's auth cannot work, or '' when it can."""
    return shard_auth.auth_error(cloud)


def shard_report_html(report):
    """report.html of the report the shard_report module returned."""
    return shard_report_page.render(report)


class FilterModule:
    def filters(self):
        return {
            "shard_label": shard_label,
            "shard_build_id_error": shard_build_id_error,
            "shard_shards_error": shard_shards_error,
            "shard_trait": shard_trait,
            "shard_canaries": shard_canaries_of,
            "shard_profile_error": shard_profile_error,
            "shard_profile_path": shard_profile_path,
            "shard_description": shard_description,
            "shard_trait_requirement": shard_trait_requirement,
            "shard_flavor_name": shard_flavor_name,
            "shard_server_name": shard_server_name,
            "shard_name": shard_name,
            "shard_port": shard_port,
            "shard_masked": shard_masked,
            "shard_url_quoted": shard_url_quoted,
            "shard_service_auth": shard_service_auth,
            "shard_auth_error": shard_auth_error,
            "shard_service_auth_error": shard_service_auth_error,
            "shard_service_auth_note": shard_service_auth_note,
            "shard_report_html": shard_report_html,
        }
