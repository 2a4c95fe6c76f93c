# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: a shard build's phase events and its efficiency report."""

DOCUMENTATION = r"""
---
module: shard_report
short_description: Record a phase event of a shard build, or write its efficiency report
description:
  - C(sample) appends a phase event, with a snapshot of the node's CPU
    counters, to the build's phases.jsonl (module_utils/shard_phases.py has
    the record and the sampler).
  - C(finish) is the end of the build's record, in one process, after
    teardown (the cleanup playbook runs it whatever happened before, also
    after a cancelled build). When the workspace exists, it ends the
    teardown phase and assembles in I(out) what a reviewer needs from the
    build (its service's logs, with what the service wrote while it
    stopped; the configuration with every secret masked - never the real
    one -; the build's record of what it installed, the exercise's result,
    the phase record, the rolling upgrade's samples), readable by its owner
    only. Beside them it writes teardown.json (what teardown found, deleted
    and left), phases.json (seconds per phase) and report.json (phase
    timeline, CPU per process group, what the run created, the verdict),
    and returns the report; the shard_report_html filter renders
    report.html from it on the controller.
  - C(reached) reads which phases the build started (read-only).
  - C(begin) starts a step in one process. It reads which phases the build
    started, looks for the paths the step decides on (I(paths)), and
    records the start of I(phase) when the workspace exists and
    I(unless_exists) does not (that path is the step's converged state,
    such as the exercise's result). Each of those looks used to be a task,
    and each task costs the executor a process on the node.
  - A timing record and the job's logs, not a change to the node - it always
    reports C(changed=false), so that a converged role stays idempotent.
options:
  command:
    description: What to do.
    type: str
    required: true
    choices: [sample, finish, reached, begin]
  workspace:
    description: The build's workspace (phases.jsonl, result.json, run/ with the pid files).
    type: path
    required: true
  phase:
    description: The phase of a C(sample) event, or the one C(begin) starts.
    type: str
  event:
    description: The kind of a C(sample) event.
    type: str
    choices: [start, end, mark]
  paths:
    description:
      - Paths whose existence C(begin) returns in I(exists), keyed as given
        (a C(~) is expanded for the look, not in the key).
    type: list
    elements: str
    default: []
  unless_exists:
    description: C(begin) records no start when this path exists.
    type: path
  record:
    description:
      - The workspace whose phase record tells C(begin) (and C(reached)) which
        phases the run reached, when not I(workspace)'s own, such as the
        build's for another shard of the same run (the rolling upgrade's),
        whose deploy only the build's record shows for sure.
    type: path
  out:
    description:
      - Where C(finish) assembles the logs and writes the report (emptied
        first).
    type: path
  success:
    description:
      - Whether the job succeeded so far (Zuul's C(zuul_success) in post-run);
        unset when not known. With I(will_retry) and what teardown left it
        makes the verdict of C(finish).
    type: bool
  will_retry:
    description: Whether Zuul will retry the build (C(zuul_will_retry)).
    type: bool
    default: false
  job:
    description: The job's name, for the report.
    type: str
    default: ""
  build:
    description: The build id, for the report.
    type: str
    default: ""
  teardown:
    description: What teardown found, deleted and left, and its error (C(finish)).
    type: dict
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Record the start of the deploy phase
  shard_report:
    command: sample
    workspace: /home/zuul/.shard-jobs/builds/shard-3f2a9c01b7d4
    phase: deploy
    event: start

- name: Start the teardown; look for the client and what the run reached
  shard_report:
    command: begin
    workspace: /home/zuul/.shard-jobs/builds/shard-3f2a9c01b7d4
    phase: teardown
    paths:
      - /home/zuul/.cache/shard-jobs/openstack-client/bin/python
  register: begun

- name: After teardown, collect the logs and write the efficiency report
  shard_report:
    command: finish
    workspace: /home/zuul/.shard-jobs/builds/shard-3f2a9c01b7d4
    out: /home/zuul/.shard-jobs/builds/shard-3f2a9c01b7d4/zuul-logs
    teardown:
      found:
        servers: [{id: 6f1c0a52-2b1e-4c4e-9d0a-5b7a1f3e2c11, name: shard-3f2a9c01b7d4-server}]
      left: {}
      error: null
    success: "{{ zuul_success | default(omit) }}"
  register: report

- name: Write its page beside it, rendered on the controller
  shard_files:
    files:
      /home/zuul/.shard-jobs/builds/shard-3f2a9c01b7d4/zuul-logs/report.html: >-
        {{ report.report | shard_report_html }}
"""

