"""What ./shard run and ./shard janitor print: the result as a table for people or,
with --json, the same data as JSON, alone on standard output."""

import contextlib
import io
import json
import os
from pathlib import Path

from shard_jobs.rules import phases


def show_run(summary: dict, as_json: bool) -> None:
    """./shard run's result: the summary (summary.json's content)."""
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary)


def report_summary(logs: Path) -> dict:
    """The efficiency report's files, verdict and CPU split ({} without one)."""
    try:
        report = json.loads((logs / "report.json").read_text())
    except (OSError, ValueError):
        return {}
    cpu = report.get("cpu") or {}
    return {
        "html": str(logs / "report.html"),
        "json": str(logs / "report.json"),
        "verdict": report.get("verdict"),
        "teardown": (report.get("teardown") or {}).get("state"),
        "seconds": report.get("seconds"),
        "cpu_seconds": {
            group: value.get("seconds") for group, value in (cpu.get("groups") or {}).items()
        },
        "machine_cpu_seconds": (cpu.get(phases.MACHINE) or {}).get("seconds"),
        "code_share": cpu.get("code_share"),
    }


def print_summary(summary: dict):
    print(f"\n{summary['job']} build {summary['build'][:12]}: {summary['result']}")
    for p in summary["playbooks"]:
        state = "ok" if p["rc"] == 0 else f"failed (rc {p['rc']})"
        print(f"  {p['phase']:<9} {p['playbook']:<36} {state:<16} {p['seconds']:7.1f}s")
    if summary["phases"]:
        print(
            "  phases: "
            + ", ".join(
                f"{name} {t['seconds']}s" for name, t in summary["phases"].items() if "seconds" in t
            )
        )
    exercise = summary["exercise"]
    if exercise and "landed_on" in exercise:
        print(f"  shard host {exercise.get('host')}, server landed on {exercise.get('landed_on')}")
    elif exercise:
        # A kind of shard without servers says what its exercise did.
        print(f"  shard {exercise.get('label')}: {exercise.get('summary', 'exercised')}")
    tempest = (exercise or {}).get("tempest")
    if tempest:
        tests, servers = tempest["tests"], tempest["servers"]
        print(
            f"  tempest: {tests['passed']} passed, {tests['failed']} failed, "
            f"{tests['skipped']} skipped; {servers['count']} server(s), on "
            + (", ".join(f"{h} ({n})" for h, n in sorted(servers["hosts"].items())) or "none")
        )
    upgrade = summary["upgrade"]
    if upgrade:
        source = upgrade["from"]
        print(f"  upgraded from {source['version'] or source['ref']} ({source['reason']})")
        print(
            f"  to {upgrade['to'].get('version')} {upgrade['to'].get('commit', '')[:12]},"
            f" downtime {upgrade.get('downtime_seconds')}s"
        )
    print(f"  teardown and leak check: {summary['teardown']}")
    report = summary.get("report") or {}
    if report:
        groups = report["cpu_seconds"]
        split = ", ".join(
            f"{name.replace('_', ' ')} {groups[name]:.1f}s"
            for name in phases.GROUPS
            if groups.get(name) is not None
        )
        share = report.get("code_share")
        print(
            f"  CPU: machine {report['machine_cpu_seconds'] or 0:.1f}s ({split})"
            + (f", {share * 100:.1f}% in the code under test" if share is not None else "")
        )
        print(f"  efficiency report: {report['html']}")
    print(f"  logs in {summary['logs']}")
    if "ara_report" in summary:
        print(f"  ARA report: {summary['ara_report']}")


def show_jobs(jobs: list[tuple[str, str]], as_json: bool) -> None:
    """./shard run --list: (job, first line of its description) pairs."""
    if as_json:
        print(json.dumps([{"job": name, "description": line} for name, line in jobs], indent=2))
    else:
        width = max(len(name) for name, _ in jobs)
        for name, line in jobs:
            print(f"{name:<{width}}  {line}")


def show_janitor(data: dict, result: str, report: Path, as_json: bool) -> None:
    """./shard janitor's result: its report (janitor.json) and the job's result."""
    if as_json:
        print(json.dumps(dict(data, result=result), indent=2))
        return
    verb = "would delete" if data["dry_run"] else "deleted"
    if not data["labels"]:
        print(f"janitor: nothing labelled older than {data['older_than']}")
    for label, why in sorted(data["labels"].items()):
        kinds = {
            kind: len([r for r in found if r["label"] == label])
            for kind, found in data["resources"].items()
        }
        what = ", ".join(f"{n} {kind}" for kind, n in kinds.items() if n)
        print(f"janitor: {verb} {label}: {what} ({why['reason']})")
    print(f"janitor: {result}; report {report}")


@contextlib.contextmanager
def result_only(enabled: bool):
    """--json: standard output holds the result alone. Progress lines (this program's
    and the playbooks') are not written; failure lines still go to standard error."""
    if not enabled:
        yield
        return
    previous = os.environ.get("SHARD_PROGRESS_QUIET")
    os.environ["SHARD_PROGRESS_QUIET"] = "1"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        if previous is None:
            os.environ.pop("SHARD_PROGRESS_QUIET", None)
        else:
            os.environ["SHARD_PROGRESS_QUIET"] = previous
