# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""A run's phases and their CPU: the one home of the event record, its reader and the sampler.

A build's workspace holds phases.jsonl: one JSON object a line, in this key
order: phase, event (start, end or mark), time (epoch seconds), cpu (a
snapshot). The shard_report module appends events and turns them into the
efficiency report; the teardown and ./shard run read them.

A CPU snapshot (all counters cumulative, in CPU-seconds):
  machine   /proc/stat: busy time of every CPU of the machine since boot;
  code      per service process of the build (the pid files in WS/run/, and
            their descendants): utime+stime of the process, plus that of its
            children once they exited;
  harness   the job's own process tree, when the program that runs the
            playbooks on this machine names itself in SHARD_RUN_PID (./shard
            run does; under Zuul Ansible runs on the executor, not here);
  cloud     the target cloud's processes, when they run on this machine and
            SHARD_RUN_CLOUD_PIDS names them (./shard run with the embedded cloud).

The efficiency report splits the machine's busy time between the snapshots
into the groups below (cpu_between); every reader of report.json spells them
through these names.

Standard library only, reading /proc: the sampler runs with a node's own
python3 at every phase boundary, where no virtualenv (and no psutil) can be
assumed.
"""

import json
import os
import re
import time

from ansible.module_utils import shard_processes as processes
from ansible.module_utils.shard_jsonl import read_jsonl

PHASES_FILE = "phases.jsonl"

# The CPU groups of cpu_between and of report.json (cpu.groups), in the order
# the report shows them, and the machine's busy time that they split.
MACHINE = "machine"
CODE_UNDER_TEST = "code_under_test"
TARGET_CLOUD = "target_cloud"
HARNESS = "harness"
OTHER = "other"
GROUPS = (CODE_UNDER_TEST, TARGET_CLOUD, HARNESS, OTHER)
# The groups measured as a process tree that the environment names: the
# snapshot's key for each (absent from a snapshot when nobody named the tree).
TREE_GROUPS = ((TARGET_CLOUD, "cloud"), (HARNESS, "harness"))

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# ------------------------------------------------------------------ /proc


def read_procs(proc="/proc"):
    """pid -> (ppid, starttime, own ticks, children ticks) of every process."""
    return {
        pid: (
            int(f[processes.PPID]),
            int(f[processes.STARTTIME]),
            int(f[processes.UTIME]) + int(f[processes.STIME]),
            int(f[processes.CUTIME]) + int(f[processes.CSTIME]),
        )
        for pid, f in processes.process_table(proc).items()
    }


def machine_seconds(proc="/proc"):
    """(busy, total) CPU-seconds of the whole machine since boot."""
    with open(f"{proc}/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    values += [0] * (8 - len(values))
    user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
    busy = user + nice + system + irq + softirq + steal
    return busy / CLK_TCK, (busy + idle + iowait) / CLK_TCK


def descendants(procs, roots):
    """The roots (those alive) and every live process below them."""
    children = {}
    for pid, (ppid, *_rest) in procs.items():
        children.setdefault(ppid, []).append(pid)
    seen, todo = set(), [pid for pid in roots if pid in procs]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(children.get(pid, []))
    return seen


def tree_seconds(procs, pids):
    """CPU of these processes and of their children that exited (not double counted
    as long as `pids` is closed under descendants)."""
    return sum(procs[p][2] + procs[p][3] for p in pids if p in procs) / CLK_TCK


def service_roots(workspace, procs):
    """{pid: "pid:starttime"} of the build's service processes (pid files in run/)."""
    roots = {}
    for pidfile in processes.recorded_pidfiles(os.path.join(workspace, "run")):
        record = processes.raw_record(pidfile)
        if record is None:
            continue
        pid = record["pid"]
        if pid in procs and procs[pid][1] == record.get("start_time"):
            roots[pid] = f"{pid}:{procs[pid][1]}"
    return roots


def _pids(value):
    return [int(p) for p in (value or "").replace(",", " ").split() if p.isdigit()]


def snapshot(workspace, environ=None, proc="/proc"):
    """Cumulative CPU counters now (see the module's docstring)."""
    environ = os.environ if environ is None else environ
    procs = read_procs(proc)
    busy, total = machine_seconds(proc)
    code = {}
    code_pids = set()
    for pid, key in service_roots(workspace, procs).items():
        tree = descendants(procs, [pid])
        code_pids |= tree
        code[key] = round(tree_seconds(procs, tree), 2)
    snap = {
        "machine": round(busy, 2),
        "machine_total": round(total, 2),
        "ncpu": os.cpu_count() or 1,
        "code": code,
    }
    try:
        with open(f"{proc}/loadavg") as f:
            snap["load1"] = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    run_pid = _pids(environ.get("SHARD_RUN_PID"))
    if run_pid:
        tree = descendants(procs, run_pid) - code_pids
        snap["harness"] = round(tree_seconds(procs, tree), 2)
    cloud_pids = _pids(environ.get("SHARD_RUN_CLOUD_PIDS"))
    if cloud_pids:
        tree = descendants(procs, cloud_pids) - code_pids
        snap["cloud"] = round(tree_seconds(procs, tree), 2)
    return snap


# ------------------------------------------------------------------ events


def read_events(path):
    """The phase events of a phases.jsonl, oldest first (lines of another shape skipped)."""
    events = [e for e in read_jsonl(path) if "phase" in e and "time" in e]
    return sorted(events, key=lambda e: e["time"])