RETURN = r"""
written:
  description: Whether a report was written (C(finish)).
  returned: when I(command) is finish
  type: bool
verdict:
  description: The verdict the report carries.
  returned: when a report was written
  type: str
report:
  description: The report as written to report.json, less its phase events (for report.html).
  returned: when a report was written
  type: dict
recorded:
  description: Whether the build has a phase record (before C(begin)'s start).
  returned: when I(command) is reached or begin
  type: bool
reached:
  description: The phases the build started, in order (before C(begin)'s start).
  returned: when I(command) is reached or begin
  type: list
  elements: str
workspace_exists:
  description: Whether the build's workspace exists (C(begin)).
  returned: when I(command) is begin
  type: bool
exists:
  description: Each of I(paths), and whether it exists (C(begin)).
  returned: when I(command) is begin
  type: dict
started:
  description: Whether C(begin) recorded the start of I(phase).
  returned: when I(command) is begin
  type: bool
converged:
  description: Whether I(unless_exists) exists (the step has nothing to do; C(begin)).
  returned: when I(command) is begin
  type: bool
why:
  description: Why no report was written.
  returned: when no report was written
  type: str
"""

import glob
import json
import os
import shutil
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.shard_phases import (
    CODE_UNDER_TEST,
    GROUPS,
    HARNESS,
    MACHINE,
    OTHER,
    PHASES_FILE,
    TARGET_CLOUD,
    append_event,
    cpu_between,
    phase_times,
    phases_of,
    reached,
    read_events,
    record,
    snapshot,
)

SCHEMA = 1


COVERS = {
    CODE_UNDER_TEST: (
        "the build's service processes (pid files in the workspace's run/) and their "
        "descendants: user+system CPU from their start to the last snapshot that saw them "
        "running (a service stopped by teardown is counted until the snapshot before the stop)"
    ),
    TARGET_CLOUD: (
        "the target cloud's processes on this machine (named by ./shard run: the embedded "
        "cloud's services and their workers, MariaDB, RabbitMQ), whoever made them work: "
        "other jobs using the same cloud at the same time are included"
    ),
    HARNESS: (
        "the job's own process tree on this machine: ./shard run, every ansible-playbook it "
        "ran, their workers and module processes, pip, the OpenStack client calls"
    ),
    OTHER: (
        "everything else the machine's CPUs did in the window (/proc/stat busy time minus "
        "the groups above): other people's jobs on a shared machine, the operating system, "
        "and what sampling between snapshots missed"
    ),
    MACHINE: "busy time of all the machine's CPUs in the window, from /proc/stat",
}
# What a group's entry says when the group was not measured (its seconds are None).
NOT_MEASURED = {
    TARGET_CLOUD: (
        "not measured: the target cloud does not run on this machine (or nobody named its "
        "processes); its work for this job happens elsewhere"
    ),
    HARNESS: (
        "not measured per process: Ansible runs on the executor, not on this node; the "
        "module processes it starts here are in the rest of the machine"
    ),
}


def build_report(
    events,
    *,
    verdict,
    job="",
    build="",
    label="",
    exercise=None,
    upgrade=None,
    teardown=None,
    generated=None,
):
    """The report as a dict, from phase events carrying CPU snapshots."""
    events = sorted(events, key=lambda e: e["time"])
    t0 = events[0]["time"] if events else 0.0
    t1 = events[-1]["time"] if events else 0.0
    samples = [e["cpu"] for e in events if e.get("cpu")]
    totals = cpu_between(samples) if len(samples) >= 2 else None
    first = samples[0] if samples else {}
    cpu = {"window": None, "groups": {}, MACHINE: None, "ncpu": first.get("ncpu")}
    if totals:
        cpu["window"] = {
            "from": next(e["phase"] + " " + e["event"] for e in events if e.get("cpu")),
            "to": next(e["phase"] + " " + e["event"] for e in reversed(events) if e.get("cpu")),
            "seconds": round(t1 - t0, 2),
        }
        cpu[MACHINE] = {"seconds": totals[MACHINE], "covers": COVERS[MACHINE]}
        for group in GROUPS:
            value = totals[group]
            covers = COVERS[group] if value is not None else NOT_MEASURED[group]
            cpu["groups"][group] = {"seconds": value, "covers": covers}
        code = totals[CODE_UNDER_TEST] or 0.0
        cpu["code_share"] = round(code / totals[MACHINE], 3) if totals[MACHINE] else None
        loads = [s["load1"] for s in samples if "load1" in s]
        if loads:
            cpu["load1"] = {"min": min(loads), "max": max(loads)}
    marks = [
        {"name": e["phase"], "at": round(e["time"] - t0, 2)}
        for e in events
        if e.get("event") == "mark"
    ]
    report = {
        "schema": SCHEMA,
        "job": job,
        "build": build,
        "label": label,
        "verdict": verdict,
        "start": t0,
        "seconds": round(t1 - t0, 2),
        "phases": phases_of(events, t0),
        "marks": marks,
        "cpu": cpu,
        "resources": resources_of(exercise or {}, teardown),
        "exercise": exercise or {},
        "events": events,
        "generated": generated or [],
    }
    if upgrade:
        report["upgrade"] = {
            k: upgrade.get(k)
            for k in ("from", "to", "downtime_seconds", "verified", "rolling")
            if k in upgrade
        }
    if teardown is not None:
        report["teardown"] = {
            "state": "failed" if teardown.get("error") else "ok",
            "error": teardown.get("error"),
        }
    else:
        report["teardown"] = {"state": "pending", "error": None}
    return report


