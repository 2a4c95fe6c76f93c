"""./shard cloud up|status|down|destroy: the embedded cloud."""

import hashlib
import importlib.util
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from shard_jobs import ansible, paths

PLAYBOOK = paths.PLAYBOOKS / "embedded-cloud.yaml"
ROLE = paths.ROLES / "embedded_cloud"
MANIFEST = "cloud.json"
CONVERGED = "converged"


def _process_module():
    """library/shard_process.py: the pid-file logic the playbook itself uses."""
    spec = importlib.util.spec_from_file_location(
        "shard_process", paths.LIBRARY / "shard_process.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cloud_vars() -> dict:
    """Variables the CLI passes to the role.

    SHARD_CLOUD_VAR_<NAME>=<YAML> sets embedded_cloud_<name>, e.g.
    SHARD_CLOUD_VAR_PORTS='{keystone: 15000, ...}' or SHARD_CLOUD_VAR_DB_PREFIX=test_.
    """
    extra = {
        "embedded_cloud_dir": str(paths.CLOUD_DIR),
        "embedded_cloud_venv": str(paths.CLOUD_VENV),
    }
    for key, value in os.environ.items():
        if key.startswith("SHARD_CLOUD_VAR_"):
            name = "embedded_cloud_" + key[len("SHARD_CLOUD_VAR_") :].lower()
            extra[name] = yaml.safe_load(value) if value else value
    return extra


def inputs_fingerprint(extra: dict) -> str:
    """Hash of everything that shapes the cloud: role, playbook, module, constraints, vars."""
    digest = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    files = [PLAYBOOK, paths.CONSTRAINTS, paths.LIBRARY / "shard_process.py"]
    files += sorted(p for p in ROLE.rglob("*") if p.is_file())
    for path in files:
        digest.update(str(path.relative_to(paths.REPO)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def load_manifest(cloud_dir: Path = paths.CLOUD_DIR) -> dict | None:
    try:
        return json.loads((cloud_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _probe(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status < 400
    except urllib.error.HTTPError as exc:
        return exc.code < 400
    except OSError:
        return False


def _port_open(host: str, port: int) -> bool:
    return _process_module().port_open(host, port)


def service_states(manifest: dict) -> list[dict]:
    proc = _process_module()
    states = []
    for backend in manifest.get("backends", []):
        up = _port_open(backend["host"], backend["port"])
        states.append(
            {
                "name": backend["name"],
                "endpoint": f"{backend['host']}:{backend['port']}",
                "pid": None,
                "state": "up" if up else "down",
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
            }
        )
    return states


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
                    "cloud": manifest["cloud_name"],
                    "clouds_yaml": manifest["clouds_yaml"],
                    "secret_file": manifest["secret_file"],
                    "state_dir": manifest["state_dir"],
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
        print(f"cloud {manifest['cloud_name']} in clouds.yaml {manifest['clouds_yaml']}")
        print(f"state directory {manifest['state_dir']}")
    return 0 if healthy else 1


def is_converged(extra: dict) -> bool:
    """The last `up` succeeded with these inputs, and everything still runs."""
    try:
        stamp = (paths.CLOUD_DIR / CONVERGED).read_text().strip()
    except OSError:
        return False
    if stamp != inputs_fingerprint(extra):
        return False
    manifest = load_manifest()
    return manifest is not None and all(s["state"] == "up" for s in service_states(manifest))


def up() -> int:
    start = time.monotonic()
    extra = cloud_vars()
    if is_converged(extra):
        n = len(load_manifest()["services"])
        print(
            f"cloud up: {n} services running, nothing to change ({time.monotonic() - start:.1f}s)"
        )
        return 0
    (paths.CLOUD_DIR / CONVERGED).unlink(missing_ok=True)
    rc = _run("up", extra)
    if rc == 0:
        (paths.CLOUD_DIR / CONVERGED).write_text(inputs_fingerprint(extra) + "\n")
        print(
            f"cloud up: ready in {time.monotonic() - start:.1f}s; './shard cloud status' lists it"
        )
    return rc


def down() -> int:
    if not paths.CLOUD_DIR.exists():
        print("cloud down: nothing to stop")
        return 0
    (paths.CLOUD_DIR / CONVERGED).unlink(missing_ok=True)
    return _run("down", cloud_vars())


def destroy() -> int:
    return _run("destroy", cloud_vars())


def _run(state: str, extra: dict) -> int:
    log = paths.HOME / "logs" / f"cloud-{state}.log"
    rc = ansible.playbook(
        PLAYBOOK,
        dict(extra, embedded_cloud_state=state),
        progress_prefix=f"cloud {state}: ",
        log_path=log,
    )
    return rc
