# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: the embedded cloud's work on its host, one call per step of the role.

In library/ with the other modules, not in the role's own library/: it imports
module_utils/ (shard_processes, shard_cloud_services), which Ansible finds only
next to the playbooks (playbooks/module_utils) or through ANSIBLE_MODULE_UTILS,
as for every module here; and the lint and unit tiers check every library/ module.
"""

DOCUMENTATION = r"""
---
module: shard_embedded_cloud
short_description: Write, start, check and stop the embedded cloud on its host, a step per call
description:
  - The host-side work of the C(embedded_cloud) role. Every module run costs a
    Python start (about 0.5 s on a small machine), so each step does the work of
    many tasks in one run.
  - C(inspect) reads the stored passwords and finds the python the other steps
    run with (the services' virtualenv, whose PyMySQL and py-amqp check the
    backends, once it exists).
  - C(converge) checks the ports and backends before anything is created or
    changed, writes the state directory (its directories, every rendered file,
    keystone's key repositories, the manifest) in one pass, and reports what is
    already in place (stamps, which processes run with which fingerprint, the
    database and message-bus logins, the APIs and the image).
  - C(start) starts the named processes that do not run with their current
    fingerprint, as M(shard_process) would, in one run.
  - C(verify) waits until the APIs answer, checks them with a token and uploads
    the image when it is missing.
  - C(stop) stops every process at once, with its workers, and fails when a
    port is still listening.
  - Standard library only (PyMySQL and py-amqp are used when the python has them),
    so that it runs with a node's plain python3 before the services' virtualenv exists.
options:
  step:
    description: What to do (see the description).
    type: str
    required: true
    choices: [inspect, converge, start, verify, stop]
  secrets_file:
    description: The stored passwords (YAML), returned by C(inspect) when the file exists.
    type: path
  pythons:
    description: Interpreters, in order of preference; C(inspect) returns the first that exists.
    type: list
    elements: path
    default: []
  services:
    description: The cloud's processes and where they keep their files. Required but for C(inspect).
    type: dict
    suboptions:
      host:
        description: Address the APIs listen on.
        type: str
        default: 127.0.0.1
      etc_dir:
        description: Directory of the rendered configuration; I(inputs) are relative to it.
        type: path
        required: true
      run_dir:
        description: Directory of the pid records (C(<name>.pid)).
        type: path
        required: true
      log_dir:
        description: Directory of the logs (C(<name>.log)).
        type: path
        required: true
      processes:
        description: The processes, in start order.
        type: list
        elements: dict
        required: true
        suboptions:
          name:
            description: Process name.
            type: str
            required: true
          command:
            description: Command line, split on white space.
            type: str
            required: true
          environment:
            description: Variables added to its environment.
            type: dict
            default: {}
          port:
            description: TCP port of its API.
            type: int
          probe:
            description: Path on I(port) that answers below 400 once the API is up.
            type: str
          inputs:
            description: Files it reads; a change to one restarts it.
            type: list
            elements: str
            default: []
  api_checks:
    description: How C(converge) and C(verify) check the running cloud.
    type: dict
    suboptions:
      auth:
        description: The operator's credentials (a project-scoped token in the C(Default) domain).
        type: dict
        required: true
        suboptions:
          auth_url:
            description: Keystone's v3 URL.
            type: str
            required: true
          username:
            description: User name.
            type: str
            required: true
          password:
            description: Its password.
            type: str
            required: true
            no_log: true
          project:
            description: Project name.
            type: str
            required: true
      urls:
        description: URLs that must answer the token below 400.
        type: list
        elements: str
        default: []
      compute_services:
        description:
          - nova's C(os-services) URL. C(verify) waits until nova's conductor
            and scheduler report up there (the rule pre-flight checks,
            module_utils/shard_nova_services.py), so that a shard job
            started right after C(./shard cloud up) finds them up.
        type: str
      image:
        description: The public raw image every cloud has.
        type: dict
        required: true
        suboptions:
          url:
            description: Glance's URL.
            type: str
            required: true
          name:
            description: Image name.
            type: str
            required: true
          file:
            description: Its data, uploaded when the image is missing.
            type: path
            required: true
          canary:
            description:
              - The name of the canary image, private to the operator's
                project (the same data), which the cloud hands out to shard
                jobs as one they must not touch; made again when missing.
            type: str
  fingerprint_salt:
    description: Mixed into every fingerprint (the package set), so that a change restarts all.
    type: str
    default: ""
  backends:
    description: MariaDB and RabbitMQ, checked by C(converge) before anything is changed.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name returned in C(unreachable).
        type: str
        required: true
      label:
        description: Name in messages.
        type: str
        required: true
      host:
        description: Address it should answer on.
        type: str
        required: true
      port:
        description: TCP port it should answer on.
        type: int
        required: true
      manage:
        description: Whether the role starts it when it does not answer (else C(converge) fails).
        type: bool
        default: false
      hint:
        description: What to do when it does not answer and is not managed.
        type: str
        default: ""
  directories:
    description: Directories C(converge) creates (mode 0700).
    type: list
    elements: path
    default: []
  files:
    description: Path to content of the files C(converge) writes (mode 0600, when they differ).
    type: dict
    default: {}
  zero_files:
    description: Path to size of files of zeros C(converge) creates when missing.
    type: dict
    default: {}
  manifest:
    description: The manifest C(converge) writes, its I(data) completed with the processes.
    type: dict
    suboptions:
      path:
        description: Where.
        type: path
        required: true
      data:
        description: What ./shard cloud reads (no secrets).
        type: dict
        required: true
  database:
    description: The cloud's database account, whose login C(converge) checks.
    type: dict
    suboptions: &login
      host:
        description: Address.
        type: str
        required: true
      port:
        description: Port.
        type: int
        required: true
      user:
        description: User.
        type: str
        required: true
      password:
        description: Password.
        type: str
        required: true
        no_log: true
  data_account:
    description: >-
      The data-only database account handed to glance shards, whose login C(converge)
      checks too.
    type: dict
    suboptions: *login
  message_bus:
    description: The cloud's RabbitMQ account, whose login to I(vhost) C(converge) checks.
    type: dict
    suboptions:
      <<: *login
      vhost:
        description: Virtual host.
        type: str
        required: true
  stamps_dir:
    description: Directory of the stamps of work done (returned by C(converge)).
    type: path
  key_repositories:
    description: Keystone key repositories (fernet, credential) C(converge) creates when empty.
    type: list
    elements: path
    default: []
  exists:
    description: Paths whose existence C(converge) reports.
    type: list
    elements: path
    default: []
  start:
    description: Names of the processes C(start) starts (in I(services) order).
    type: list
    elements: str
    default: []
  fingerprints:
    description: Name to fingerprint of each process, as C(converge) returned them.
    type: dict
    default: {}
  wait:
    description: Names of the processes whose API C(verify) waits for.
    type: list
    elements: str
    default: []
  touch:
    description: Stamps C(verify) leaves once the cloud answers.
    type: list
    elements: path
    default: []
  timeout:
    description: Seconds C(verify) waits for the APIs (180), or C(stop) before SIGKILL (30).
    type: int
notes:
  - Supports check mode; C(verify) then neither waits nor uploads.
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Read the stored passwords and find the python of the next steps
  shard_embedded_cloud:
    step: inspect
    secrets_file: /srv/cloud/secrets.yaml
    pythons: [/srv/venvs/cloud/bin/python]
  vars:
    ansible_python_interpreter: /usr/bin/python3
  register: inspected
  no_log: true

- name: Stop the cloud
  shard_embedded_cloud:
    step: stop
    services:
      etc_dir: /srv/cloud/etc
      run_dir: /srv/cloud/run
      log_dir: /srv/cloud/log
      processes:
        - name: keystone
          command: /srv/venvs/cloud/bin/gunicorn keystone.wsgi.api:application
          port: 5000
"""

RETURN = r"""
python:
  description: (inspect) The first of I(pythons) that exists, else the python running the module.
  returned: success
  type: str
secrets:
  description: (inspect) The content of I(secrets_file), none when it does not exist.
  returned: success
  type: str
written:
  description: (converge) Directories (ending in C(/)) and files created or changed.
  returned: success
  type: list
  elements: str
unreachable:
  description: (converge) Backends that do not answer and that the role starts.
  returned: success
  type: list
  elements: str
stamps:
  description: (converge) Names in I(stamps_dir).
  returned: success
  type: list
  elements: str
exists:
  description: (converge) Path to whether it exists, for I(exists).
  returned: success
  type: dict
processes:
  description: (converge) Name to C(pid), C(fingerprint), C(current) (runs with that fingerprint).
  returned: success
  type: dict
database:
  description: >-
    (converge) C(status) C(ok) (with C(databases) and C(privileges), database to the
    account's privileges there, C(*) for global ones), C(denied) or C(unknown).
  returned: success
  type: dict
data_account:
  description: (converge) As I(database), for I(data_account); C(unknown) without it.
  returned: success
  type: dict
message_bus:
  description: (converge) C(status) C(ok), C(denied) or C(unknown) (with C(reason)).
  returned: success
  type: dict
cloud:
  description: (converge) C(status) C(ok) when every process runs as wanted, the APIs and image too.
  returned: success
  type: dict
started:
  description: (start) C(name) and C(pid) of each process started.
  returned: success
  type: list
  elements: dict
created:
  description: (verify) What was created, such as C(image:<name>).
  returned: success
  type: list
  elements: str
image_id:
  description: (verify) The image's id.
  returned: success
  type: str
stopped:
  description: (stop) Names of the processes stopped.
  returned: success
  type: list
  elements: str
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
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.shard_cloud_services import (
    check_database,
    find_images,
    http,
    launch,
    token,
    usable_image,
    wait_for_apis,
)
from ansible.module_utils.shard_nova_services import first_down
from ansible.module_utils.shard_processes import (
    StartFailed,
    kill_orphans,
    listener,
    port_in_use,
    port_open,
    raw_record,
    read_record,
    remove_record,
    stop,
    wait_port_free,
)
from ansible.module_utils.shard_waits import wait_until

VERIFY_TIMEOUT = 180
STOP_TIMEOUT = 30


class StepFailed(Exception):
    """A step that cannot go on: one line saying why."""


# ------------------------------------------------------------------ processes


def process_specs(services):
    """The role's process list, with the paths, URLs and command list of each."""
    host = services["host"]
    specs = []
    for p in services["processes"]:
        spec = {
            "name": p["name"],
            "pidfile": f"{services['run_dir']}/{p['name']}.pid",
            "log": f"{services['log_dir']}/{p['name']}.log",
            "host": host,
            # As the role's `split` filter splits it for shard_process.
            "command": p["command"].split(),
            "environment": {k: str(v) for k, v in (p["environment"] or {}).items()},
            "inputs": [f"{services['etc_dir']}/{name}" for name in p["inputs"]],
        }
        if p["port"]:
            spec["port"] = p["port"]
            spec["endpoint"] = f"http://{host}:{p['port']}"
            if p["probe"]:
                spec["probe"] = spec["endpoint"] + p["probe"]
        specs.append(spec)
    return specs


def running_state(spec):
    """(pid, fingerprint) of the process of spec when it runs, else (None, None)."""
    record = read_record(spec["pidfile"])
    if record is None:
        return None, None
    return record["pid"], record.get("fingerprint")


def stop_all(specs, timeout):
    """Stop the processes of specs in parallel; returns the names stopped, and leftovers."""
    stopped = []
    threads = []
    for spec in specs:
        record = read_record(spec["pidfile"])
        if record is not None:
            stopped.append(spec["name"])
            t = threading.Thread(target=stop, args=(record, signal.SIGTERM, timeout))
            t.start()
            threads.append(t)
    for t in threads:
        t.join()
    for spec in specs:
        if kill_orphans(raw_record(spec["pidfile"])) and spec["name"] not in stopped:
            stopped.append(spec["name"])
        remove_record(spec["pidfile"])
    listening = []
    for spec in specs:
        if spec.get("port") and not wait_port_free(spec["host"], spec["port"], 5):
            pid, cmd = listener(spec["host"], spec["port"])
            holder = f"pid {pid}: {cmd[:100]}" if pid else "unknown program"
            listening.append(f"{spec['name']} port {spec['port']} ({holder})")
    return stopped, listening


def fingerprint(spec, contents, salt):
    """A hash of the process's command and environment, the files it reads and the package
    set: a change restarts it (a new command: the programs of another virtualenv, as when
    the cloud moves to another nova commit)."""
    digest = hashlib.sha1(str(salt).encode())
    digest.update(json.dumps([spec["command"], spec["environment"]], sort_keys=True).encode())
    for path in spec["inputs"]:
        digest.update(b"\0" + path.encode() + b"\0" + contents[path].encode())
    return digest.hexdigest()


# ------------------------------------------------------------------ files


def _differs(path, data, mode):
    """Whether writing data (bytes) with mode would change the file."""
    try:
        with open(path, "rb") as f:
            same = f.read() == data
    except FileNotFoundError:
        return True
    return not same or (os.stat(path).st_mode & 0o7777) != mode


def _write(path, data, mode, check_mode=False):
    """Write data (bytes) atomically; True when the file changed (content or mode)."""
    if not _differs(path, data, mode):
        return False
    if check_mode:
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


def create_key_repository(path, check_mode=False):
    """A keystone fernet (or credential) key repository as `keystone-manage fernet_setup`
    leaves it: key 0 staged, key 1 primary, each a Fernet key (base64 of 32 random
    bytes). Done here it saves two keystone-manage runs (~3 CPU-seconds each)."""
    if os.path.isdir(path) and any(name.isdigit() for name in os.listdir(path)):
        return False
    if check_mode:
        return True
    os.makedirs(path, mode=0o700, exist_ok=True)
    for index in ("0", "1"):
        _write(os.path.join(path, index), base64.urlsafe_b64encode(os.urandom(32)), 0o600)
    return True


def write_state(params, files, check_mode):
    """The state directory in one pass; what was (or would be) written."""
    written = []
    old_umask = os.umask(0o077)
    try:
        for path in params["directories"]:
            if not os.path.isdir(path):
                if not check_mode:
                    os.makedirs(path, mode=0o700, exist_ok=True)
                written.append(path + "/")
        for path, content in files.items():
            if not check_mode:
                os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            if _write(path, content.encode(), 0o600, check_mode):
                written.append(path)
        for path, size in params["zero_files"].items():
            if not os.path.exists(path):
                _write(path, b"\0" * int(size), 0o600, check_mode)
                written.append(path)
        for path in params["key_repositories"]:
            if create_key_repository(path, check_mode):
                written.append(path + "/")
    finally:
        os.umask(old_umask)
    return written


# ------------------------------------------------------------------ checks


def check_message_bus(bus):
    """Whether the cloud's RabbitMQ user logs in to its vhost (same statuses as
    check_database)."""
    try:
        import amqp
    except ImportError:
        return {"status": "unknown", "reason": "py-amqp is not installed yet"}
    conn = amqp.Connection(
        host=f"{bus['host']}:{bus['port']}",
        userid=bus["user"],
        password=bus["password"],
        virtual_host=bus["vhost"],
        connect_timeout=5,
    )
    try:
        conn.connect()
    except (amqp.exceptions.AccessRefused, amqp.exceptions.NotAllowed) as exc:
        return {"status": "denied", "reason": str(exc)}
    except Exception as exc:  # anything else: the role's own tasks find out
        return {"status": "unknown", "reason": str(exc)}
    finally:
        with contextlib.suppress(Exception):
            conn.collect()
    return {"status": "ok"}


def checked_token(checks):
    """A token the APIs of checks["urls"] accept; raises RuntimeError or OSError."""
    tok = token(checks["auth"])
    for url in checks["urls"]:
        status, _, _ = http("GET", url, headers={"X-Auth-Token": tok})
        if status >= 400:
            raise RuntimeError(f"GET {url} answered HTTP {status}")
    return tok


def check_cloud(checks):
    """With every process running as wanted: do the APIs answer a token, is the image there?"""
    image = checks["image"]
    try:
        tok = checked_token(checks)
        images = find_images(image, tok)
        canary = image.get("canary")
        canaries = find_images(image, tok, canary) if canary else [{"status": "active"}]
    except (RuntimeError, OSError) as exc:
        return {"status": "failed", "reason": str(exc)}
    if usable_image(images) is None:
        return {"status": "failed", "reason": "the image is missing"}
    if usable_image(canaries) is None:
        return {"status": "failed", "reason": "the canary image is missing"}
    return {"status": "ok"}


def ensure_image(image, tok, check_mode=False, name=None, visibility="public"):
    """(image id, created?) of the tiny public raw image (or another of that data: name)."""
    glance = image["url"].rstrip("/")
    auth = {"X-Auth-Token": tok}
    name = name or image["name"]
    images = find_images(image, tok, name)
    active = usable_image(images)
    if active:
        return active["id"], False
    found = next((i for i in images if i.get("status") == "queued"), None)
    other = next((i for i in images if i is not found), None)
    if found is None and other is not None:
        # Another of that name (deactivated, say) stays the operator's to look
        # at: a second one would make the name ambiguous for the jobs.
        raise RuntimeError(
            f"image {name} ({other.get('id')}) is {other.get('status')}, not active: "
            "reactivate or delete it, then converge again"
        )
    if check_mode:
        return None, True
    if found is None:
        body = {
            "name": name,
            "disk_format": "raw",
            "container_format": "bare",
            "visibility": visibility,
        }
        status, _, found = http("POST", f"{glance}/v2/images", body, headers=auth)
        if status != 201:
            raise RuntimeError(f"glance answered HTTP {status} to creating the image")
    with open(image["file"], "rb") as f:
        data = f.read()
    headers = dict(auth, **{"Content-Type": "application/octet-stream"})
    status, _, _ = http("PUT", f"{glance}/v2/images/{found['id']}/file", headers=headers, data=data)
    if status >= 300:
        raise RuntimeError(f"glance answered HTTP {status} to the image upload")
    return found["id"], True


# ------------------------------------------------------------------ steps


def inspect(params, check_mode):
    python = next((p for p in params["pythons"] if os.access(p, os.X_OK)), sys.executable)
    try:
        with open(params["secrets_file"]) as f:
            secrets = f.read()
    except FileNotFoundError:
        secrets = None
    return {"changed": False, "python": python, "secrets": secrets}


def preflight(specs, backends):
    """Ports held by another program, or a backend that does not answer and is not
    ours to start, fail here; the backends the role starts."""
    conflicts = []
    for spec in specs:
        pid, _ = running_state(spec)
        if pid is None and kill_orphans(raw_record(spec["pidfile"])) and spec.get("port"):
            # The workers of a killed leader: ours, not another program.
            wait_port_free(spec["host"], spec["port"], 5)
        if pid is None and spec.get("port") and port_in_use(spec["host"], spec["port"]):
            holder_pid, cmd = listener(spec["host"], spec["port"])
            holder = f" (pid {holder_pid}: {cmd[:100]})" if holder_pid else ""
            conflicts.append(
                f"port {spec['port']} on {spec['host']} needed by {spec['name']} is already "
                f"in use by another program{holder}"
            )
    if conflicts:
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise StepFailed(conflicts[0] + more)
    unreachable = []
    for backend in backends:
        if not port_open(backend["host"], backend["port"]):
            if not backend["manage"]:
                raise StepFailed(
                    f"{backend['label']} at {backend['host']}:{backend['port']} is "
                    f"unreachable (nothing answers there); {backend['hint']}"
                )
            unreachable.append(backend["name"])
    return unreachable


def converge(params, check_mode):
    specs = process_specs(params["services"])
    # Preflight, before anything is created or changed.
    unreachable = preflight(specs, params["backends"])

    # The state directory, then the manifest with what restarts each process.
    files = dict(params["files"])
    for spec in specs:
        spec["fingerprint"] = fingerprint(spec, files, params["fingerprint_salt"])
    manifest = dict(params["manifest"]["data"])
    manifest["services"] = [{k: v for k, v in spec.items() if k != "inputs"} for spec in specs]
    files[params["manifest"]["path"]] = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    written = write_state(params, files, check_mode)

    # What is already done.
    stamps = params["stamps_dir"]
    out = {
        "changed": bool(written),
        "written": written,
        "unreachable": unreachable,
        "stamps": sorted(os.listdir(stamps)) if stamps and os.path.isdir(stamps) else [],
        "exists": {p: os.path.exists(p) for p in params["exists"]},
        "processes": {},
    }
    for spec in specs:
        pid, recorded = running_state(spec)
        out["processes"][spec["name"]] = {
            "pid": pid,
            "fingerprint": spec["fingerprint"],
            "current": pid is not None and recorded == spec["fingerprint"],
        }
    unknown = {"status": "unknown", "reason": "not reachable yet"}
    out["database"] = check_database(params["database"]) if not unreachable else unknown
    data_account = params["data_account"]
    out["data_account"] = (
        check_database(data_account) if data_account and not unreachable else unknown
    )
    out["message_bus"] = check_message_bus(params["message_bus"]) if not unreachable else unknown
    # Only when nothing is to be started: the final check is then not needed.
    if all(p["current"] for p in out["processes"].values()) and params["api_checks"]:
        out["cloud"] = check_cloud(params["api_checks"])
    else:
        out["cloud"] = {"status": "unknown", "reason": "processes to start"}
    return out


def start(params, check_mode):
    """Start the processes named in params["start"] (in the role's order) that do not
    run with their current fingerprint; one module run instead of one per process."""
    todo = []
    for spec in process_specs(params["services"]):
        if spec["name"] not in params["start"]:
            continue
        spec["fingerprint"] = params["fingerprints"][spec["name"]]
        record = read_record(spec["pidfile"])
        if record is None or record.get("fingerprint") != spec["fingerprint"]:
            todo.append(spec)
    if check_mode:
        return {"changed": bool(todo), "started": [{"name": s["name"]} for s in todo]}
    # Those running with another configuration stop at once (a graceful stop takes
    # seconds: nova's services wait for their RPC servers), then start in order.
    stop_all([s for s in todo if read_record(s["pidfile"])], STOP_TIMEOUT)
    started = []
    for spec in todo:
        try:
            pid = launch(spec)
        except StartFailed as exc:
            raise StepFailed(str(exc)) from None
        started.append({"name": spec["name"], "pid": pid})
    return {"changed": bool(started), "started": started}


def verify(params, check_mode):
    out = {"changed": False, "created": []}
    checks = params["api_checks"]
    wanted = set(params["wait"])
    waiting = [
        s for s in process_specs(params["services"]) if s["name"] in wanted and s.get("probe")
    ]
    if check_mode:
        return out  # what is not started yet cannot answer
    error = wait_for_apis(waiting, params["timeout"] or VERIFY_TIMEOUT)
    if error:
        raise StepFailed(error)
    if not checks:
        return out
    image = checks["image"]
    try:
        tok = checked_token(checks)
        if checks["compute_services"]:
            wait_for_control_plane(checks["compute_services"], tok, params["timeout"])
        out["image_id"], created = ensure_image(image, tok)
        # A private image of the operator's project: shard jobs must leave it as it is.
        canary_created = (
            image.get("canary")
            and ensure_image(image, tok, name=image["canary"], visibility="private")[1]
        )
    except (RuntimeError, OSError) as exc:
        raise StepFailed(str(exc)) from None
    if created:
        out["created"].append(f"image:{image['name']}")
    if canary_created:
        out["created"].append(f"image:{image['canary']}")
    for path in params["touch"]:
        with open(path, "a"):
            pass
    out["changed"] = bool(out["created"])
    return out


def wait_for_control_plane(url, tok, timeout):
    """Until nova's conductor and scheduler report up (a service record is
    written a moment after its API or process starts); RuntimeError past the
    timeout, with what was last seen."""
    seen = []

    def up():
        status, _, body = http("GET", url, headers={"X-Auth-Token": tok})
        if status >= 400:
            seen.append(f"GET {url} answered HTTP {status}")
        else:
            records = (body or {}).get("services") or []
            seen.append(first_down((r.get("binary"), r.get("state")) for r in records))
        return seen[-1] is None

    wait_until(
        up,
        timeout or VERIFY_TIMEOUT,
        on_timeout=lambda: f"nova's control plane is not up: {seen[-1]}",
        error=RuntimeError,
    )


def stop_step(params, check_mode):
    specs = process_specs(params["services"])[::-1]
    if check_mode:
        running = [s["name"] for s in specs if read_record(s["pidfile"])]
        return {"changed": bool(running), "stopped": running}
    stopped, listening = stop_all(specs, params["timeout"] or STOP_TIMEOUT)
    if listening:
        raise StepFailed("still listening after stop: " + "; ".join(listening))
    return {"changed": bool(stopped), "stopped": stopped}


STEPS = {
    "inspect": inspect,
    "converge": converge,
    "start": start,
    "verify": verify,
    "stop": stop_step,
}

PROCESS_OPTIONS = dict(
    name=dict(type="str", required=True),
    command=dict(type="str", required=True),
    environment=dict(type="dict", default={}),
    port=dict(type="int"),
    probe=dict(type="str"),
    inputs=dict(type="list", elements="str", default=[]),
)
LOGIN_OPTIONS = dict(
    host=dict(type="str", required=True),
    port=dict(type="int", required=True),
    user=dict(type="str", required=True),
    password=dict(type="str", required=True, no_log=True),
)
ARGUMENT_SPEC = dict(
    step=dict(type="str", required=True, choices=list(STEPS)),
    secrets_file=dict(type="path"),
    pythons=dict(type="list", elements="path", default=[]),
    services=dict(
        type="dict",
        options=dict(
            host=dict(type="str", default="127.0.0.1"),
            etc_dir=dict(type="path", required=True),
            run_dir=dict(type="path", required=True),
            log_dir=dict(type="path", required=True),
            processes=dict(type="list", elements="dict", required=True, options=PROCESS_OPTIONS),
        ),
    ),
    api_checks=dict(
        type="dict",
        options=dict(
            auth=dict(
                type="dict",
                required=True,
                options=dict(
                    auth_url=dict(type="str", required=True),
                    username=dict(type="str", required=True),
                    password=dict(type="str", required=True, no_log=True),
                    project=dict(type="str", required=True),
                ),
            ),
            urls=dict(type="list", elements="str", default=[]),
            compute_services=dict(type="str"),
            image=dict(
                type="dict",
                required=True,
                options=dict(
                    url=dict(type="str", required=True),
                    name=dict(type="str", required=True),
                    file=dict(type="path", required=True),
                    canary=dict(type="str"),
                ),
            ),
        ),
    ),
    fingerprint_salt=dict(type="str", default=""),
    backends=dict(
        type="list",
        elements="dict",
        default=[],
        options=dict(
            name=dict(type="str", required=True),
            label=dict(type="str", required=True),
            host=dict(type="str", required=True),
            port=dict(type="int", required=True),
            manage=dict(type="bool", default=False),
            hint=dict(type="str", default=""),
        ),
    ),
    directories=dict(type="list", elements="path", default=[]),
    # The rendered files hold the cloud's passwords (secrets.yaml, clouds.yaml).
    files=dict(type="dict", default={}, no_log=True),
    zero_files=dict(type="dict", default={}),
    manifest=dict(
        type="dict",
        options=dict(path=dict(type="path", required=True), data=dict(type="dict", required=True)),
    ),
    database=dict(type="dict", options=LOGIN_OPTIONS),
    data_account=dict(type="dict", options=LOGIN_OPTIONS),
    message_bus=dict(
        type="dict", options=dict(LOGIN_OPTIONS, vhost=dict(type="str", required=True))
    ),
    stamps_dir=dict(type="path"),
    key_repositories=dict(type="list", elements="path", default=[]),
    exists=dict(type="list", elements="path", default=[]),
    start=dict(type="list", elements="str", default=[]),
    fingerprints=dict(type="dict", default={}),
    wait=dict(type="list", elements="str", default=[]),
    touch=dict(type="list", elements="path", default=[]),
    timeout=dict(type="int"),
)


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[
            ("step", "inspect", ["secrets_file"]),
            ("step", "converge", ["services", "manifest", "database", "message_bus"]),
            ("step", "start", ["services"]),
            ("step", "verify", ["services"]),
            ("step", "stop", ["services"]),
        ],
        supports_check_mode=True,
    )
    try:
        result = STEPS[module.params["step"]](module.params, module.check_mode)
    except StepFailed as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # one line for the role's output; the traceback in the result
        module.fail_json(msg=f"{type(exc).__name__}: {exc}", exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
