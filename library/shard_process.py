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
      - C(started) starts the process unless it already runs (with the same fingerprint);
        what a dead one left in its process group is killed first.
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

import signal

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.shard_processes import (
    StartFailed,
    kill_orphans,
    port_in_use,
    raw_record,
    read_record,
    remove_record,
    start,
    stop,
    stop_recorded,
)


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
        if module.check_mode:
            action = "none" if record is None else "stopped"
            module.exit_json(changed=record is not None, pid=None, running=False, action=action)
        # Also what a dead leader left in its group; a stale record goes too.
        stopped = stop_recorded(params["pidfile"], sig, params["stop_timeout"])
        action = "stopped" if stopped else "none"
        module.exit_json(changed=stopped, pid=None, running=False, action=action)

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
    elif not module.check_mode:
        # A dead leader's workers would keep its port and files from the new process.
        kill_orphans(raw_record(params["pidfile"]))
    if module.check_mode:
        busy = params["port"] and port_in_use(params["host"], params["port"])
        if busy:
            module.fail_json(msg=f"port {params['port']} on {params['host']} is already in use")
        module.exit_json(changed=True, pid=None, running=False, action=action)
    try:
        new = start(
            params["name"],
            params["command"],
            params["pidfile"],
            logfile=params["logfile"],
            environment=params["environment"],
            chdir=params["chdir"],
            port=params["port"],
            host=params["host"],
            fingerprint=params["fingerprint"],
            start_timeout=params["start_timeout"],
        )
    except StartFailed as exc:
        module.fail_json(msg=str(exc), log_tail=exc.log_tail)
    module.exit_json(changed=True, pid=new["pid"], running=True, action=action)


if __name__ == "__main__":
    main()
