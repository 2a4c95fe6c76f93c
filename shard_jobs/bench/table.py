"""The bench's result as text: the table of medians, the ratios, the scaling,
the harness overhead, the slowest tasks and the notes."""


def _fmt(value, spec=".1f", none="-"):
    return none if value is None else format(value, spec)


def format_table(headers: list[str], rows: list[list]) -> str:
    """A plain text table: the first column left-aligned, the others right-aligned."""
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        parts = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render(result: dict) -> str:
    out = []
    machine = result["machine"]
    out.append(
        f"shard bench {result['started']}: {machine['cpus']} CPUs ({machine['cpu_model']}), "
        f"{machine['mem_gib']} GiB, {machine['os']}; repeat {result['repeat']}, medians"
    )
    summary = result["summary"]
    rows = []
    for variant in result["variants"]:
        s = summary.get(variant)
        if not s:
            continue
        rows.append(
            [
                variant,
                _fmt(s["wall_s"]),
                _fmt(s["cpu_s"]),
                _fmt(s["peak_mem_mib"], ".0f"),
                _fmt(s["openstack_processes"], ".0f"),
                _fmt(s["code_cpu_s"]),
                _fmt(s["code_share"] * 100, ".1f") + "%" if s["code_share"] is not None else "-",
                _fmt(s.get("cloud_cpu_s")),
                _fmt(s.get("harness_cpu_s")),
                _fmt(s.get("other_cpu_s")),
                _fmt(s.get("tasks"), ".0f"),
                _fmt(s.get("module_processes"), ".0f"),
                f"{s['ok']}/{s['runs']}",
            ]
        )
    out.append(
        format_table(
            [
                "variant",
                "wall s",
                "CPU s",
                "peak mem MiB",
                "OpenStack procs",
                "code CPU s",
                "code share",
                "cloud CPU s",
                "harness CPU s",
                "other CPU s",
                "tasks",
                "module procs",
                "ok",
            ],
            rows,
        )
    )
    ratio_rows = [
        [name, _fmt(r["wall_s"], ".2f"), _fmt(r["cpu_s"], ".2f")]
        for name, r in result["ratios"].items()
        if r["wall_s"] is not None or r["cpu_s"] is not None
    ]
    if ratio_rows:
        out += ["", format_table(["ratio", "wall", "CPU"], ratio_rows)]
    if result.get("scaling"):
        cpus = machine.get("cpus") or 1
        rows = [
            [
                str(s["jobs"]),
                _fmt(s["wall_s"]),
                _fmt(s["job_wall_s"]),
                _fmt(s["cpu_s"]),
                _fmt(s["cpu_s"] / s["jobs"] if s["cpu_s"] is not None else None),
                # The shortest wall that much CPU allows on this machine: where
                # it is close to the wall, the jobs waited for the CPUs.
                _fmt(s["cpu_s"] / cpus if s["cpu_s"] is not None else None),
                str(s["failures"]),
            ]
            for s in result["scaling"]
        ]
        out += [
            "",
            "scaling: shard jobs started at once",
            format_table(
                [
                    "jobs",
                    "wall s",
                    "wall s per job",
                    "CPU s",
                    "CPU s per job",
                    f"CPU s / {cpus} CPUs",
                    "failures",
                ],
                rows,
            ),
        ]
    if result.get("overhead"):
        rows = [
            [r["step"], _fmt(r["shard_s"]), _fmt(r["floor_s"]), _fmt(r["beyond_floor_s"])]
            for r in result["overhead"]
        ]
        total = [r["beyond_floor_s"] for r in result["overhead"] if r["beyond_floor_s"]]
        rows.append(["total", "", "", _fmt(sum(total))])
        out += [
            "",
            "harness overhead: a shard run's phases against the floor (medians)",
            format_table(["phase", "shard s", "floor s", "beyond floor s"], rows),
        ]
    if result.get("split"):
        out += ["", *render_split(result["split"])]
    if result.get("slowest_tasks"):
        out += ["", "slowest tasks of the last shard run:"]
        out += [f"  {t['seconds']:6.1f}s  {t['task']}" for t in result["slowest_tasks"]]
    if result.get("notes"):
        out += [""] + [f"note: {n}" for n in result["notes"]]
    return "\n".join(out)


def _share(value):
    return "-" if value is None else f"{value * 100:.1f}%"


def render_split(split: dict) -> list[str]:
    """--split's table: where one more shard run's CPU went, by process group."""
    ms = round(split["interval_s"] * 1000)
    state = "" if split["ok"] else f", FAILED ({split['result']})"
    lines = [
        f"where a shard run's harness CPU goes: one more ./shard run {split['job']} (not in "
        f"the medians{state}), its process tree walked every {ms} ms; wall "
        f"{_fmt(split['wall_s'])}s, machine CPU {_fmt(split['cpu_s'])}s"
    ]
    rows = [
        [g["label"], str(g["processes"]), _fmt(g["cpu_s"], ".2f"), _share(g["share"])]
        for g in split["groups"]
    ]
    rows.append(
        [
            "sampled, in all",
            str(len(split["processes"])),
            _fmt(split["sampled_cpu_s"], ".2f"),
            _share(split["sampled_share"]),
        ]
    )
    lines.append(format_table(["group", "processes", "CPU s", "share"], rows))
    report = split.get("report_groups") or {}
    lines.append(
        "note: share is of the run's machine CPU (every process of the machine, /proc/stat); "
        "each process counts its own user+system CPU as last seen: a process shorter than the "
        f"sampling interval ({ms} ms) is missed, and so is what a process used after the last "
        f"walk that saw it; the sampler's own CPU ({_fmt(split.get('sampler_cpu_s'), '.2f')} s "
        f"for {split.get('walks')} walks, in the bench's process) is outside the run's groups, "
        "in the machine's"
    )
    lines.append(
        f"note: this run's report.json, over its window ({_fmt(report.get('report'))} CPU s): "
        f"code under test {_fmt(report.get('code'))}, cloud {_fmt(report.get('cloud'))}, "
        f"harness {_fmt(report.get('harness'))}, other {_fmt(report.get('other'))}; module "
        f"processes by its log: {_fmt(split.get('module_processes'), '.0f')}"
    )
    return lines
