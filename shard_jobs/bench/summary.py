"""The result's figures: medians of each variant's runs, the ratios of the
shard run to the others, the harness overhead per phase, and the notes that
say what the figures mean."""

import statistics


def median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 4) if values else None


# The ratios the table prints: the shard run over each of the others.
RATIOS = (
    ("shard", "from-scratch-fresh"),
    ("shard", "from-scratch-preinstalled"),
    ("shard", "floor"),
    ("shard-tempest", "from-scratch-tempest"),
)


COLUMNS = (
    "wall_s",
    "cpu_s",
    "peak_mem_mib",
    "openstack_processes",
    "code_cpu_s",
    # The rest of the machine's CPU, by process group (the report's groups).
    "cloud_cpu_s",
    "harness_cpu_s",
    "other_cpu_s",
    # A shard run's report.json: the machine's CPU over the report's window.
    "report_cpu_s",
    "tasks",
    "module_processes",
)


def summarize(runs: list[dict]) -> dict:
    """Medians (and min, max) of the numeric columns of a variant's runs that
    passed (a failed run stops early: its numbers are not the variant's); of
    all of them when none passed."""
    passed = [r for r in runs if r.get("ok")]
    out = {"runs": len(runs), "ok": len(passed)}
    counted = passed or runs
    for key in COLUMNS:
        values = [r.get(key) for r in counted if r.get(key) is not None]
        out[key] = median(values)
        out[key + "_range"] = [min(values), max(values)] if values else None
    out["code_share"] = median([r.get("code_share") for r in counted])
    return out


def ratios(summary: dict) -> dict:
    """The shard run's wall and CPU over each other variant's (RATIOS)."""

    def ratio(a, b, key):
        x, y = summary.get(a, {}).get(key), summary.get(b, {}).get(key)
        return round(x / y, 2) if x and y else None

    return {f"{a}/{b}": {key: ratio(a, b, key) for key in ("wall_s", "cpu_s")} for a, b in RATIOS}


# A shard run's phases (report.json) that the floor does too, and its step.
FLOOR_STEPS = {
    "build": "build",
    "deploy": "deploy",
    "label": "label",
    "exercise": "exercise",
    "teardown": "teardown",
}


def overhead(shard_runs: list[dict], floor_runs: list[dict]) -> list[dict]:
    """Per phase of the shard run (its report.json), its median seconds next
    to the floor's for the same work (build, deploy, label, exercise,
    teardown); the other phases (pre-flight, guard) have no
    counterpart in the floor. Outside the phases: the shard run's starting of
    playbooks, fact gathering and ./shard run's preparation (the source tree
    as the merger makes it), against the floor's time outside the steps above
    (its clone of the source, its start)."""
    ok = [r for r in shard_runs if r.get("ok")] or shard_runs
    floor_runs = [r for r in floor_runs if r.get("ok")] or floor_runs
    names = []
    for run in ok:
        for name in run.get("phases") or {}:
            if name not in names:
                names.append(name)
    rows = []
    for name in names:
        shard_s = median([r["phases"].get(name) for r in ok if r.get("phases")])
        step = FLOOR_STEPS.get(name)
        floor_s = median([r["steps"].get(step) for r in floor_runs]) if step else 0.0
        rows.append({"step": name, "shard_s": shard_s, "floor_s": floor_s or 0.0})
    phases_total = sum(r["shard_s"] or 0 for r in rows)
    wall = median([r.get("job_wall_s") for r in ok])
    if wall is not None:
        rows.append(
            {
                "step": "outside the phases",
                "shard_s": round(wall - phases_total, 2),
                "floor_s": median(
                    [
                        r["floor_s"]
                        - sum(v for k, v in r["steps"].items() if k in FLOOR_STEPS.values())
                        for r in floor_runs
                        if r.get("floor_s")
                    ]
                )
                or 0.0,
            }
        )
    for row in rows:
        row["beyond_floor_s"] = (
            round(row["shard_s"] - row["floor_s"], 2) if row["shard_s"] is not None else None
        )
    return rows


