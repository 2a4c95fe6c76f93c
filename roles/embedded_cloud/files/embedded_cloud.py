# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""The embedded cloud's helper on the target host: the cheap work of many tasks in one run.

Every Ansible module run costs a Python start and ~0.5 s here; the role calls this
script for the work that needs no module of its own. It runs with the services'
virtualenv once that exists (PyMySQL and py-amqp then check the backends), with any
python3 before (standard library only):

  converge  preflight (ports, MariaDB, RabbitMQ), then the state directory: its
            directories and every rendered file in one pass, and what is already done
            (stamps, virtualenv, which processes run with which fingerprint).
  start     start (or restart) processes, as the shard_process module does, in one run.
  verify    wait until the APIs answer, check them with a token, ensure the image.
  stop      stop every process of the cloud at once, with its workers, and check that
            no port is left listening.

It reads a JSON request on standard input (it may hold passwords: never argv) and
prints one JSON object. Problems come back as {"error": "one line"} with exit status
0, so that the role reports them with a task of its own (the calling task is no_log).

The pid-file logic is module_utils/shard_processes.py's, the same the shard_process
module and ./shard use: its source comes in the request (key "process_module").
"""

import base64
import contextlib
import hashlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
import types
import urllib.error
import urllib.request


def load_process_module(source, filename="shard_processes.py"):
    """module_utils/shard_processes.py (standard library only) as a module.

    This script runs with a node's python3 as `python -c`, where no import path
    leads to module_utils/ (Ansible ships module_utils only with modules): the
    role passes the module's source in the request. Kept as the one exception to
    "no code loaded as text" until this helper becomes a module of its own.
    """
    module = types.ModuleType("shard_processes")
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102
    return module


# ------------------------------------------------------------------ processes


def running_state(proc, spec):
    """(pid, fingerprint) of the process of spec when it runs, else (None, None)."""
    record = proc.read_record(spec["pidfile"])
    if record is None:
        return None, None
    return record["pid"], record.get("fingerprint")


def stop_all(proc, specs, timeout):
    """Stop the processes of specs in parallel; returns the names stopped, and leftovers."""
    stopped = []
    threads = []
    for spec in specs:
        record = proc.read_record(spec["pidfile"])
        if record is not None:
            stopped.append(spec["name"])
            t = threading.Thread(target=proc.stop, args=(record, signal.SIGTERM, timeout))
            t.start()
            threads.append(t)
    for t in threads:
        t.join()
    for spec in specs:
        if proc.kill_orphans(proc.raw_record(spec["pidfile"])) and spec["name"] not in stopped:
            stopped.append(spec["name"])
        proc.remove_record(spec["pidfile"])
    listening = []
    for spec in specs:
        if spec.get("port") and not proc.wait_port_free(spec["host"], spec["port"], 5):
            pid, cmd = proc.listener(spec["host"], spec["port"])
            holder = f"pid {pid}: {cmd[:100]}" if pid else "unknown program"
            listening.append(f"{spec['name']} port {spec['port']} ({holder})")
    return stopped, listening


def launch(proc, spec, timeout=120):
    """Start the process of spec (a manifest entry) as the shard_process module would,
    after stopping a running one (another fingerprint, or not answering) and whatever
    a killed one left in its process group. Returns the new pid; raises
    proc.StartFailed."""
    proc.stop_recorded(spec["pidfile"], signal.SIGTERM, 30)
    if spec.get("port"):
        proc.wait_port_free(spec["host"], spec["port"], 5)
    record = proc.start(
        spec["name"],
        spec["command"],
        spec["pidfile"],
        logfile=spec.get("log"),
        environment=spec.get("environment") or {},
        port=spec.get("port"),
        host=spec.get("host", "127.0.0.1"),
        fingerprint=spec["fingerprint"],
        start_timeout=timeout,
    )
    return record["pid"]


# ------------------------------------------------------------------ files


def _write(path, data, mode):
    """Write data (bytes) atomically; True when the file changed (content or mode)."""
    try:
        with open(path, "rb") as f:
            same = f.read() == data
    except FileNotFoundError:
        same = False
    if same:
        if (os.stat(path).st_mode & 0o7777) == mode:
            return False
        os.chmod(path, mode)
        return True
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


def process_specs(req):
    """The role's process list, with the paths, URLs and command list of each."""
    host = req["host"]
    specs = []
    for p in req["processes"]:
        spec = {
            "name": p["name"],
            "pidfile": f"{req['run_dir']}/{p['name']}.pid",
            "log": f"{req['log_dir']}/{p['name']}.log",
            "host": host,
            # As the role's `split` filter splits it for shard_process.
            "command": p["command"].split(),
            "environment": {k: str(v) for k, v in (p.get("environment") or {}).items()},
            "inputs": [f"{req['etc_dir']}/{name}" for name in p.get("inputs", [])],
        }
        if p.get("port"):
            spec["port"] = int(p["port"])
            spec["endpoint"] = f"http://{host}:{spec['port']}"
            if p.get("probe"):
                spec["probe"] = spec["endpoint"] + p["probe"]
        specs.append(spec)
    return specs


