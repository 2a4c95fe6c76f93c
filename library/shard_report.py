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
  - C(report) ends the collect-logs phase and writes report.json and
    report.html (phase timeline, CPU per process group, what the run
    created, the verdict) and phases.json (seconds per phase) into I(out).
  - C(finish), after teardown, adds what teardown found, deleted and left
    (teardown.json), the end of the teardown phase and the verdict it makes,
    and rewrites the report (or writes one from the phases, with I(verdict),
    when the logs were never collected, as after a cancelled build).
  - C(reached) reads which phases the build started (read-only).
  - A timing record and the job's logs, not a change to the node - it always
    reports C(changed=false), so that a converged role stays idempotent.
options:
  command:
    description: What to do.
    type: str
    required: true
    choices: [sample, report, finish, reached]
  workspace:
    description: The build's workspace (phases.jsonl, result.json, run/ with the pid files).
    type: path
    required: true
  phase:
    description: The phase of a C(sample) event.
    type: str
  event:
    description: The kind of a C(sample) event.
    type: str
    choices: [start, end, mark]
  out:
    description: Where C(report) and C(finish) write report.json, report.html, teardown.json.
    type: path
  success:
    description:
      - Whether the job succeeded so far (Zuul's C(zuul_success) in post-run);
        unset when not known. With I(will_retry) it makes the verdict, for
        C(report), and for C(finish) only when there is no report yet (the
        logs were never collected).
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

- name: Write the efficiency report
  shard_report:
    command: report
    workspace: /home/zuul/.shard-jobs/builds/shard-3f2a9c01b7d4
    out: /home/zuul/.shard-jobs/builds/shard-3f2a9c01b7d4/zuul-logs
    verdict: SUCCESS
"""

RETURN = r"""
written:
  description: Whether a report was written (C(report), C(finish)).
  returned: when I(command) is report or finish
  type: bool
verdict:
  description: The verdict the report carries.
  returned: when a report was written
  type: str
recorded:
  description: Whether the build has a phase record (C(reached)).
  returned: when I(command) is reached
  type: bool
reached:
  description: The phases the build started, in order (C(reached)).
  returned: when I(command) is reached
  type: list
  elements: str
why:
  description: Why no report was written.
  returned: when no report was written
  type: str
"""

import html
import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.shard_phases import (
    PHASES_FILE,
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
GROUPS = ("code_under_test", "target_cloud", "harness", "other")
GROUP_TITLES = {
    "code_under_test": "code under test",
    "target_cloud": "target cloud",
    "harness": "harness",
    "other": "rest of the machine",
}
COLOURS = {
    "code_under_test": "#2e7d32",
    "target_cloud": "#1565c0",
    "harness": "#ef6c00",
    "other": "#9e9e9e",
}


COVERS = {
    "code_under_test": (
        "the build's service processes (pid files in the workspace's run/) and their "
        "descendants: user+system CPU from their start to the last snapshot that saw them "
        "running (a service stopped by teardown is counted until the snapshot before the stop)"
    ),
    "target_cloud": (
        "the target cloud's processes on this machine (named by ./shard run: the embedded "
        "cloud's services and their workers, MariaDB, RabbitMQ), whoever made them work: "
        "other jobs using the same cloud at the same time are included"
    ),
    "target_cloud_absent": (
        "not measured: the target cloud does not run on this machine (or nobody named its "
        "processes); its work for this job happens elsewhere"
    ),
    "harness": (
        "the job's own process tree on this machine: ./shard run, every ansible-playbook it "
        "ran, their workers and module processes, pip, the OpenStack client calls"
    ),
    "harness_absent": (
        "not measured per process: Ansible runs on the executor, not on this node; the "
        "module processes it starts here are in the rest of the machine"
    ),
    "other": (
        "everything else the machine's CPUs did in the window (/proc/stat busy time minus "
        "the groups above): other people's jobs on a shared machine, the operating system, "
        "and what sampling between snapshots missed"
    ),
    "machine": "busy time of all the machine's CPUs in the window, from /proc/stat",
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
    cpu = {"window": None, "groups": {}, "machine": None, "ncpu": first.get("ncpu")}
    if totals:
        cpu["window"] = {
            "from": next(e["phase"] + " " + e["event"] for e in events if e.get("cpu")),
            "to": next(e["phase"] + " " + e["event"] for e in reversed(events) if e.get("cpu")),
            "seconds": round(t1 - t0, 2),
        }
        cpu["machine"] = {"seconds": totals["machine"], "covers": COVERS["machine"]}
        for group in GROUPS:
            value = totals[group]
            covers = COVERS[group]
            if value is None:
                covers = COVERS[group + "_absent"]
            cpu["groups"][group] = {"seconds": value, "covers": covers}
        code = totals["code_under_test"] or 0.0
        cpu["code_share"] = round(code / totals["machine"], 3) if totals["machine"] else None
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
            for k in ("from", "to", "downtime_seconds", "verified")
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


# ------------------------------------------------------------------ HTML


def _fmt(value, unit="s"):
    if value is None:
        return "n/a"
    return f"{value:.1f}{unit}" if isinstance(value, (int, float)) else html.escape(str(value))


def render_svg(report, width=760):
    """The phases on a time axis, one row each, with the CPU mix of each phase."""
    phases = [p for p in report["phases"]]
    total = max([report["seconds"]] + [p["end"] or p["start"] for p in phases] + [1.0])
    row, left, right, top = 26, 110, 64, 28
    height = top + row * max(1, len(phases)) + 30
    scale = (width - left - right) / total
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="phase timeline">',
        "<style>text{font:12px sans-serif;fill:#222}.ax{stroke:#bbb;stroke-width:1}</style>",
    ]
    # Axis and ticks.
    step = next(
        s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 10**9) if total / s <= 10
    )
    y_axis = top + row * max(1, len(phases)) + 4
    tick = 0
    while tick <= total + 1e-9:
        x = left + tick * scale
        out.append(f'<line class="ax" x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{y_axis}"/>')
        out.append(f'<text x="{x:.1f}" y="{y_axis + 14}" text-anchor="middle">{tick:g}s</text>')
        tick += step
    for i, phase in enumerate(phases):
        y = top + i * row
        name = html.escape(phase["name"])
        out.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end">{name}</text>')
        end = phase["end"] if phase["end"] is not None else total
        x, w = left + phase["start"] * scale, max(1.0, (end - phase["start"]) * scale)
        cpu = phase.get("cpu") or {}
        machine = cpu.get("machine") or 0.0
        title = f"{name}: {_fmt(phase['seconds'])}"
        if phase["end"] is None:
            title += " (did not end)"
        # The bar is split by who used the CPU during the phase.
        parts = [(g, cpu.get(g) or 0.0) for g in GROUPS] if machine else []
        out.append(f"<g><title>{html.escape(title)}</title>")
        if parts:
            offset = x
            for group, value in parts:
                part = w * value / machine
                if part <= 0:
                    continue
                out.append(
                    f'<rect x="{offset:.1f}" y="{y + 4}" width="{part:.1f}" height="{row - 8}" '
                    f'fill="{COLOURS[group]}"/>'
                )
                offset += part
            out.append(
                f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row - 8}" '
                'fill="none" stroke="#333"/>'
            )
        else:
            dash = ' stroke-dasharray="4 2"' if phase["end"] is None else ""
            out.append(
                f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row - 8}" '
                f'fill="#cfd8dc" stroke="#333"{dash}/>'
            )
        label = _fmt(phase["seconds"]) if phase["seconds"] is not None else "unfinished"
        out.append(f'<text x="{x + w + 4:.1f}" y="{y + 16}">{label}</text></g>')
    for mark in report.get("marks", []):
        x = left + mark["at"] * scale
        out.append(
            f'<line x1="{x:.1f}" y1="{top - 10}" x2="{x:.1f}" y2="{y_axis}" stroke="#c62828" '
            f'stroke-dasharray="3 3"><title>{html.escape(mark["name"])} at {mark["at"]}s'
            "</title></line>"
        )
        out.append(
            f'<text x="{x:.1f}" y="{top - 12}" text-anchor="middle" fill="#c62828">'
            f"{html.escape(mark['name'])}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)


def _table(headers, rows):
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report):
    esc = html.escape
    verdict = report["verdict"]
    colour = "#2e7d32" if verdict == "SUCCESS" else "#c62828"
    cpu = report["cpu"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(report['job'])} {esc(report['build'][:12])}: {esc(verdict)}</title>",
        "<style>body{font:14px sans-serif;margin:2em;max-width:60em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1em}"
        "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}"
        "td.n{text-align:right}.verdict{font-weight:bold;color:" + colour + "}"
        ".key{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}"
        "small{color:#555}</style></head><body>",
        f"<h1>{esc(report['job'] or 'shard job')} <small>build {esc(report['build'])}</small></h1>",
        f'<p>Verdict: <span class="verdict">{esc(verdict)}</span>'
        f" &middot; shard {esc(report['label'])}"
        f" &middot; {report['seconds']:.1f}s from the first phase to the last record"
        f" &middot; teardown: {esc(report['teardown']['state'])}</p>",
    ]
    if report["teardown"].get("error"):
        parts.append(f"<p>Teardown error: {esc(str(report['teardown']['error']))}</p>")
    parts.append("<h2>Timeline</h2>")
    parts.append(
        "<p>Each bar is a life-cycle phase on the node; its colours split the CPU the "
        "machine spent during the phase: "
        + " ".join(
            f'<span class="key" style="background:{COLOURS[g]}"></span>{esc(GROUP_TITLES[g])}'
            for g in GROUPS
        )
        + ". Gaps between bars are Ansible between roles and playbooks.</p>"
    )
    parts.append(render_svg(report))
    rows = []
    for phase in report["phases"]:
        c = phase.get("cpu") or {}
        rows.append(
            [
                esc(phase["name"]),
                f'<span class="n">{_fmt(phase["start"])}</span>',
                _fmt(phase["seconds"]),
                _fmt(c.get("machine")),
                _fmt(c.get("code_under_test")),
                _fmt(c.get("target_cloud")),
                _fmt(c.get("harness")),
                _fmt(c.get("other")),
            ]
        )
    parts.append(
        _table(
            [
                "phase",
                "starts at",
                "wall",
                "machine CPU",
                "code under test",
                "target cloud",
                "harness",
                "rest",
            ],
            rows,
        )
    )
    parts.append("<h2>CPU by process group</h2>")
    if cpu.get("window"):
        window = cpu["window"]
        load = cpu.get("load1")
        load_text = f"; 1-minute load {load['min']}-{load['max']}" if load else ""
        parts.append(
            f"<p>From <em>{esc(window['from'])}</em> to <em>{esc(window['to'])}</em> "
            f"({window['seconds']:.1f}s wall, {cpu.get('ncpu')} CPUs{load_text}). "
            f"Share of the machine's CPU spent in the code under test: "
            f"<strong>{_fmt((cpu.get('code_share') or 0) * 100, '%')}</strong>.</p>"
        )
        rows = [
            [
                f'<span class="key" style="background:{COLOURS[g]}"></span>{esc(GROUP_TITLES[g])}',
                _fmt(cpu["groups"][g]["seconds"]),
                esc(cpu["groups"][g]["covers"]),
            ]
            for g in GROUPS
        ]
        rows.append(["machine", _fmt(cpu["machine"]["seconds"]), esc(cpu["machine"]["covers"])])
        parts.append(_table(["group", "CPU-seconds", "what the number covers"], rows))
    else:
        parts.append("<p>No CPU snapshots were recorded (no phase ran on the node).</p>")
    parts.append("<h2>Created and deleted</h2>")
    res = report["resources"]
    if res["state"] == "pending":
        parts.append(
            "<p>Teardown has not run yet: it adds what it found and deleted when it finishes.</p>"
        )
    deleted = {(d["kind"], d["id"]) for d in res["deleted"]}
    left = {(d["kind"], d["id"]) for d in res["left"]}
    rows = []
    for item in res["created"]:
        key = (item["kind"], item["id"])
        if key in left:
            fate = '<strong style="color:#c62828">left behind</strong>'
        elif key in deleted:
            fate = "deleted by " + esc(item.get("by", "teardown"))
        else:
            fate = "unknown"
        rows.append([esc(item["kind"]), esc(str(item["name"])), fate])
    for item in res["left"]:
        if not any((c["kind"], c["id"]) == (item["kind"], item["id"]) for c in res["created"]):
            rows.append([esc(item["kind"]), esc(str(item["name"])), "left behind"])
    if rows:
        parts.append(_table(["kind", "name", "fate"], rows))
    elif res["state"] != "pending":
        parts.append("<p>Nothing carrying the build's label was found.</p>")
    if report.get("upgrade"):
        up = report["upgrade"]
        parts.append("<h2>Upgrade</h2>")
        parts.append(f"<pre>{esc(json.dumps(up, indent=2))}</pre>")
    if report.get("exercise"):
        parts.append("<h2>Exercise result</h2>")
        parts.append(f"<pre>{esc(json.dumps(report['exercise'], indent=2))}</pre>")
    parts.append(
        "<p><small>report.json holds the same data, with every phase event and CPU "
        "snapshot. Generated by shard_report.py at "
        + esc(", ".join(report.get("generated") or []))
        + ".</small></p></body></html>"
    )
    return "\n".join(parts) + "\n"


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
    os.makedirs(out, mode=0o700, exist_ok=True)
    _write(os.path.join(out, "report.json"), json.dumps(report, indent=2) + "\n")
    _write(os.path.join(out, "report.html"), render_html(report))


def _stamp():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def cmd_sample(p):
    record(p["workspace"], p["phase"], p["event"])
    return {}


def cmd_report(p):
    phases_file = os.path.join(p["workspace"], PHASES_FILE)
    if not os.path.isdir(p["workspace"]):
        return {"written": False, "why": "no workspace"}
    append_event(phases_file, "collect-logs", "end", snapshot(p["workspace"]))
    events = read_events(phases_file)
    os.makedirs(p["out"], mode=0o700, exist_ok=True)
    _write(os.path.join(p["out"], "phases.json"), json.dumps(phase_times(events), indent=2) + "\n")
    report = build_report(
        events,
        verdict=p["verdict"],
        job=p["job"],
        build=p["build"],
        label=os.path.basename(os.path.normpath(p["workspace"])),
        exercise=_load(os.path.join(p["workspace"], "result.json"), {}),
        upgrade=_load(os.path.join(p["workspace"], "upgrade.json")),
        generated=[_stamp()],
    )
    write_report(p["out"], report)
    return {"written": True, "verdict": report["verdict"]}


def cmd_finish(p):
    previous = _load(os.path.join(p["out"], "report.json"))
    phases_file = os.path.join(p["workspace"], PHASES_FILE)
    if not isinstance(previous, dict) or previous.get("schema") != SCHEMA:
        if not p["verdict"] or not os.path.isfile(phases_file):
            return {"written": False, "why": "no report to finish"}
        # The logs were never collected (a cancelled build): a report of what
        # the phases recorded, with the verdict the cleanup playbook knows.
        previous = {
            "verdict": p["verdict"],
            "job": p["job"],
            "build": p["build"],
            "label": os.path.basename(os.path.normpath(p["workspace"])),
            "exercise": _load(os.path.join(p["workspace"], "result.json"), {}),
            "upgrade": _load(os.path.join(p["workspace"], "upgrade.json")),
        }
    teardown = p["teardown"] or {}
    if os.path.isdir(p["workspace"]):
        append_event(phases_file, "teardown", "end", snapshot(p["workspace"]))
        events = read_events(phases_file)
    else:
        events = list(previous.get("events") or [])
        events.append(
            {
                "phase": "teardown",
                "event": "end",
                "time": time.time(),
                "cpu": snapshot(p["workspace"]),
            }
        )
    os.makedirs(p["out"], mode=0o700, exist_ok=True)
    _write(os.path.join(p["out"], "teardown.json"), json.dumps(teardown, indent=2) + "\n")
    report = build_report(
        events,
        verdict=final_verdict(previous["verdict"], teardown),
        job=previous.get("job", ""),
        build=previous.get("build", ""),
        label=previous.get("label", ""),
        exercise=previous.get("exercise"),
        upgrade=previous.get("upgrade"),
        teardown=teardown,
        generated=(previous.get("generated") or []) + [_stamp()],
    )
    write_report(p["out"], report)
    return {"written": True, "verdict": report["verdict"]}


def verdict_of(p):
    """The job's result as Zuul's post-run variables tell it."""
    if p["success"] is None:
        return "UNKNOWN"
    if p["success"]:
        return "SUCCESS"
    return "RETRY" if p["will_retry"] else "FAILURE"


def cmd_reached(p):
    started = reached(os.path.join(p["workspace"], PHASES_FILE))
    return {"recorded": started is not None, "reached": started or []}


COMMANDS = {
    "sample": cmd_sample,
    "report": cmd_report,
    "finish": cmd_finish,
    "reached": cmd_reached,
}
REQUIRED = {"sample": ["phase", "event"], "report": ["out"], "finish": ["out"], "reached": []}


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
        ),
        supports_check_mode=True,
    )
    params = dict(module.params, verdict=verdict_of(module.params))
    missing = [k for k in REQUIRED[params["command"]] if not params[k]]
    if missing:
        module.fail_json(msg=f"{params['command']} needs {', '.join(missing)}")
    if module.check_mode:
        module.exit_json(changed=False)
    module.exit_json(changed=False, **COMMANDS[params["command"]](params))


if __name__ == "__main__":
    main()
