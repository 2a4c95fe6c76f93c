# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""The embedded cloud's service processes: the rules its module and ./shard cloud share.

A service is an entry of the cloud's manifest (cloud.json): name, command (a
list), pidfile, log, environment, host, port, probe URL, fingerprint. The
shard_embedded_cloud module starts, checks and stops them; ./shard cloud up
restarts the ones that died with the same code (shard_jobs.rules.cloud_services).

Standard library only, but for PyMySQL, imported where it is used: the module
runs with a node's plain python3 until the services' virtualenv exists.
"""

import json
import signal
import urllib.error
import urllib.request

from ansible.module_utils.shard_processes import (
    log_tail,
    read_record,
    start,
    stop_recorded,
    wait_port_free,
)
from ansible.module_utils.shard_waits import WaitTimeout, wait_until


def http(method, url, body=None, headers=None, timeout=30, data=None):
    """(status, headers, parsed JSON or None); never raises for an HTTP status."""
    headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, hdrs, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        status, hdrs, raw = exc.code, exc.headers, exc.read()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return status, hdrs, parsed


def token(auth):
    """A project-scoped token of the operator (a password in the Default domain)."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": auth["username"],
                        "domain": {"name": "Default"},
                        "password": auth["password"],
                    }
                },
            },
            "scope": {"project": {"name": auth["project"], "domain": {"name": "Default"}}},
        }
    }
    status, headers, _ = http("POST", auth["auth_url"] + "/auth/tokens", body)
    if status != 201:
        raise RuntimeError(f"keystone refused the {auth['username']} credentials (HTTP {status})")
    return headers["X-Subject-Token"]


def find_images(image, tok, name=None):
    """The images named as image["name"], or name (glance's listing)."""
    glance = image["url"].rstrip("/")
    status, _, found = http(
        "GET", f"{glance}/v2/images?name={name or image['name']}", headers={"X-Auth-Token": tok}
    )
    if status != 200:
        raise RuntimeError(f"glance answered HTTP {status} to an image listing")
    return found.get("images", [])


def usable_image(images):
    """The first active image of a find_images() result, or None: what the embedded
    cloud's checks (its module, ./shard cloud up) call "there"."""
    return next((i for i in images if i.get("status") == "active"), None)


def launch(service, timeout=120):
    """Start a service after stopping what runs under its pid record (another
    fingerprint, or not answering) and whatever a killed one left in its process
    group. Returns the new pid; raises shard_processes.StartFailed."""
    stop_recorded(service["pidfile"], signal.SIGTERM, 30)
    if service.get("port"):
        wait_port_free(service["host"], service["port"], 5)
    record = start(
        service["name"],
        service["command"],
        service["pidfile"],
        logfile=service.get("log"),
        environment=service.get("environment") or {},
        port=service.get("port"),
        host=service.get("host", "127.0.0.1"),
        fingerprint=service["fingerprint"],
        start_timeout=timeout,
    )
    return record["pid"]


class _Exited(Exception):
    """A service exited while its API was awaited: ends the wait at once."""


def wait_for_apis(services, timeout):
    """Wait until each service's probe URL answers below 400; None, or one line why not.

    A service that exits meanwhile fails at once, with the end of its log.
    """
    pending = list(services)

    def all_answer():
        for service in list(pending):
            if service.get("pidfile") and read_record(service["pidfile"]) is None:
                tail = log_tail(service.get("log"), lines=1)
                raise _Exited(
                    f"{service['name']} exited while starting: {tail.strip()} "
                    f"(log {service.get('log')})"
                )
            try:
                status, _, _ = http("GET", service["probe"], timeout=5)
            except OSError:
                continue
            if status < 400:
                pending.remove(service)
        return not pending

    def silent():
        names = ", ".join(f"{s['name']} at {s['probe']} (log {s.get('log')})" for s in pending)
        return f"no answer within {timeout}s from {names}"

    try:
        wait_until(all_answer, timeout, on_timeout=silent, interval=0.2)
    except (_Exited, WaitTimeout) as exc:
        return str(exc)
    return None


def check_database(database):
    """Whether the cloud's database user logs in, and the databases it sees.

    {"status": "ok", "databases": [...]}, {"status": "denied"}, or {"status": "unknown"}
    where PyMySQL is not importable (a python without the services' virtualenv) or
    the server answers something else.
    """
    try:
        import pymysql
    except ImportError:
        return {"status": "unknown", "reason": "PyMySQL is not installed yet"}
    try:
        conn = pymysql.connect(
            host=database["host"],
            port=int(database["port"]),
            user=database["user"],
            password=database["password"],
            connect_timeout=5,
        )
    except pymysql.err.OperationalError as exc:
        code = exc.args[0] if exc.args else None
        # 1045: wrong password; 1698: no such user (as MariaDB answers for a
        # user dropped behind the cloud's back).
        denied = code in (1045, 1698)
        return {"status": "denied" if denied else "unknown", "reason": str(exc)}
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES")
            names = sorted(row[0] for row in cur.fetchall())
            # The account's own privileges (information_schema shows a user only
            # its own): database -> sorted privileges, "*" for global ones other
            # than USAGE (which every account has). A data-only account is told
            # from one with more by these, not by its name.
            cur.execute("SELECT '*', privilege_type FROM information_schema.USER_PRIVILEGES")
            rows = [row for row in cur.fetchall() if row[1] != "USAGE"]
            cur.execute(
                "SELECT table_schema, privilege_type FROM information_schema.SCHEMA_PRIVILEGES"
            )
            rows += list(cur.fetchall())
    finally:
        conn.close()
    privileges = {}
    for schema, privilege in rows:
        # MariaDB shows a granted name's "_" escaped ("\_") in SCHEMA_PRIVILEGES.
        privileges.setdefault(schema.replace("\\_", "_"), set()).add(privilege)
    return {
        "status": "ok",
        "databases": names,
        "privileges": {schema: sorted(found) for schema, found in privileges.items()},
    }
