"""./shard bench's session: every variant --repeat times, interleaved, then
shard jobs at once (the scaling); the result saved as JSON after each run, and
shown as a table or as that JSON."""

import contextlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from shard_jobs import paths
from shard_jobs.bench import BenchError
from shard_jobs.bench.launch import (
    SHARD,
    cloud_manifest,
    cloud_pids,
    command_env,
    finish_shard_job,
    label_of,
    new_build,
    run_cloud,
    run_floor,
    service_pids,
    shard_run_result,
    start_shard_job,
    wait_jobs,
)
from shard_jobs.bench.run_files import TaskIndex, ansible_counts, slowest_tasks
from shard_jobs.bench.sampling import (
    Sampler,
    TreeSampler,
    machine_info,
    measure,
    with_share,
)
from shard_jobs.bench.split import split as split_tree
from shard_jobs.bench.summary import median, notes, overhead, ratios, summarize
from shard_jobs.bench.table import render
from shard_jobs.bench.variants import (
    BENCH_CLOUD,
    DEFAULT_CLOUD_DIR,
    FLOOR_CACHE,
    FLOOR_PROFILE,
    FROM_SCRATCH,
    JOB,
    SHARD_JOBS,
)
from shard_jobs.settings import BenchSettings


class Bench:
    """One bench: its directory under ~/.shard-jobs/bench, its runs and its result."""

    def __init__(self, settings: BenchSettings):
        self.repeat = settings.repeat
        self.variants = list(settings.variants)
        self.scaling = settings.scaling
        self.split_run = settings.split
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.dir = paths.HOME / "bench" / stamp
        self.dir.mkdir(parents=True, exist_ok=True)
        self.json_path = settings.out or self.dir / "bench.json"
        # With --json, stdout is the result alone: progress goes to stderr.
        self.progress = sys.stderr if settings.json else sys.stdout
        self.runs = {v: [] for v in self.variants}
        self.result = {
            "started": stamp,
            "machine": machine_info(),
            "repeat": self.repeat,
            "variants": self.variants,
            "dir": str(self.dir),
        }
        self.default_manifest = None
        self.bench_cloud_up = False
        self._floor_build = None

    def log(self, msg):
        print(f"bench: {msg}", file=self.progress, flush=True)

    # -- variants
    def variant(self, name: str, n: int) -> dict:
        if name in SHARD_JOBS:
            return self.shard(n, SHARD_JOBS[name])
        if name == "floor":
            return self.floor(n)
        return self.from_scratch(n, name)

    def shard(self, n, job=JOB) -> dict:
        return with_share(self._shard_run(job)[1])

    def _shard_run(self, job, sampler=Sampler) -> tuple[str, dict]:
        """A measured ./shard run of job (its build id, and what measure and
        its result say), for the shard variants and --split alike."""
        build = new_build()
        out = measure(
            [label_of(build)],
            lambda _sampler: finish_shard_job(start_shard_job(self.dir, build, job)),
            sampler=sampler,
        )
        finished = {k: out.pop(k) for k in ("rc", "job", "build", "job_wall_s", "output")}
        out.update(shard_run_result(finished))
        return build, out

    def floor_build(self) -> dict:
        """Untimed, once: what the floor builds (the source release the shard
        job builds by default, fetched as ./shard run fetches it) and its
        dependency virtualenv (made once, as the job's build cache is)."""
        if self._floor_build is None:
            from shard_jobs import bench_floor, settings, sources

            package = yaml.safe_load(FLOOR_PROFILE.read_text())["package"]
            # The interpreter the job's build uses: python3 on ./shard run's PATH.
            python = paths.bin_path("python3")
            try:
                version = sources.pinned_version(package)
                src = sources.release_source(package, version)
                deps = bench_floor.prepare_deps(
                    src, paths.CONSTRAINTS, FLOOR_CACHE, python, self.log
                )
            except (settings.RunError, bench_floor.FloorError) as exc:
                raise BenchError(f"the floor's build: {exc}") from None
            self._floor_build = {
                "package": package,
                "version": version,
                "src": str(src),
                "constraints": str(paths.CONSTRAINTS),
                "cache": str(FLOOR_CACHE),
                "python": python,
                "deps": str(deps),
            }
            self.result["floor_build"] = self._floor_build
        return self._floor_build

    def floor(self, n) -> dict:
        manifest = self.default_manifest
        build = self.floor_build()
        workdir = self.dir / f"floor-{n}"
        out = measure(
            [str(workdir)],
            lambda _sampler: run_floor(manifest["secret_file"], workdir, build=build),
            cloud=lambda: cloud_pids(manifest),
        )
        # Untimed, a backstop: what a floor that died before its teardown left.
        for name in ("src", "venv"):
            for path in workdir.glob(f"*/{name}"):
                shutil.rmtree(path, ignore_errors=True)
        return out

    def from_scratch(self, n, variant: str) -> dict:
        fresh, cycle = FROM_SCRATCH[variant]["fresh"], FROM_SCRATCH[variant]["cycle"]
        workdir = self.dir / f"{variant}-{n}"
        # The cloud's logs of this run (cloud-up.log: its Ansible tasks).
        env = dict(BENCH_CLOUD, SHARD_CLOUD_LOG_DIR=str(workdir / "cloud-logs"))
        scopes = [BENCH_CLOUD["SHARD_CLOUD_DIR"], str(workdir)]
        if fresh:
            # A services' virtualenv that was never there, as on a fresh node:
            # cloud up installs every service into it from the package cache.
            venv = workdir / "services-venv"
            env["SHARD_CLOUD_VENV"] = str(venv)
            scopes.append(str(venv))
        # Untimed: a cloud that was never there (its own, never the default one).
        self.bench_cloud_up = True
        try:
            destroy_s = run_cloud("destroy", env)
        except BenchError as exc:
            return {"ok": False, "error": str(exc), "wall_s": 0.0, "cpu_s": 0.0}

        cloud_up = {}

        def work(sampler):
            try:
                up_s = run_cloud("up", env)
            except BenchError as exc:
                return {"ok": False, "error": str(exc)}
            manifest = cloud_up["manifest"] = cloud_manifest(BENCH_CLOUD["SHARD_CLOUD_DIR"])
            sampler.adopt(service_pids(manifest))
            floor = run_floor(manifest["secret_file"], workdir, venv=manifest["venv"], cycle=cycle)
            floor["steps"] = dict(floor["steps"], cloud_up=up_s)
            return floor

        # The bench cloud's processes: what cloud up started, and the backends.
        out = measure(scopes, work, cloud=lambda: cloud_pids(cloud_up.get("manifest")))
        out["destroy_before_s"] = destroy_s
        # The Ansible of the run is that of cloud up (the floor's cycle has none).
        out.update(ansible_counts(workdir / "cloud-logs" / "cloud-up.log"))
        if fresh:
            # Untimed: the cloud that runs from that virtualenv goes, then the virtualenv.
            try:
                out["destroy_after_s"] = run_cloud("destroy", env)
            except BenchError as exc:
                self.log(str(exc))
            shutil.rmtree(venv, ignore_errors=True)
            Path(f"{venv}.lock").unlink(missing_ok=True)
        return out

    def scale(self, jobs: int) -> dict:
        builds = [new_build() for _ in range(jobs)]

        def work(_sampler):
            started = [start_shard_job(self.dir, build) for build in builds]
            wait_jobs(started)
            return {"jobs_runs": [finish_shard_job(job) for job in started]}

        out = measure([label_of(build) for build in builds], work)
        index = TaskIndex()
        runs = [shard_run_result(job, index=index) for job in out.pop("jobs_runs")]
        return {
            "jobs": jobs,
            "wall_s": out["wall_s"],
            "job_wall_s": median([r["job_wall_s"] for r in runs]),
            "cpu_s": out["cpu_s"],
            "failures": sum(1 for r in runs if not r["ok"]),
            "peak_mem_mib": out["peak_mem_mib"],
            "openstack_processes": out["openstack_processes"],
            "runs": runs,
        }

    def split(self) -> dict:
        """One more ./shard run of the shard variant's job, not in the medians,
        its process tree walked every SPLIT_INTERVAL (TreeSampler) and each
        process classified (split.classify): where its harness CPU goes."""
        build, out = self._shard_run(JOB, sampler=TreeSampler)
        tree = out.pop("tree")
        report = {
            key: out.get(f"{key}_cpu_s") for key in ("code", "cloud", "harness", "other", "report")
        }
        return {
            "job": JOB,
            "build": build,
            "ok": out["ok"],
            "result": out["result"],
            "wall_s": out["wall_s"],
            "cpu_s": out["cpu_s"],
            "load1_before": out["load1_before"],
            "interval_s": tree["interval_s"],
            "walks": tree["walks"],
            "sampler_cpu_s": tree["sampler_cpu_s"],
            "module_processes": out.get("module_processes"),
            # The run's report.json's groups (its window): report is its machine CPU.
            "report_groups": report,
            **split_tree(tree["processes"], out["cpu_s"]),
        }

    # -- the whole
    def run(self) -> dict:
        needs_cloud = ("floor", *SHARD_JOBS)
        if any(v in self.variants for v in needs_cloud) or self.scaling or self.split_run:
            self.log("the default cloud: ./shard cloud up")
            # Its lines are progress too: on stderr with --json.
            self.progress.flush()
            up = subprocess.run([SHARD, "cloud", "up"], env=command_env(), stdout=self.progress)
            if up.returncode != 0:
                raise BenchError("the default cloud did not come up")
            from shard_jobs import cloud

            self.default_manifest = cloud.load_manifest(DEFAULT_CLOUD_DIR)
        try:
            for n in range(1, self.repeat + 1):
                for variant in self.variants:
                    self.log(f"{variant} {n}/{self.repeat} ...")
                    run = self.variant(variant, n)
                    self.runs[variant].append(run)
                    why = run.get("error") or run.get("result")
                    state = "ok" if run.get("ok") else f"FAILED ({why})"
                    self.log(
                        f"{variant} {n}/{self.repeat}: {state}, wall {run['wall_s']}s,"
                        f" CPU {run['cpu_s']}s"
                    )
                    self.save()
            if self.split_run:
                self.log(f"split: one more {JOB} run, its process tree sampled ...")
                self.result["split"] = self.split()
                s = self.result["split"]
                self.log(
                    f"split: {'ok' if s['ok'] else 'FAILED'}, wall {s['wall_s']}s,"
                    f" CPU {s['cpu_s']}s, {s['sampled_cpu_s']}s in {len(s['processes'])}"
                    " processes sampled"
                )
                self.save()
            scaling = []
            for jobs in self.scaling:
                if jobs == 1 and self.runs.get("shard"):
                    summary = summarize(self.runs["shard"])
                    scaling.append(
                        {
                            "jobs": 1,
                            "wall_s": summary["wall_s"],
                            "job_wall_s": summary["wall_s"],
                            "cpu_s": summary["cpu_s"],
                            "failures": summary["runs"] - summary["ok"],
                            "from": "the shard variant's runs (medians)",
                        }
                    )
                    continue
                self.log(f"scaling: {jobs} shard jobs at once ...")
                scaling.append(self.scale(jobs))
                s = scaling[-1]
                self.log(
                    f"scaling {jobs}: wall {s['wall_s']}s, {s['job_wall_s']}s per job,"
                    f" CPU {s['cpu_s']}s, {s['failures']} failed"
                )
                self.result["scaling"] = scaling
                self.save()
            self.result["scaling"] = scaling
        finally:
            if self.bench_cloud_up:
                self.log("destroying the bench cloud")
                try:
                    run_cloud("destroy", BENCH_CLOUD)
                except BenchError as exc:
                    self.log(str(exc))
        self.finish()
        return self.result

    def finish(self):
        self.result["summary"] = {v: summarize(r) for v, r in self.runs.items() if r}
        self.result["ratios"] = ratios(self.result["summary"])
        if self.runs.get("shard") and self.runs.get("floor"):
            self.result["overhead"] = overhead(self.runs["shard"], self.runs["floor"])
        shard_ok = [r for r in self.runs.get("shard", []) if r.get("ok")]
        if shard_ok:
            logs = paths.RUNS_DIR / shard_ok[-1]["build"] / "logs" / "job-output.txt"
            self.result["slowest_tasks"] = slowest_tasks(logs)
        self.result["notes"] = notes(self.result)
        self.save()

    def save(self):
        self.result["runs"] = self.runs
        self.json_path.parent.mkdir(parents=True, exist_ok=True)
        self.json_path.write_text(json.dumps(self.result, indent=2) + "\n")


def main(settings: BenchSettings) -> int:
    """The bench these settings ask for, its result shown; the exit status."""
    try:
        bench = Bench(settings)
        # --json: whatever prints progress in this process (the source release's
        # fetch, for one) goes to standard error with the bench's own lines.
        progress = (
            contextlib.redirect_stdout(sys.stderr) if settings.json else contextlib.nullcontext()
        )
        with progress:
            result = bench.run()
    except BenchError as exc:
        sys.stderr.write(f"bench: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("bench: interrupted\n")
        return 130
    if settings.json:
        print(json.dumps(result, indent=2))
    else:
        print()
        print(render(result))
        print(f"\nbench: JSON in {bench.json_path}")
    failed = [r for runs in bench.runs.values() for r in runs if not r.get("ok")]
    failed += [s for s in result.get("scaling", []) if s.get("failures")]
    return 1 if failed else 0