def _brief(kind, item):
    name = item.get("name") or item.get("host") or item.get("id")
    return {"kind": kind, "name": name, "id": item.get("id") or name}


def resources_of(exercise, teardown):
    """What the run created and what was deleted, as far as this report can know.

    The exercise records what it created and deleted itself (result.json:
    server); teardown records the labelled resources it found (all that the run
    created and that still existed), and what was left after it deleted them.
    """
    created, deleted, left = [], [], []
    for key in ("server", "image"):
        value = exercise.get(key)
        if value:
            item = {"kind": key + "s", "name": value, "id": value, "by": "exercise"}
            created.append(item)
            deleted.append(dict(item))
    state = "pending"
    if teardown is not None:
        state = "failed" if teardown.get("error") else "ok"
        found = teardown.get("found")
        remaining = teardown.get("left")
        left_ids = set()
        if isinstance(remaining, dict):
            for kind, items in remaining.items():
                for item in items or []:
                    entry = _brief(kind, item)
                    left.append(entry)
                    left_ids.add((kind, entry["id"]))
        if isinstance(found, dict):
            for kind, items in found.items():
                for item in items or []:
                    entry = dict(_brief(kind, item), by="teardown")
                    known = [c for c in created if c["kind"] == kind and c["id"] == entry["id"]]
                    if known:
                        # The exercise made it but did not delete it (it failed
                        # first): teardown did, unless it is left.
                        for record in known + [
                            d for d in deleted if d["kind"] == kind and d["id"] == entry["id"]
                        ]:
                            record["by"] = "teardown"
                        continue
                    created.append(entry)
                    if isinstance(remaining, dict) and (kind, entry["id"]) not in left_ids:
                        deleted.append(dict(entry))
    return {"state": state, "created": created, "deleted": deleted, "left": left}


def final_verdict(verdict, teardown):
    """The job's result once teardown (a post-run playbook) is known: Zuul makes a
    failing post-run playbook POST_FAILURE, unless the build will be retried."""
    if teardown is not None and teardown.get("error") and verdict not in ("RETRY", "ABORTED"):
        return "POST_FAILURE"
    return verdict


# ------------------------------------------------------------------ commands


def _load(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def _write(path, text):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_report(out, report):
    """report.json, and the result that carries the report to the controller,
    which renders report.html from it (module_utils/shard_report_page.py says
    why there): all of it but the events, which the page does not show."""
    os.makedirs(out, mode=0o700, exist_ok=True)
    _write(os.path.join(out, "report.json"), json.dumps(report, indent=2) + "\n")
    page = {k: v for k, v in report.items() if k != "events"}
    return {"written": True, "verdict": report["verdict"], "report": page}


def _stamp():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def cmd_sample(p):
    record(p["workspace"], p["phase"], p["event"])
    return {}


# What a reviewer needs from a build, relative to its workspace (and where
# it goes in the logs): the configuration is the copy deploy rendered with
# every secret masked (etc-masked/); the real one (etc/) never leaves the node.
LOG_TREES = {"log": "", "etc-masked": "etc"}
LOG_FILES = ("pip-freeze-*.txt", "source-*.txt", "result.json", "upgrade.json", PHASES_FILE)
# The rolling upgrade's sampler: every call it made, and its summary.
ROLLING_FILES = ("rolling/samples.jsonl", "rolling/summary.json")


def collect_logs(workspace, out):
    """Assemble in I(out) (emptied first) what a reviewer needs from the build,
    readable by its owner only (Zuul's log upload publishes what it is given)."""
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(out, "etc"), mode=0o700)
    for tree, dest in LOG_TREES.items():
        src = os.path.join(workspace, tree)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(out, dest), symlinks=True, dirs_exist_ok=True)
    for pattern in LOG_FILES:
        for path in sorted(glob.glob(os.path.join(workspace, pattern))):
            if os.path.isfile(path):
                shutil.copy2(path, out)
    for rel in ROLLING_FILES:
        path = os.path.join(workspace, rel)
        if os.path.isfile(path):
            os.makedirs(os.path.join(out, os.path.dirname(rel)), mode=0o700, exist_ok=True)
            shutil.copy2(path, os.path.join(out, rel))
    for root, dirs, files in os.walk(out):
        for name in dirs + files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode & ~0o077)
    os.chmod(out, 0o700)