def append_event(path, phase, event, cpu, when=None):
    """One line per event, keys in this order (phase, event, time, cpu): the
    line reads as it did before CPU snapshots were added."""
    record = {"phase": phase, "event": event, "time": when or time.time(), "cpu": cpu}
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(json.dumps(record) + "\n")
    return record


# ------------------------------------------------------------------ arithmetic


def _code_between(first, last):
    """CPU of the service processes between two snapshots: what each process used
    after `first` (all of it when it started later), at the last time it was seen."""
    total = 0.0
    for key, value in last.items():
        total += max(0.0, value - first.get(key, 0.0))
    return total


def _latest_code(samples):
    """Per service process, its counter the last time a sample saw it."""
    seen = {}
    for sample in samples:
        seen.update(sample.get("code") or {})
    return seen


def cpu_between(samples):
    """Per-group CPU-seconds between the first and the last of these samples.
    A group that was not measured is None. `other` is the machine's busy time
    minus the measured groups (never below zero)."""
    if len(samples) < 2:
        return None
    first, last = samples[0], samples[-1]
    machine = max(0.0, last["machine"] - first["machine"])
    out = {
        MACHINE: round(machine, 2),
        CODE_UNDER_TEST: round(_code_between(first.get("code") or {}, _latest_code(samples)), 2),
    }
    for group, key in TREE_GROUPS:
        if key in first and key in last:
            out[group] = round(max(0.0, last[key] - first[key]), 2)
        else:
            out[group] = None
    measured = sum(out[g] or 0.0 for g in GROUPS if g != OTHER)
    out[OTHER] = round(max(0.0, machine - measured), 2)
    return out


def phases_of(events, t0):
    """[{name, start, end, seconds, cpu}] in order of start; start/end relative to t0.

    A phase may run more than once (the upgrade job builds twice): each start
    opens a new entry, named "<phase> (2)" and so on, which the next end of
    that phase closes. A start that no end followed stays open (end None)."""
    entries, open_by_name, runs = [], {}, {}

    def close(entry, end_index, end_event):
        entry["end"] = round(end_event["time"] - t0, 2)
        entry["seconds"] = round(end_event["time"] - entry["_start"]["time"], 2)
        if entry["_start"].get("cpu") and end_event.get("cpu"):
            samples = [e["cpu"] for e in events[entry["_index"] : end_index + 1] if e.get("cpu")]
            entry["cpu"] = cpu_between(samples)

    for index, event in enumerate(events):
        kind, name = event.get("event"), event["phase"]
        if kind == "start":
            runs[name] = runs.get(name, 0) + 1
            entry = {
                "name": name if runs[name] == 1 else f"{name} ({runs[name]})",
                "start": round(event["time"] - t0, 2),
                "end": None,
                "seconds": None,
                "cpu": None,
                "_start": event,
                "_index": index,
            }
            entries.append(entry)
            open_by_name[name] = entry
        elif kind == "end" and name in open_by_name:
            close(open_by_name.pop(name), index, event)
    for entry in entries:
        del entry["_start"], entry["_index"]
    return entries


# The start of a record, as append_event writes it: enough of a half-written
# last line (a killed run) to tell which phase it started.
_STARTED_RE = re.compile(r'^\{"phase": "([^"]+)", "event": "start"')


def reached(path):
    """The phases a run started, in order; None when there is no record.

    Conservative: a line cut short still counts once it names its phase and
    its start (teardown uses this to decide whether the cloud was reached)."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    seen = []
    for line in lines:
        match = _STARTED_RE.match(line.strip())
        if match and match.group(1) not in seen:
            seen.append(match.group(1))
    return seen


def phase_times(events):
    """{phase: {start, end, seconds}}: the last start and end of each phase (what
    ./shard run's summary shows; the report's timeline keeps every run of a phase)."""
    phases = {}
    for event in events:
        if event.get("event") in ("start", "end"):
            phases.setdefault(event["phase"], {})[event["event"]] = event["time"]
    for times in phases.values():
        if "start" in times and "end" in times:
            times["seconds"] = round(times["end"] - times["start"], 2)
    return phases


def record(workspace, phase, event):
    """Append an event with a CPU snapshot now to the workspace's phases.jsonl."""
    os.makedirs(workspace, mode=0o700, exist_ok=True)
    return append_event(os.path.join(workspace, PHASES_FILE), phase, event, snapshot(workspace))


# ------------------------------------------------------- a module's own events

# The option `phase` of a module that does the first or last work of a phase
# (shard_files, shard_virtualenv, the cloud modules through ShardModule in
# shard_openstack.py): it records the phase's start before that
# work, its end after it, where a shard_report task of its own would cost one
# more process on the node. Nothing is recorded in check mode, nor the end of
# work that failed (as with a separate task, which would not run).
PHASE_OPTION = dict(
    type="dict",
    options=dict(
        workspace=dict(type="path", required=True),
        name=dict(type="str", required=True),
        start=dict(type="bool", default=False),
        end=dict(type="bool", default=False),
    ),
)


def option_event(option, event, check_mode=False):
    """Record I(event) (start or end) of a phase option (PHASE_OPTION's shape), when it
    asks for it. A module that does the work of two phases (shard_compute_service's
    label_step) records the second one's from an option of its own."""
    if option and option[event] and not check_mode:
        record(option["workspace"], option["name"], event)


def module_event(module, event):
    """Record I(event) (start or end) of I(module)'s C(phase) option, when it asks for it."""
    option_event(module.params.get("phase"), event, module.check_mode)


def exit_json(module, **result):
    """I(module)'s exit on success, after the end of its phase (C(phase) option)."""
    module_event(module, "end")
    module.exit_json(**result)
