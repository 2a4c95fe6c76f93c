"""./shard cloud up|status|upgrade|down|destroy: the embedded cloud."""

import ast
import hashlib
import json
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from shard_jobs import ansible, cloud_sources, paths, sources
from shard_jobs.rules import cloud_services
from shard_jobs.rules import processes as proc
from shard_jobs.settings import RunError

PLAYBOOK = paths.PLAYBOOKS / "embedded-cloud.yaml"
ROLE = paths.ROLES / "embedded_cloud"
MODULE_UTILS = paths.REPO / "module_utils"
MANIFEST = "cloud.json"
CONVERGED = "converged"
# Role files that do not shape the cloud.
NOT_INPUTS = {"README.rst"}
REPAIR_TIMEOUT = 120


def cloud_vars(followed: dict | None = None) -> dict:
    """Variables the CLI passes to the role.

    followed: what the cloud is to run from a branch, when not what it records (an
    upgrade's target). SHARD_CLOUD_VAR_<NAME>=<YAML> sets embedded_cloud_<name>, e.g.
    SHARD_CLOUD_VAR_PORTS='{keystone: 15000, ...}' or SHARD_CLOUD_VAR_DB_PREFIX=test_.
    """
    if followed is None:
        followed = cloud_sources.load(paths.CLOUD_DIR)
    extra = {
        "embedded_cloud_dir": str(paths.CLOUD_DIR),
        "embedded_cloud_venv": str(paths.CLOUD_VENV),
        # What the cloud follows from a branch (cloud_sources).
        "embedded_cloud_sources": followed,
    }
    for key, value in os.environ.items():
        if key.startswith("SHARD_CLOUD_VAR_"):
            name = "embedded_cloud_" + key[len("SHARD_CLOUD_VAR_") :].lower()
            extra[name] = yaml.safe_load(value) if value else value
    return extra


