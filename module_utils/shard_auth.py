# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""How a clouds.yaml entry's ``auth`` becomes a service's keystoneauth options,
and which account the service under test gets.

The jobs' account may be a user with a password (``auth_type`` absent,
``password`` or ``v3password``) or an application credential
(``auth_type: v3applicationcredential``). openstacksdk reads either from the
clouds.yaml entry as it is; a service under test (nova-compute's [placement],
[neutron] and [service_user], glance-api's [keystone_authtoken]) needs the
plugin's name and exactly the options that plugin takes: keystoneauth refuses
an option its plugin does not know (a password next to an application
credential, say). This is the one place that says which keys belong to which
plugin.

The credentials may hold two accounts: ``cloud``, the job's own (admin: its
tasks create flavors and aggregates, and teardown and the janitor delete
compute services, providers and traits), and ``service_auth``, optional, the
account of the service under test (the ``service`` role, no admin): the
keystoneauth options of its configuration section, ``auth_type`` among them
as in such a section (absent: password). With ``service_auth`` the service's
configuration never holds the job's account; without it, the service runs with
``cloud``, as before the split (service_account(), the one rule).

Used by Jinja (the shard role's ``shard_service_auth`` filter) and by the
tests. Standard library only, no import of another module_utils file.
"""

# The plugins a service's configuration may name (keystoneauth's loader names),
# by the clouds.yaml auth_type that selects them.
PLUGINS = {
    "password": "password",
    "v3password": "password",
    "v3applicationcredential": "v3applicationcredential",
}
# The options each plugin takes, in the order a configuration lists them.
PLUGIN_KEYS = {
    "password": (
        "auth_url",
        "username",
        "user_id",
        "password",
        "project_name",
        "project_id",
        "user_domain_name",
        "user_domain_id",
        "project_domain_name",
        "project_domain_id",
    ),
    # An application credential is scoped to its project already: no project
    # keys. Its name (instead of its id) needs the user it belongs to.
    "v3applicationcredential": (
        "auth_url",
        "application_credential_id",
        "application_credential_name",
        "application_credential_secret",
        "username",
        "user_id",
        "user_domain_name",
        "user_domain_id",
    ),
}
# What each plugin cannot do without.
REQUIRED = {
    "password": (("auth_url",), ("password",), ("username", "user_id")),
    "v3applicationcredential": (
        ("auth_url",),
        ("application_credential_secret",),
        ("application_credential_id", "application_credential_name"),
    ),
}


def plugin_for(cloud):
    """The keystoneauth plugin of a clouds.yaml entry; ValueError for one the jobs do
    not support."""
    auth_type = (cloud or {}).get("auth_type") or "password"
    try:
        return PLUGINS[auth_type]
    except KeyError:
        raise ValueError(
            f"auth_type {auth_type!r} is not supported: use password or v3applicationcredential"
        ) from None


def auth_error(cloud, where="cloud.auth"):
    """Why the entry's auth cannot work with its plugin, or '' when it can (where: how
    the message names the auth)."""
    try:
        plugin = plugin_for(cloud)
    except ValueError as exc:
        return str(exc)
    auth = (cloud or {}).get("auth") or {}
    missing = [" or ".join(keys) for keys in REQUIRED[plugin] if not any(auth.get(k) for k in keys)]
    if missing:
        return f"{where} for auth_type {plugin} lacks {', '.join(missing)}"
    return ""


def service_auth(cloud):
    """[(option, value)] of a service's keystoneauth section: auth_type first, then the
    plugin's options that the entry's auth holds (never another plugin's)."""
    plugin = plugin_for(cloud)
    auth = (cloud or {}).get("auth") or {}
    options = [("auth_type", plugin)]
    options += [(key, auth[key]) for key in PLUGIN_KEYS[plugin] if auth.get(key) not in (None, "")]
    return options


def _service_entry(options):
    """service_auth (flat keystoneauth options) as a clouds.yaml entry's auth_type and auth."""
    return {
        "auth_type": options.get("auth_type"),
        "auth": {k: v for k, v in options.items() if k != "auth_type"},
    }


def service_account(credentials):
    """The clouds.yaml-like entry (auth_type, auth) the service under test runs with:
    the credentials' service_auth when they hold one, else their cloud (the job's
    own account)."""
    credentials = credentials or {}
    if credentials.get("service_auth"):
        return _service_entry(credentials["service_auth"])
    return credentials.get("cloud") or {}


def service_account_error(credentials):
    """Why the credentials' service_auth cannot work, or '' when it can or is absent.
    Names keys only, never values."""
    options = (credentials or {}).get("service_auth")
    if options in (None, {}, ""):
        return ""
    if not isinstance(options, dict):
        return "service_auth must be a mapping of keystoneauth options (auth_url, username, ...)"
    try:
        plugin_for(_service_entry(options))
    except ValueError as exc:
        return f"service_auth: {exc}"
    return auth_error(_service_entry(options), where="service_auth")


def service_account_note(credentials):
    """One line: which account the service under test runs with."""
    if (credentials or {}).get("service_auth"):
        return (
            "the service under test runs with the credentials' service_auth, not the job's account"
        )
    return (
        "the service under test runs with the job's own account (cloud, admin): "
        "the credentials have no service_auth"
    )


def service_options(credentials):
    """[(option, value)] of the service's keystoneauth sections: service_auth() of the
    account service_account() chooses."""
    return service_auth(service_account(credentials))
