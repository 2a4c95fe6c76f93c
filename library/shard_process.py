# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: a pid-file supervisor for one long-running service process."""

DOCUMENTATION = r"""
---
module: shard_process
short_description: Start, stop or restart a service process tracked by a pid file
description:
  - Runs a long-lived program in its own session with its output appended to a
    log file, and records its pid (plus the process start time, so a recycled
    pid is never mistaken for it) in a pid file.
  - For hosts without systemd, such as CI nodes and containers. Where systemd
    runs, a unit does the same job.
  - With I(port), refuses to start when another program already listens there,
    and waits until the new process accepts connections; a process that exits
    while starting fails the task with the end of its log.
  - With I(fingerprint) (for instance a hash of its configuration), a running
    process whose fingerprint differs is restarted.
options:
  name:
    description: Service name, used in messages.
    type: str
    required: true
  state:
    description:
      - C(started) starts the process unless it already runs (with the same fingerprint).
      - C(stopped) stops it (SIGTERM to its process group, SIGKILL after I(stop_timeout)).
      - C(restarted) always stops and starts it.
    type: str
    choices: [started, stopped, restarted]
    default: started
  command:
    description: Program and arguments. Required unless I(state=stopped).
    type: list
    elements: str
  environment:
    description: Variables added to the environment of the process.
    type: dict
    default: {}
  chdir:
    description: Working directory of the process.
    type: path
  pidfile:
    description: Where the pid is recorded (a JSON sidecar I(pidfile).json holds the details).
    type: path
    required: true
  logfile:
    description: File that receives standard output and error (appended).
    type: path
  port:
    description: TCP port the process listens on, checked before start and waited for after.
    type: int
  host:
    description: Address of I(port).
    type: str
    default: 127.0.0.1
  fingerprint:
    description: Opaque string recorded at start; a running process with another one is restarted.
    type: str
  start_timeout:
    description: Seconds to wait for I(port) to accept connections.
    type: int
    default: 120
  stop_timeout:
    description: Seconds to wait after SIGTERM before SIGKILL.
    type: int
    default: 30
  stop_signal:
    description: Signal sent first when stopping.
    type: str
    default: TERM
    choices: [TERM, INT, KILL]
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Run keystone under gunicorn
  shard_process:
    name: keystone
    command: [/opt/venv/bin/gunicorn, --bind, "127.0.0.1:5000", keystone.wsgi.api:application]
    environment:
      OS_KEYSTONE_CONFIG_DIR: /srv/cloud/etc/keystone
    pidfile: /srv/cloud/run/keystone.pid
    logfile: /srv/cloud/log/keystone.log
    port: 5000
    fingerprint: "{{ keystone_conf.checksum }}"

- name: Stop it
  shard_process:
    name: keystone
    pidfile: /srv/cloud/run/keystone.pid
    state: stopped
"""

RETURN = r"""
pid:
  description: Pid of the running process (none once stopped).
  returned: always
  type: int
  sample: 4242
running:
  description: Whether the process runs after the task.
  returned: always
  type: bool
action:
  description: What was done, C(none), C(started), C(stopped) or C(restarted).
  returned: always
  type: str
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule


def _start_time(pid):
    """Process start time in clock ticks since boot, or None if no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces: split after its closing paren.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def read_record(pidfile):
    try:
        with open(pidfile + ".json") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if _start_time(record.get("pid")) != record.get("start_time"):
        return None
    return record


def _listener(host, port):
    """Return (pid, cmdline) of whoever listens on host:port, as far as /proc tells."""
    inodes = set()
    hexport = f"{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[1].endswith(":" + hexport) and parts[3] == "0A":
                        inodes.add(parts[9])
        except OSError:
            continue
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                    return int(pid), cmd
        except OSError:
            continue
    return None, None