def notes(result: dict) -> list[str]:
    ran = set(result.get("variants", []))
    out = [
        "CPU s and peak mem are machine-wide (/proc/stat, /proc/meminfo): whatever else runs "
        "on the machine at the same time is in them",
        "code CPU s is the service running the code under test (nova-compute; glance-api for "
        "shard-glance-api) from its start until it is stopped, from the run's report.json for "
        "the shard variants; code share is that over CPU s",
        "cloud, harness and other CPU s split the rest of the machine's CPU as a shard "
        "run's report.json does (cpu.groups): cloud is the target cloud's processes (the "
        "embedded cloud's services and their workers, MariaDB, RabbitMQ, whoever made them "
        "work), harness the run's own processes, other the rest of the machine (CPU s less "
        "the groups: the operating system, other work, the bench's sampler); for the floor, "
        "harness is bench_floor.py and what it ran (git, pip) less nova-compute, and for "
        "from-scratch, cloud up's processes as well (Ansible, pip, the services' database "
        "syncs), with its own cloud's processes as cloud; '-' where not measured",
        "tasks and module procs: the Ansible task results in the run's job-output.txt (for "
        "from-scratch: cloud up's cloud-up.log), and the module processes they started on the "
        "node (one per module run, per loop item and retry; copy and template two; none for "
        "what runs in ansible-playbook itself: set_fact, include_*, assert ...; checked "
        "against strace on ansible-core 2.19)",
    ]
    if "from-scratch-fresh" in ran:
        out.append(
            "from-scratch-fresh: as devstack on a fresh CI node, a cloud of its own from "
            "nothing with a new services' virtualenv installed from the package cache, then "
            "the floor's cycle on it (nova-compute from that virtualenv); the destroy before "
            "it, and the removal of that virtualenv after it, are not timed"
        )
    if "from-scratch-preinstalled" in ran:
        out.append(
            "from-scratch-preinstalled: the same, the services' virtualenv kept (its packages "
            "pre-installed)"
        )
    if "from-scratch-tempest" in ran:
        out.append(
            "from-scratch-tempest: from-scratch-fresh, then after the floor's exercise what "
            "shard-nova-compute-tempest runs after its own (bench_tempest.py): tempest "
            "installed into a new virtualenv by the role's module, as on a fresh node, the "
            "same accounts, tempest.conf, selection and script, each server checked; its "
            "modules run without Ansible, one process each. shard-tempest's tempest "
            "virtualenv is the node's cache (made once, as a job's node keeps it)"
        )
    if "floor" in ran:
        build = result.get("floor_build") or {}
        what = f"{build['package']} {build['version']}" if build else "the source release"
        out.append(
            f"floor: bench_floor.py, the shard job's work without Ansible: the build of "
            f"{what} (a clone of the source, then, timed as the step build, pip install "
            "--no-deps -e into a virtualenv layered on a cached dependency virtualenv, as "
            "roles/shard_build does), nova-compute from that build, the exercise (boot on "
            "the shard's trait, stop, start, reboot, delete) and teardown"
        )
    for variant, s in (result.get("summary") or {}).items():
        report, cpu = s.get("report_cpu_s"), s.get("cpu_s")
        if report is not None and cpu:
            out.append(
                f"{variant}: code, cloud, harness and other CPU s are its report.json's, over "
                f"the report's window (pre-flight's start to teardown's end): {report:.1f} of "
                f"the run's {cpu:.1f} CPU s (medians); the rest is ./shard run outside it (its "
                "preparation and the first playbook's start before, its end after)"
            )
    unknown = sorted(
        {
            t
            for runs in result.get("runs", {}).values()
            for r in runs
            for t in r.get("unknown_tasks") or []
        }
    )
    if unknown:
        out.append(
            f"module procs is a lower bound: {len(unknown)} task(s) of the runs are not in "
            "the repository's roles and playbooks as they are now (renamed since?), "
            f"e.g. {unknown[0]!r}"
        )
    loads = [r.get("load1_before") for runs in result.get("runs", {}).values() for r in runs]
    loads = [v for v in loads if v is not None]
    if loads:
        out.append(
            f"1-minute load before each run: {min(loads):.1f} to {max(loads):.1f} "
            f"on {result['machine']['cpus']} CPUs"
        )
    return out