def _module_utils_imported(path: Path) -> set[Path]:
    """The module_utils/ files a Python file imports (as ansible.module_utils.X)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "ansible.module_utils":
                names.update(alias.name for alias in node.names)
            elif node.module.startswith("ansible.module_utils."):
                names.add(node.module.split(".")[2])
    files = {MODULE_UTILS / f"{name}.py" for name in names}
    return {p for p in files if p.is_file()}


def input_code() -> list[Path]:
    """Code outside the role that shapes the cloud: the modules its tasks name, and the
    shared rules those and its filter plugins import, found by reading them (a list
    kept by hand would miss the next import)."""
    role_files = [p for p in ROLE.rglob("*") if p.is_file()]
    tasks = "\n".join(p.read_text() for p in role_files if p.suffix == ".yaml")
    found = {p for p in paths.LIBRARY.glob("*.py") if re.search(rf"^\s+{p.stem}:", tasks, re.M)}
    todo = list(found) + [p for p in role_files if p.suffix == ".py"]
    while todo:
        for used in _module_utils_imported(todo.pop()) - found:
            found.add(used)
            todo.append(used)
    return sorted(found)


def inputs_fingerprint(extra: dict) -> str:
    """Hash of everything that shapes the cloud: role, playbook, modules, constraints, vars."""
    digest = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    files = [PLAYBOOK, paths.CONSTRAINTS, *input_code()]
    files += sorted(p for p in ROLE.rglob("*") if p.is_file() and p.name not in NOT_INPUTS)
    for path in files:
        digest.update(str(path.relative_to(paths.REPO)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def load_manifest(cloud_dir: Path | None = None) -> dict | None:
    """cloud.json, or None when it is missing or not one the role wrote."""
    try:
        manifest = json.loads(((cloud_dir or paths.CLOUD_DIR) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("services"), list):
        return None
    return manifest


def _probe(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status < 400
    except urllib.error.HTTPError as exc:
        return exc.code < 400
    except OSError:
        return False


def service_states(manifest: dict) -> list[dict]:
    states = []
    for backend in manifest.get("backends", []):
        up = proc.port_open(backend["host"], backend["port"])
        states.append(
            {
                "name": backend["name"],
                "endpoint": f"{backend['host']}:{backend['port']}",
                "pid": None,
                "state": "up" if up else "down",
                "kind": "backend",
            }
        )
    for svc in manifest["services"]:
        record = proc.read_record(svc["pidfile"])
        if record is None:
            state = "down"
        elif svc.get("probe") and not _probe(svc["probe"]):
            state = "unhealthy"
        else:
            state = "up"
        states.append(
            {
                "name": svc["name"],
                "endpoint": svc.get("endpoint") or "-",
                "pid": record["pid"] if record else None,
                "state": state,
                "log": svc.get("log"),
                "kind": "service",
            }
        )
    return states


def process_ids(manifest: dict) -> list[int]:
    """The pids of the cloud's processes on this machine: its services (their
    workers are their children) and whoever listens on its backends' ports
    (MariaDB, RabbitMQ). What is down is left out."""
    pids = []
    for svc in manifest.get("services", []):
        record = proc.read_record(svc["pidfile"])
        if record is not None:
            pids.append(int(record["pid"]))
    for backend in manifest.get("backends", []):
        pid, _cmd = proc.listener(backend["host"], backend["port"])
        if pid:
            pids.append(pid)
    return pids


def status(as_json: bool = False) -> int:
    manifest = load_manifest()
    if manifest is None:
        if as_json:
            print(
                json.dumps({"exists": False, "healthy": False, "state_dir": str(paths.CLOUD_DIR)})
            )
        else:
            print(f"no embedded cloud in {paths.CLOUD_DIR}: run './shard cloud up'")
        return 1
    states = service_states(manifest)
    healthy = all(s["state"] == "up" for s in states)
    if as_json:
        print(
            json.dumps(
                {
                    "exists": True,
                    "healthy": healthy,
                    "cloud": manifest.get("cloud_name"),
                    "clouds_yaml": manifest.get("clouds_yaml"),
                    "secret_file": manifest.get("secret_file"),
                    "state_dir": manifest.get("state_dir", str(paths.CLOUD_DIR)),
                    "venv": manifest.get("venv"),
                    "sources": manifest.get("sources") or {},
                    "services": states,
                },
                indent=2,
            )
        )
    else:
        print(f"{'service':<16} {'state':<10} {'pid':>8}  endpoint")
        for s in states:
            pid = s["pid"] or "-"
            print(f"{s['name']:<16} {s['state']:<10} {pid:>8}  {s['endpoint']}")
        print(f"cloud {manifest.get('cloud_name')} in clouds.yaml {manifest.get('clouds_yaml')}")
        print(f"state directory {manifest.get('state_dir', paths.CLOUD_DIR)}")
        for dist, src in sorted((manifest.get("sources") or {}).items()):
            print(f"{dist} follows {src['repo']} at {src['commit'][:12]} (past {src['version']})")
    return 0 if healthy else 1


def _stamp() -> str | None:
    try:
        return (paths.CLOUD_DIR / CONVERGED).read_text().strip()
    except OSError:
        return None


def is_converged(extra: dict) -> bool:
    """The last `up` succeeded with these inputs, and everything still runs."""
    if _stamp() != inputs_fingerprint(extra):
        return False
    manifest = load_manifest()
    return manifest is not None and all(s["state"] == "up" for s in service_states(manifest))


class RepairBlocked(Exception):
    """Something outside the cloud is in the way: the playbook would fail the same way."""


def _restartable(svc: dict) -> bool:
    return all(key in svc for key in ("name", "pidfile", "command", "fingerprint"))


def repair(manifest: dict, states: list[dict]) -> bool:
    """Restart the processes that died (or stopped answering), without Ansible.

    Only for a cloud whose inputs did not change since its last converge: the
    manifest holds how the role started each process (command, environment, log,
    port, fingerprint; no secrets). Returns whether the whole cloud is up again;
    raises RepairBlocked when another program holds a port of the cloud.
    """
    if any(s["kind"] == "backend" and s["state"] != "up" for s in states):
        return False  # MariaDB or RabbitMQ: the playbook starts those
    state_of = {s["name"]: s["state"] for s in states if s["kind"] == "service"}
    broken = [svc for svc in manifest["services"] if state_of.get(svc.get("name")) != "up"]
    if not all(_restartable(svc) for svc in broken):
        return False
    for svc in broken:
        # Also one running but not answering, and the workers of a killed leader.
        proc.stop_recorded(svc["pidfile"], signal.SIGTERM, 30)
    for svc in broken:
        host, port = svc.get("host", "127.0.0.1"), svc.get("port")
        if port and not proc.wait_port_free(host, port, 5):
            pid, cmd = proc.listener(host, port)
            holder = f" (pid {pid}: {cmd[:100]})" if pid else ""
            raise RepairBlocked(
                f"port {port} on {host} needed by {svc['name']} is already in use by another "
                f"program{holder}"
            )
    for svc in broken:  # in start order: keystone first
        try:
            pid = cloud_services.launch(svc, REPAIR_TIMEOUT)
        except proc.StartFailed as exc:
            sys.stderr.write(f"cloud up: restarting {svc['name']} failed: {exc}\n")
            return False
        print(f"cloud up: restarted {svc['name']} (pid {pid})", flush=True)
    error = cloud_services.wait_for_apis([s for s in broken if s.get("probe")], REPAIR_TIMEOUT)
    if error:
        sys.stderr.write(f"cloud up: {error}\n")
        return False
    return all(s["state"] == "up" for s in service_states(manifest))


def _database_problem(manifest: dict) -> str | None:
    """Why the cloud's databases are not as its last converge left them: MariaDB refuses
    a stored password (the services' or the glance shards' account), or databases are
    missing (dropped behind the state directory's back). The services' pooled
    connections hide both until they reconnect; restarting them would not help. None
    when all is well or when it cannot tell."""
    database = manifest.get("database")
    try:
        secrets = yaml.safe_load((paths.CLOUD_DIR / "secrets.yaml").read_text())
        spec = dict(database, password=secrets["db"])
    except (OSError, ValueError, TypeError, KeyError, yaml.YAMLError):
        return None
    try:
        found = cloud_services.check_database(spec)
    except Exception:  # a check that cannot run decides nothing
        return None
    if found["status"] == "denied":
        return "MariaDB refuses the stored password"
    missing = sorted(set(database.get("names") or []) - set(found.get("databases") or []))
    if found["status"] == "ok" and missing:
        return f"databases missing: {', '.join(missing)}"
    # The glance shards' data-only account: the handout's database URL is its.
    user = database.get("glance_shard_user")
    if user and secrets.get("glance_db"):
        try:
            shard_account = cloud_services.check_database(
                dict(spec, user=user, password=secrets["glance_db"])
            )
        except Exception:
            return None
        if shard_account["status"] == "denied":
            return "MariaDB refuses the glance shards' account"
    return None


def _canary_problem(manifest: dict) -> str | None:
    """Why the cloud's canary image is not as its converge left it: it is missing (a
    test, or a change under test, deleted it); the converge makes it again. None when
    it is there or when it cannot tell."""
    name = manifest.get("canary_image")
    endpoints = {s["name"]: s.get("endpoint") for s in manifest.get("services") or []}
    if not name or not endpoints.get("keystone") or not endpoints.get("glance"):
        return None
    try:
        secrets = yaml.safe_load((paths.CLOUD_DIR / "secrets.yaml").read_text())
        auth = {
            "auth_url": endpoints["keystone"] + "/v3",
            "username": "admin",
            "password": secrets["admin"],
            "project": "admin",
        }
        found = cloud_services.find_images(
            {"url": endpoints["glance"], "name": name}, cloud_services.token(auth)
        )
    except Exception:  # a check that cannot run decides nothing
        return None
    if cloud_services.usable_image(found) is not None:
        return None
    return f"the canary image {name} is missing"


def up(source_items: list[str] | None = None) -> int:
    start = time.monotonic()
    try:
        cloud_sources.up_sources(paths.CLOUD_DIR, source_items or [], load_manifest() is not None)
        extra = cloud_vars()
    except RunError as exc:
        sys.stderr.write(f"cloud up: {exc}\n")
        return 2
    fingerprint = inputs_fingerprint(extra)
    manifest = load_manifest()
    if manifest is not None and _stamp() == fingerprint:
        states = service_states(manifest)
        n = len(manifest["services"])
        problem = _database_problem(manifest)
        if not problem and all(s["state"] == "up" for s in states):
            problem = _canary_problem(manifest)
        if problem:
            print(f"cloud up: {problem}; converging", flush=True)
        elif all(s["state"] == "up" for s in states):
            elapsed = time.monotonic() - start
            print(f"cloud up: {n} services running, nothing to change ({elapsed:.1f}s)")
            return 0
        else:
            try:
                repaired = repair(manifest, states)
            except RepairBlocked as exc:
                sys.stderr.write(f"cloud up: {exc}\n")
                return 1
            if repaired:
                elapsed = time.monotonic() - start
                print(f"cloud up: {n} services running again ({elapsed:.1f}s)")
                return 0
            print("cloud up: restarting was not enough; converging the whole cloud", flush=True)
    (paths.CLOUD_DIR / CONVERGED).unlink(missing_ok=True)
    rc = _run("up", extra)
    if rc == 0:
        (paths.CLOUD_DIR / CONVERGED).write_text(fingerprint + "\n")
        print(
            f"cloud up: ready in {time.monotonic() - start:.1f}s; './shard cloud status' lists it"
        )
    return rc


def upgrade(to_items: list[str]) -> int:
    """Move a running cloud forward in place to other commits: the role's `up` with the
    new sources installs them beside the running ones, migrates the databases (glance's
    expanded), restarts the control plane, then the ordinary compute, then runs nova's
    online data migrations and glance's contraction."""
    start = time.monotonic()
    if load_manifest() is None:
        sys.stderr.write("cloud upgrade: no cloud to upgrade: './shard cloud up' first\n")
        return 2
    try:
        before = cloud_sources.load(paths.CLOUD_DIR)
        releases = {d: sources.pinned_version(d) for d in cloud_sources.PROJECTS.values()}
        after = cloud_sources.upgrade_sources(paths.CLOUD_DIR, to_items, releases)
    except RunError as exc:
        sys.stderr.write(f"cloud upgrade: {exc}\n")
        return 2
    moves = []
    for dist, new in sorted(after.items()):
        if before.get(dist) != new:
            was = before[dist]["commit"][:12] if dist in before else releases[dist]
            moves.append(f"{dist} {was} -> {new['commit'][:12]}")
    if not moves:
        print("cloud upgrade: the cloud runs these commits already")
        return up()
    print(f"cloud upgrade: {', '.join(moves)}", flush=True)
    (paths.CLOUD_DIR / CONVERGED).unlink(missing_ok=True)
    extra = cloud_vars(after)
    rc = _run("up", extra, "upgrade")
    if rc != 0:
        # The failure's own line is on standard error; this says what is left.
        print(
            "cloud upgrade: failed; the cloud still records what it ran before: 'cloud up' "
            "brings its services back to that (not once glance's contraction has started: "
            "then only 'cloud upgrade' again), 'cloud upgrade' again retries"
        )
        return rc
    # Recorded once the cloud runs it: until then `up` keeps to what it ran.
    cloud_sources.save(paths.CLOUD_DIR, after)
    (paths.CLOUD_DIR / CONVERGED).write_text(inputs_fingerprint(extra) + "\n")
    print(f"cloud upgrade: done in {time.monotonic() - start:.1f}s")
    return 0


def down() -> int:
    """Stop every process, keep the data. The converged stamp stays: the next `up`
    only starts the processes again when nothing else changed."""
    if not paths.CLOUD_DIR.exists():
        print("cloud down: nothing to stop")
        return 0
    try:
        extra = cloud_vars()
    except RunError as exc:
        sys.stderr.write(f"cloud down: {exc}\n")
        return 2
    return _run("down", extra)


def destroy() -> int:
    # What the cloud followed does not matter to its removal: a broken record neither.
    return _run("destroy", cloud_vars(followed={}))


def _run(state: str, extra: dict, command: str = "") -> int:
    command = command or state
    log = paths.CLOUD_LOG_DIR / f"cloud-{command}.log"
    rc = ansible.playbook(
        PLAYBOOK,
        dict(extra, embedded_cloud_state=state),
        progress_prefix=f"cloud {command}: ",
        log_path=log,
    )
    return rc