def port_in_use(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _log_tail(logfile, lines=15):
    if not logfile:
        return ""
    try:
        with open(logfile, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def stop(record, sig, timeout):
    pid = record["pid"]
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _start_time(pid) != record["start_time"]:
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while _start_time(pid) == record["start_time"]:
        time.sleep(0.05)


def start(module, params):
    name, host, port = params["name"], params["host"], params["port"]
    if port and port_in_use(host, port):
        pid, cmd = _listener(host, port)
        holder = f" (pid {pid}: {cmd[:120]})" if pid else ""
        module.fail_json(
            msg=f"port {port} on {host} needed by {name} is already in use by another "
            f"program{holder}"
        )
    if module.check_mode:
        return None
    for path in (params["pidfile"], params["logfile"]):
        if path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
    env = dict(os.environ)
    env.update({k: str(v) for k, v in params["environment"].items()})
    log = open(params["logfile"] or os.devnull, "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            params["command"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=params["chdir"],
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        module.fail_json(msg=f"cannot start {name}: {exc}")
    finally:
        log.close()
    record = {
        "name": name,
        "pid": proc.pid,
        "start_time": _start_time(proc.pid),
        "fingerprint": params["fingerprint"],
        "command": params["command"],
    }
    tmp = params["pidfile"] + ".json.tmp"
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.replace(tmp, params["pidfile"] + ".json")
    with open(params["pidfile"], "w") as f:
        f.write(f"{proc.pid}\n")

    deadline = time.monotonic() + (params["start_timeout"] if port else 0.5)
    while True:
        if proc.poll() is not None:
            module.fail_json(
                msg=f"{name} exited with status {proc.returncode} while starting; "
                f"log {params['logfile']}",
                log_tail=_log_tail(params["logfile"]),
            )
        if port and port_open(host, port):
            break
        if time.monotonic() >= deadline:
            if port:
                stop(record, signal.SIGTERM, 5)
                module.fail_json(
                    msg=f"{name} did not accept connections on {host}:{port} within "
                    f"{params['start_timeout']}s; log {params['logfile']}",
                    log_tail=_log_tail(params["logfile"]),
                )
            break
        time.sleep(0.1)
    return record


def remove_record(pidfile):
    for path in (pidfile, pidfile + ".json"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="started", choices=["started", "stopped", "restarted"]),
            command=dict(type="list", elements="str"),
            environment=dict(type="dict", default={}),
            chdir=dict(type="path"),
            pidfile=dict(type="path", required=True),
            logfile=dict(type="path"),
            port=dict(type="int"),
            host=dict(type="str", default="127.0.0.1"),
            fingerprint=dict(type="str"),
            start_timeout=dict(type="int", default=120),
            stop_timeout=dict(type="int", default=30),
            stop_signal=dict(type="str", default="TERM", choices=["TERM", "INT", "KILL"]),
        ),
        required_if=[("state", "started", ["command"]), ("state", "restarted", ["command"])],
        supports_check_mode=True,
    )
    params = module.params
    state = params["state"]
    record = read_record(params["pidfile"])
    sig = getattr(signal, "SIG" + params["stop_signal"])

    if state == "stopped":
        if record is None:
            if not module.check_mode:
                remove_record(params["pidfile"])  # a stale record of a dead process
            module.exit_json(changed=False, pid=None, running=False, action="none")
        if not module.check_mode:
            stop(record, sig, params["stop_timeout"])
            remove_record(params["pidfile"])
        module.exit_json(changed=True, pid=None, running=False, action="stopped")

    if (
        state == "started"
        and record is not None
        and record.get("fingerprint") == params["fingerprint"]
    ):
        module.exit_json(changed=False, pid=record["pid"], running=True, action="none")

    action = "started"
    if record is not None:
        action = "restarted"
        if module.check_mode:
            module.exit_json(changed=True, pid=record["pid"], running=True, action=action)
        stop(record, sig, params["stop_timeout"])
        remove_record(params["pidfile"])
    new = start(module, params)
    module.exit_json(
        changed=True, pid=new["pid"] if new else None, running=new is not None, action=action
    )


if __name__ == "__main__":
    main()
