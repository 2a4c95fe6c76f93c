# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""The efficiency report's page (report.html): a Jinja2 template and its data.

The shard_report module writes report.json on the node with the standard
library only; this page is rendered on the controller (Zuul's executor), by
the shard_report_html filter of roles/shard/filter_plugins/, and copied next
to report.json. Why there: Jinja2 is always on the controller (ansible-core
requires it), while the node's python3 need not have it, and the client
virtualenv that could is missing in the very builds whose report matters
most (a pre-run that failed before or while installing it). The node never
imports this module.

Autoescaping is on: every value the template prints (phase and process
names, the job, the teardown's error, the exercise's result) is escaped
unless the template marks it safe, and it marks nothing.
"""

import json

import jinja2
from ansible.module_utils.shard_phases import (
    CODE_UNDER_TEST,
    GROUPS,
    HARNESS,
    MACHINE,
    OTHER,
    TARGET_CLOUD,
)

# The title and colour of each CPU group of the report (shard_phases.GROUPS).
GROUP_TITLES = {
    CODE_UNDER_TEST: "code under test",
    TARGET_CLOUD: "target cloud",
    HARNESS: "harness",
    OTHER: "rest of the machine",
}
COLOURS = {
    CODE_UNDER_TEST: "#2e7d32",
    TARGET_CLOUD: "#1565c0",
    HARNESS: "#ef6c00",
    OTHER: "#9e9e9e",
}
PHASE_COLUMNS = (
    "phase",
    "starts at",
    "wall",
    "machine CPU",
    "code under test",
    "target cloud",
    "harness",
    "rest",
)
# Geometry of the timeline (pixels): row height, margins for the names on the
# left and the durations on the right, room for the marks above.
WIDTH, ROW, LEFT, RIGHT, TOP = 760, 26, 110, 64, 28
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 10**9)

TEMPLATE = """\
{%- macro key(group) -%}
<span class="key" style="background:{{ colours[group] }}"></span>{{ titles[group] }}
{%- endmacro -%}
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ r.job }} {{ r.build[:12] }}: {{ r.verdict }}</title>
<style>body{font:14px sans-serif;margin:2em;max-width:60em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1em}\
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}\
td.n{text-align:right}.verdict{font-weight:bold;color:{{ verdict_colour }}}\
.key{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}\
small{color:#555}</style></head><body>
<h1>{{ r.job or "shard job" }} <small>build {{ r.build }}</small></h1>
<p>Verdict: <span class="verdict">{{ r.verdict }}</span> &middot; shard {{ r.label }} \
&middot; {{ "%.1f" | format(r.seconds) }}s from the first phase to the last record \
&middot; teardown: {{ r.teardown.state }}</p>
{% if r.teardown.get("error") %}
<p>Teardown error: {{ r.teardown.error }}</p>
{% endif %}
<h2>Timeline</h2>
<p>Each bar is a life-cycle phase on the node; its colours split the CPU the machine spent \
during the phase: {% for g in groups %}{{ key(g) }}{{ " " if not loop.last else "" }}{% endfor %}. \
Gaps between bars are Ansible between roles and playbooks.</p>
<svg xmlns="http://www.w3.org/2000/svg" width="{{ svg.width }}" height="{{ svg.height }}" \
viewBox="0 0 {{ svg.width }} {{ svg.height }}" role="img" aria-label="phase timeline">
<style>text{font:12px sans-serif;fill:#222}.ax{stroke:#bbb;stroke-width:1}</style>
{% for t in svg.ticks %}
<line class="ax" x1="{{ t.x }}" y1="{{ svg.top - 6 }}" x2="{{ t.x }}" y2="{{ svg.y_axis }}"/>
<text x="{{ t.x }}" y="{{ svg.y_axis + 14 }}" text-anchor="middle">{{ t.label }}</text>
{% endfor %}
{% for b in svg.bars %}
<text x="{{ svg.left - 8 }}" y="{{ b.y + 16 }}" text-anchor="end">{{ b.name }}</text>
<g><title>{{ b.title }}</title>
{% for p in b.parts %}
<rect x="{{ p.x }}" y="{{ b.y + 4 }}" width="{{ p.width }}" height="{{ svg.row - 8 }}" \
fill="{{ p.colour }}"/>
{% endfor %}
{% if b.parts %}
<rect x="{{ b.x }}" y="{{ b.y + 4 }}" width="{{ b.width }}" height="{{ svg.row - 8 }}" \
fill="none" stroke="#333"/>
{% else %}
<rect x="{{ b.x }}" y="{{ b.y + 4 }}" width="{{ b.width }}" height="{{ svg.row - 8 }}" \
fill="#cfd8dc" stroke="#333"{% if b.unfinished %} stroke-dasharray="4 2"{% endif %}/>
{% endif %}
<text x="{{ b.label_x }}" y="{{ b.y + 16 }}">{{ b.label }}</text></g>
{% endfor %}
{% for m in svg.marks %}
<line x1="{{ m.x }}" y1="{{ svg.top - 10 }}" x2="{{ m.x }}" y2="{{ svg.y_axis }}" \
stroke="#c62828" stroke-dasharray="3 3"><title>{{ m.name }} at {{ m.at }}s</title></line>
<text x="{{ m.x }}" y="{{ svg.top - 12 }}" text-anchor="middle" fill="#c62828">{{ m.name }}</text>
{% endfor %}
</svg>
<table><thead><tr>{% for h in phase_columns %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{%- for p in r.phases %}{% set c = p.cpu or {} %}<tr><td>{{ p.name }}</td>\
<td><span class="n">{{ p.start | fmt }}</span></td><td>{{ p.seconds | fmt }}</td>\
{% for k in (machine,) + groups %}<td>{{ c.get(k) | fmt }}</td>{% endfor %}</tr>{% endfor -%}
</tbody></table>
<h2>CPU by process group</h2>
{% set cpu = r.cpu %}
{% if cpu.window %}
<p>From <em>{{ cpu.window.from }}</em> to <em>{{ cpu.window.to }}</em> \
({{ "%.1f" | format(cpu.window.seconds) }}s wall, {{ cpu.ncpu }} CPUs\
{% if cpu.get("load1") %}; 1-minute load {{ cpu.load1.min }}-{{ cpu.load1.max }}{% endif %}). \
Share of the machine's CPU spent in the code under test: \
<strong>{{ ((cpu.get("code_share") or 0) * 100) | fmt("%") }}</strong>.</p>
<table><thead><tr><th>group</th><th>CPU-seconds</th><th>what the number covers</th></tr>\
</thead><tbody>
{%- for g in groups %}<tr><td>{{ key(g) }}</td><td>{{ cpu.groups[g].seconds | fmt }}</td>\
<td>{{ cpu.groups[g].covers }}</td></tr>{% endfor -%}
<tr><td>{{ machine }}</td><td>{{ cpu[machine].seconds | fmt }}</td>\
<td>{{ cpu[machine].covers }}</td></tr>\
</tbody></table>
{% else %}
<p>No CPU snapshots were recorded (no phase ran on the node).</p>
{% endif %}
<h2>Created and deleted</h2>
{% if res.state == "pending" %}
<p>Teardown has not run yet: it adds what it found and deleted when it finishes.</p>
{% endif %}
{% if res.rows %}
<table><thead><tr><th>kind</th><th>name</th><th>fate</th></tr></thead><tbody>
{%- for item in res.rows %}<tr><td>{{ item.kind }}</td><td>{{ item.name }}</td><td>
{%- if item.fate == "left" %}<strong style="color:#c62828">left behind</strong>
{%- elif item.fate == "left only" %}left behind
{%- elif item.fate == "deleted" %}deleted by {{ item.by }}
{%- else %}unknown{% endif %}</td></tr>{% endfor -%}
</tbody></table>
{% elif res.state != "pending" %}
<p>Nothing carrying the build's label was found.</p>
{% endif %}
{% if r.get("upgrade") %}
<h2>Upgrade</h2>
{% set rolling = r.upgrade.get("rolling") %}
{% if rolling %}
<p>Rolling upgrade of {{ rolling.get("servers") }} shards, one at a time:
{{ rolling.get("servers_survived") }} of {{ rolling.get("servers") }} servers survived with their
allocations;
{% if rolling.get("api") %}the API answered {{ rolling.api.get("ok") }} of
{{ rolling.api.get("calls") }} calls
({{ "%.1f" | format((rolling.api.get("success_rate") or 0) * 100) }}%) during the upgrade.
{%- else %}no API figures.{% endif %}</p>
<table><thead><tr><th>shard</th><th>downtime (s)</th><th>server survived</th></tr></thead><tbody>
{%- for shard in rolling.get("shards") or [] %}<tr><td>{{ shard.label }}</td>
<td>{{ shard.get("downtime_seconds") }}</td>
<td>{{ "yes" if shard.get("survived") else "no" }}</td></tr>
{%- endfor -%}
</tbody></table>
{% endif %}
<pre>{{ r.upgrade | tojson_indented }}</pre>
{% endif %}
{% if r.get("exercise") %}
<h2>Exercise result</h2>
<pre>{{ r.exercise | tojson_indented }}</pre>
{% endif %}
<p><small>report.json holds the same data, with every phase event and CPU snapshot. \
Generated by shard_report.py at {{ (r.get("generated") or []) | join(", ") }}.</small></p>\
</body></html>
"""


def fmt(value, unit="s"):
    """A number of seconds (or percent) for the page; n/a when not measured."""
    if value is None:
        return "n/a"
    return f"{value:.1f}{unit}" if isinstance(value, (int, float)) else str(value)


def timeline(report):
    """The geometry of the phase timeline: one bar per phase on a time axis,
    split by who used the CPU during the phase, and the marks."""
    phases = report["phases"]
    total = max([report["seconds"]] + [p["end"] or p["start"] for p in phases] + [1.0])
    height = TOP + ROW * max(1, len(phases)) + 30
    scale = (WIDTH - LEFT - RIGHT) / total
    step = next(s for s in TICK_STEPS if total / s <= 10)
    ticks, tick = [], 0
    while tick <= total + 1e-9:
        ticks.append({"x": f"{LEFT + tick * scale:.1f}", "label": f"{tick:g}s"})
        tick += step
    bars = []
    for i, phase in enumerate(phases):
        end = phase["end"] if phase["end"] is not None else total
        x, w = LEFT + phase["start"] * scale, max(1.0, (end - phase["start"]) * scale)
        cpu = phase.get("cpu") or {}
        machine = cpu.get(MACHINE) or 0.0
        title = f"{phase['name']}: {fmt(phase['seconds'])}"
        if phase["end"] is None:
            title += " (did not end)"
        parts, offset = [], x
        for group in GROUPS if machine else ():
            part = w * (cpu.get(group) or 0.0) / machine
            if part > 0:
                parts.append(
                    {"x": f"{offset:.1f}", "width": f"{part:.1f}", "colour": COLOURS[group]}
                )
                offset += part
        bars.append(
            {
                "name": phase["name"],
                "y": TOP + i * ROW,
                "x": f"{x:.1f}",
                "width": f"{w:.1f}",
                "label_x": f"{x + w + 4:.1f}",
                "title": title,
                "parts": parts,
                "unfinished": phase["end"] is None,
                "label": fmt(phase["seconds"]) if phase["seconds"] is not None else "unfinished",
            }
        )
    marks = [
        {"x": f"{LEFT + m['at'] * scale:.1f}", "name": m["name"], "at": m["at"]}
        for m in report.get("marks", [])
    ]
    return {
        "width": WIDTH,
        "height": height,
        "top": TOP,
        "left": LEFT,
        "row": ROW,
        "y_axis": TOP + ROW * max(1, len(phases)) + 4,
        "ticks": ticks,
        "bars": bars,
        "marks": marks,
    }


def resource_rows(resources):
    """What the run created, each with its fate, then what was left that it did not
    create (found by teardown only)."""
    deleted = {(d["kind"], d["id"]) for d in resources["deleted"]}
    left = {(d["kind"], d["id"]) for d in resources["left"]}
    created = {(c["kind"], c["id"]) for c in resources["created"]}
    rows = []
    for item in resources["created"]:
        key = (item["kind"], item["id"])
        fate = "left" if key in left else "deleted" if key in deleted else "unknown"
        rows.append(
            {
                "kind": item["kind"],
                "name": str(item["name"]),
                "fate": fate,
                "by": item.get("by", "teardown"),
            }
        )
    for item in resources["left"]:
        if (item["kind"], item["id"]) not in created:
            rows.append({"kind": item["kind"], "name": str(item["name"]), "fate": "left only"})
    return {"state": resources["state"], "rows": rows}


_ENV = jinja2.Environment(
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)
_ENV.filters["fmt"] = fmt
_ENV.filters["tojson_indented"] = lambda value: json.dumps(value, indent=2)
_PAGE = _ENV.from_string(TEMPLATE)


def render(report):
    """report.html of a report (shard_report's report.json)."""
    return _PAGE.render(
        r=report,
        verdict_colour="#2e7d32" if report["verdict"] == "SUCCESS" else "#c62828",
        machine=MACHINE,
        groups=GROUPS,
        titles=GROUP_TITLES,
        colours=COLOURS,
        phase_columns=PHASE_COLUMNS,
        svg=timeline(report),
        res=resource_rows(report["resources"]),
    )