def fingerprint(spec, contents, salt):
    """A hash of the files a process reads and of the package set: a change restarts it."""
    digest = hashlib.sha1(str(salt).encode())
    for path in spec["inputs"]:
        digest.update(b"\0" + path.encode() + b"\0" + contents[path].encode())
    return digest.hexdigest()


def check_database(spec):
    """Whether the cloud's database user logs in, and the databases it sees.

    {"status": "ok", "databases": [...]}, {"status": "denied"}, or {"status": "unknown"}
    where PyMySQL is not importable (the helper runs with the services' virtualenv
    once it exists) or the server answers something else.
    """
    try:
        import pymysql
    except ImportError:
        return {"status": "unknown", "reason": "PyMySQL is not installed yet"}
    try:
        conn = pymysql.connect(
            host=spec["host"],
            port=int(spec["port"]),
            user=spec["user"],
            password=spec["password"],
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
    finally:
        conn.close()
    return {"status": "ok", "databases": names}


def check_message_bus(spec):
    """Whether the cloud's RabbitMQ user logs in to its vhost (same statuses)."""
    try:
        import amqp
    except ImportError:
        return {"status": "unknown", "reason": "py-amqp is not installed yet"}
    conn = amqp.Connection(
        host=f"{spec['host']}:{spec['port']}",
        userid=spec["user"],
        password=spec["password"],
        virtual_host=spec["vhost"],
        connect_timeout=5,
    )
    try:
        conn.connect()
    except (amqp.exceptions.AccessRefused, amqp.exceptions.NotAllowed) as exc:
        return {"status": "denied", "reason": str(exc)}
    except Exception as exc:  # anything else: the modules find out
        return {"status": "unknown", "reason": str(exc)}
    finally:
        with contextlib.suppress(Exception):
            conn.collect()
    return {"status": "ok"}


def check_cloud(proc, req):
    """With every process running as wanted: do the APIs answer a token, is the image there?"""
    try:
        tok = token(req["auth"])
        for url in req.get("check", []):
            status, _, _ = http("GET", url, headers={"X-Auth-Token": tok})
            if status >= 400:
                return {"status": "failed", "reason": f"GET {url} answered HTTP {status}"}
        glance = req["image"]["url"].rstrip("/")
        status, _, found = http(
            "GET", f"{glance}/v2/images?name={req['image']['name']}", headers={"X-Auth-Token": tok}
        )
    except (RuntimeError, OSError) as exc:
        return {"status": "failed", "reason": str(exc)}
    if status != 200 or not any(i.get("status") == "active" for i in found.get("images", [])):
        return {"status": "failed", "reason": "the image is missing"}
    return {"status": "ok"}


def create_key_repository(path):
    """A keystone fernet (or credential) key repository as `keystone-manage fernet_setup`
    leaves it: key 0 staged, key 1 primary, each a Fernet key (base64 of 32 random
    bytes). Done here it saves two keystone-manage runs (~3 CPU-seconds each)."""
    if os.path.isdir(path) and any(name.isdigit() for name in os.listdir(path)):
        return False
    os.makedirs(path, mode=0o700, exist_ok=True)
    for index in ("0", "1"):
        _write(os.path.join(path, index), base64.urlsafe_b64encode(os.urandom(32)), 0o600)
    return True


def converge(req):
    proc = load_process_module(req["process_module"])
    specs = process_specs(req)
    out = {"changed": False, "written": [], "error": None}

    # Preflight, before anything is created or changed.
    conflicts = []
    for spec in specs:
        pid, _ = running_state(proc, spec)
        if pid is None and proc.kill_orphans(proc.raw_record(spec["pidfile"])) and spec.get("port"):
            # The workers of a killed leader: ours, not another program.
            proc.wait_port_free(spec["host"], spec["port"], 5)
        if pid is None and spec.get("port") and proc.port_in_use(spec["host"], spec["port"]):
            holder_pid, cmd = proc.listener(spec["host"], spec["port"])
            holder = f" (pid {holder_pid}: {cmd[:100]})" if holder_pid else ""
            conflicts.append(
                f"port {spec['port']} on {spec['host']} needed by {spec['name']} is already "
                f"in use by another program{holder}"
            )
    if conflicts:
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        return dict(out, error=conflicts[0] + more)
    unreachable = []
    for backend in req["backends"]:
        if not proc.port_open(backend["host"], int(backend["port"])):
            if not backend["manage"]:
                return dict(
                    out,
                    error=f"{backend['label']} at {backend['host']}:{backend['port']} is "
                    f"unreachable (nothing answers there); {backend['hint']}",
                )
            unreachable.append(backend["name"])
    out["unreachable"] = unreachable

    # The state directory, then the manifest with what restarts each process.
    files = req["files"]
    for spec in specs:
        spec["fingerprint"] = fingerprint(spec, files, req.get("fingerprint_salt", ""))
    manifest = dict(req["manifest"]["data"])
    manifest["services"] = [{k: v for k, v in spec.items() if k != "inputs"} for spec in specs]
    files = dict(files)
    files[req["manifest"]["path"]] = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    old_umask = os.umask(0o077)
    try:
        for path in req["directories"]:
            if not os.path.isdir(path):
                os.makedirs(path, mode=0o700, exist_ok=True)
                out["written"].append(path + "/")
        for path, content in files.items():
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            if _write(path, content.encode(), 0o600):
                out["written"].append(path)
        for path, size in req.get("zero_files", {}).items():
            if not os.path.exists(path):
                _write(path, b"\0" * size, 0o600)
                out["written"].append(path)
        for path in req.get("key_repositories", []):
            if create_key_repository(path):
                out["written"].append(path + "/")
    finally:
        os.umask(old_umask)
    out["changed"] = bool(out["written"])

    # What is already done.
    stamps = req.get("stamps_dir")
    out["stamps"] = sorted(os.listdir(stamps)) if stamps and os.path.isdir(stamps) else []
    out["exists"] = {p: os.path.exists(p) for p in req.get("exists", [])}
    out["processes"] = {}
    for spec in specs:
        pid, recorded = running_state(proc, spec)
        out["processes"][spec["name"]] = {
            "pid": pid,
            "fingerprint": spec["fingerprint"],
            "current": pid is not None and recorded == spec["fingerprint"],
        }
    reachable = not unreachable
    unknown = {"status": "unknown", "reason": "not reachable yet"}
    out["database"] = check_database(req["database"]) if reachable else unknown
    out["message_bus"] = check_message_bus(req["message_bus"]) if reachable else unknown
    # Only when nothing is to be started: the final check is then not needed.
    if all(p["current"] for p in out["processes"].values()) and req.get("auth"):
        out["cloud"] = check_cloud(proc, req)
    else:
        out["cloud"] = {"status": "unknown", "reason": "processes to start"}
    return out


# ------------------------------------------------------------------ HTTP


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


def wait_for_apis(proc, specs, timeout):
    """Wait until each spec's probe URL answers below 400; None, or one line why not.

    A process that exits meanwhile fails at once, with the end of its log.
    """
    deadline = time.monotonic() + timeout
    pending = list(specs)
    while pending:
        for spec in list(pending):
            if spec.get("pidfile") and proc.read_record(spec["pidfile"]) is None:
                tail = proc.log_tail(spec.get("log"), lines=1)
                return (
                    f"{spec['name']} exited while starting: {tail.strip()} (log {spec.get('log')})"
                )
            try:
                status, _, _ = http("GET", spec["probe"], timeout=5)
            except OSError:
                continue
            if status < 400:
                pending.remove(spec)
        if not pending:
            break
        if time.monotonic() >= deadline:
            names = ", ".join(f"{s['name']} at {s['probe']} (log {s.get('log')})" for s in pending)
            return f"no answer within {timeout}s from {names}"
        time.sleep(0.2)
    return None


def token(auth):
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


def ensure_image(spec, tok):
    """(image id, created?) of the tiny public raw image."""
    glance = spec["url"].rstrip("/")
    auth = {"X-Auth-Token": tok}
    status, _, found = http("GET", f"{glance}/v2/images?name={spec['name']}", headers=auth)
    if status != 200:
        raise RuntimeError(f"glance answered HTTP {status} to an image listing")
    images = found.get("images", [])
    active = [i for i in images if i.get("status") == "active"]
    if active:
        return active[0]["id"], False
    image = next((i for i in images if i.get("status") == "queued"), None)
    if image is None:
        body = {
            "name": spec["name"],
            "disk_format": "raw",
            "container_format": "bare",
            "visibility": "public",
        }
        status, _, image = http("POST", f"{glance}/v2/images", body, headers=auth)
        if status != 201:
            raise RuntimeError(f"glance answered HTTP {status} to creating the image")
    with open(spec["file"], "rb") as f:
        data = f.read()
    headers = dict(auth, **{"Content-Type": "application/octet-stream"})
    status, _, _ = http("PUT", f"{glance}/v2/images/{image['id']}/file", headers=headers, data=data)
    if status >= 300:
        raise RuntimeError(f"glance answered HTTP {status} to the image upload")
    return image["id"], True


def verify(req):
    proc = load_process_module(req["process_module"])
    out = {"changed": False, "error": None, "created": []}
    wanted = set(req.get("wait", []))
    waiting = [s for s in process_specs(req) if s["name"] in wanted and s.get("probe")]
    out["error"] = wait_for_apis(proc, waiting, req.get("timeout", 180))
    if out["error"] or not req.get("auth"):
        return out
    try:
        tok = token(req["auth"])
        for url in req.get("check", []):
            status, _, _ = http("GET", url, headers={"X-Auth-Token": tok})
            if status >= 400:
                raise RuntimeError(f"GET {url} answered HTTP {status}")
        if req.get("image"):
            out["image_id"], created = ensure_image(req["image"], tok)
            if created:
                out["created"].append(f"image:{req['image']['name']}")
    except (RuntimeError, OSError) as exc:
        out["error"] = str(exc)
        return out
    for path in req.get("touch", []):
        with open(path, "a"):
            pass
    out["changed"] = bool(out["created"])
    return out


def start(req):
    """Start the processes named in req["start"] (in the role's order) that do not run
    with their current fingerprint; one module run instead of one per process."""
    proc = load_process_module(req["process_module"])
    out = {"changed": False, "started": [], "error": None}
    todo = []
    for spec in process_specs(req):
        if spec["name"] not in req["start"]:
            continue
        spec["fingerprint"] = req["found"][spec["name"]]["fingerprint"]
        record = proc.read_record(spec["pidfile"])
        if record is None or record.get("fingerprint") != spec["fingerprint"]:
            todo.append(spec)
    # Those running with another configuration stop at once (a graceful stop takes
    # seconds: nova's services wait for their RPC servers), then start in order.
    stop_all(proc, [s for s in todo if proc.read_record(s["pidfile"])], 30)
    for spec in todo:
        try:
            pid = launch(proc, spec)
        except proc.StartFailed as exc:
            out["error"] = str(exc)
            break
        out["started"].append({"name": spec["name"], "pid": pid})
    out["changed"] = bool(out["started"])
    return out


def stop(req):
    proc = load_process_module(req["process_module"])
    specs = process_specs(req)[::-1]
    stopped, listening = stop_all(proc, specs, req.get("timeout", 30))
    out = {"changed": bool(stopped), "stopped": stopped, "error": None}
    if listening:
        out["error"] = "still listening after stop: " + "; ".join(listening)
    return out


def main():
    mode = sys.argv[1]
    req = json.load(sys.stdin)
    handler = {"converge": converge, "start": start, "verify": verify, "stop": stop}[mode]
    try:
        out = handler(req)
    except Exception as exc:  # one line for the role to show, not a traceback
        out = {"changed": False, "error": f"{type(exc).__name__}: {exc}"}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