def cmd_finish(p):
    """The logs and the report, once, at the very end of the build (the cleanup
    playbook's teardown calls it whatever happened before): the end of the
    teardown phase, the logs assembled in I(out), then the report."""
    workspace = p["workspace"]
    if not os.path.isdir(workspace):
        return {"written": False, "why": "no workspace"}
    phases_file = os.path.join(workspace, PHASES_FILE)
    # First, so that the copy of the record in the logs has the end too.
    append_event(phases_file, "teardown", "end", snapshot(workspace))
    collect_logs(workspace, p["out"])
    events = read_events(phases_file)
    teardown = p["teardown"] or {}
    _write(os.path.join(p["out"], "phases.json"), json.dumps(phase_times(events), indent=2) + "\n")
    _write(os.path.join(p["out"], "teardown.json"), json.dumps(teardown, indent=2) + "\n")
    report = build_report(
        events,
        verdict=final_verdict(p["verdict"], teardown),
        job=p["job"],
        build=p["build"],
        label=os.path.basename(os.path.normpath(workspace)),
        exercise=_load(os.path.join(workspace, "result.json"), {}),
        upgrade=_load(os.path.join(workspace, "upgrade.json")),
        teardown=teardown,
        generated=[_stamp()],
    )
    return write_report(p["out"], report)


def verdict_of(p):
    """The job's result as Zuul's post-run variables tell it."""
    if p["success"] is None:
        return "UNKNOWN"
    if p["success"]:
        return "SUCCESS"
    return "RETRY" if p["will_retry"] else "FAILURE"


def cmd_reached(p):
    started = reached(os.path.join(p["record"] or p["workspace"], PHASES_FILE))
    return {"recorded": started is not None, "reached": started or []}


def cmd_begin(p, check_mode=False):
    looked = cmd_reached(p)
    workspace = os.path.isdir(p["workspace"])
    converged = bool(p["unless_exists"]) and os.path.exists(p["unless_exists"])
    start = workspace and not converged and not check_mode
    if start:
        record(p["workspace"], p["phase"], "start")
    return dict(
        looked,
        workspace_exists=workspace,
        # Keyed by the path as the task wrote it (its ~ not expanded), so that
        # the task looks a result up with the same expression it passed.
        exists={path: os.path.exists(os.path.expanduser(path)) for path in p["paths"]},
        started=start,
        converged=converged,
    )


COMMANDS = {
    "sample": cmd_sample,
    "finish": cmd_finish,
    "reached": cmd_reached,
    "begin": cmd_begin,
}
REQUIRED = {
    "sample": ["phase", "event"],
    "finish": ["out"],
    "reached": [],
    "begin": ["phase"],
}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            command=dict(type="str", required=True, choices=sorted(COMMANDS)),
            workspace=dict(type="path", required=True),
            phase=dict(type="str"),
            event=dict(type="str", choices=["start", "end", "mark"]),
            out=dict(type="path"),
            success=dict(type="bool"),
            will_retry=dict(type="bool", default=False),
            job=dict(type="str", default=""),
            build=dict(type="str", default=""),
            teardown=dict(type="dict"),
            # str, not path: Ansible would expand ~ in the keys of exists.
            paths=dict(type="list", elements="str", default=[]),
            unless_exists=dict(type="path"),
            record=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = dict(module.params, verdict=verdict_of(module.params))
    missing = [k for k in REQUIRED[params["command"]] if not params[k]]
    if missing:
        module.fail_json(msg=f"{params['command']} needs {', '.join(missing)}")
    if params["command"] == "begin":
        # Its looks are read-only: check mode gets them, without the start.
        module.exit_json(changed=False, **cmd_begin(params, module.check_mode))
    if module.check_mode:
        module.exit_json(changed=False)
    module.exit_json(changed=False, **COMMANDS[params["command"]](params))


if __name__ == "__main__":
    main()
