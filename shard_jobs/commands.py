"""./shard run, ./shard janitor and ./shard bench: typed settings from the
command line, a prepared local run of the job (runner.LocalRun), its result
printed (output); the bench's session (shard_jobs.bench).

Bad input is one line on standard error, prefixed with the command's name, and
exit status 2; otherwise the exit status is the job's result.
"""

import json
import re
import shutil
import subprocess
import sys
import uuid

import yaml

from shard_jobs import ara_records, collection_requirements, output, paths, replay, zuul_config
from shard_jobs.rules import janitor as janitor_rules
from shard_jobs.runner import LocalRun
from shard_jobs.settings import BenchSettings, JanitorSettings, RunError, RunSettings
from shard_jobs.sources import local_trees, source_head


def _refuse(command: str, message: str) -> int:
    sys.stderr.write(f"{command}: {message}\n")
    return 2


def prepared_run(settings: RunSettings, command: str) -> LocalRun | None:
    """The job frozen and its run prepared; None after the one line that says why not."""
    try:
        run = LocalRun(settings)
        run.prepare()
    except (RunError, zuul_config.ConfigError) as exc:
        _refuse(command, str(exc))
        return None
    except subprocess.CalledProcessError as exc:
        stderr = exc.stderr or ""
        if isinstance(stderr, bytes):
            stderr = stderr.decode(errors="replace")
        why = stderr.strip().splitlines()[-1:] or [f"exit status {exc.returncode}"]
        _refuse(command, f"preparing the run failed: {' '.join(map(str, exc.cmd))}: {why[0]}")
        return None
    return run


def list_jobs(as_json: bool = False) -> int:
    """./shard run --list: the jobs of zuul.d/ a run can name, with their first line."""
    try:
        jobs = zuul_config.runnable_jobs(zuul_config.load(paths.REPO / "zuul.d"))
    except (zuul_config.ConfigError, yaml.YAMLError) as exc:
        return _refuse("run", str(exc).splitlines()[0])
    output.show_jobs(jobs, as_json)
    return 0


def run(args) -> int:
    """./shard run JOB, or a finished build's job again (--from-zuul)."""
    given = {}
    if args.from_zuul:
        if args.cleanup:
            return _refuse("run", "--from-zuul runs a build again: --cleanup takes --build")
        try:
            build = replay.read(args.from_zuul)
            trees = local_trees(args.src)
            given = replay.settings(build, args.job, trees)
            note = replay.tree_note(build, source_head(trees[build.project]))
        except RunError as exc:
            return _refuse("run", str(exc))
        if not args.json:
            print(f"run: replaying {build.describe()}", flush=True)
            if note:
                print(f"run: {note}", flush=True)
    settings = RunSettings.from_args(args, **given)
    with output.result_only(settings.json):
        outcome = _run_job(settings)
    if isinstance(outcome, int):
        return outcome
    summary, result = outcome
    output.show_run(summary, settings.json)
    if settings.cleanup:
        return 0 if result == "ABORTED" else 1  # the cleanup itself succeeded
    return 0 if result == "SUCCESS" else 1


def _run_job(settings: RunSettings):
    """Prepare and run the job: (summary, result), or an exit status for bad input."""
    if settings.cleanup and not settings.build:
        return _refuse("run", "--cleanup needs the --build of the run to clean up")
    # The collections the playbooks use (requirements.yml), checked offline
    # against the installed ansible bundle; Galaxy only when one is missing.
    problems = collection_requirements.ensure(paths.REPO, paths.bin_path("python"))
    if problems:
        sys.stderr.write("".join(f"run: {problem}\n" for problem in problems))
        return 2
    run = prepared_run(settings, "run")
    if run is None:
        return 2
    result = run.execute()
    summary = run.summary(result)
    # As Zuul's executor removes a build's work directory: the prepared sources
    # (a copy of each project) are not kept; the logs are. --cleanup --build
    # prepares them again.
    shutil.rmtree(run.src_root, ignore_errors=True)
    if settings.ara:
        index, why = ara_records.generate(run.log_root, run.private)
        summary["ara_report"] = str(index) if index else f"not generated: {why}"
    (run.log_root / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary, result


def janitor(args) -> int:
    """./shard janitor: the shard-janitor job, run here, and its report as a table."""
    settings = JanitorSettings.from_args(args)
    error = janitor_rules.age_error(settings.older_than, settings.force)
    if error:
        return _refuse("janitor", error.replace("older-than", "--older-than", 1))
    try:
        re.compile(settings.label_pattern)
    except re.error as exc:
        return _refuse("janitor", f"invalid --label-pattern {settings.label_pattern!r}: {exc}")
    build = uuid.uuid4().hex
    report = paths.RUNS_DIR / build / "logs" / "janitor.json"
    with output.result_only(settings.json):
        run = prepared_run(settings.job_settings(build, report), "janitor")
        if run is None:
            return 2
        result = run.execute()
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        sys.stderr.write(f"janitor: {result}; no report (see {run.log_root}/job-output.txt)\n")
        return 1
    output.show_janitor(data, result, report, settings.json)
    return 0 if result == "SUCCESS" else 1


def bench(args) -> int:
    """./shard bench: the variants measured, the result as a table or JSON."""
    try:
        settings = BenchSettings.from_args(args)
    except RunError as exc:
        return _refuse("bench", str(exc))
    from shard_jobs.bench import session

    return session.main(settings)
