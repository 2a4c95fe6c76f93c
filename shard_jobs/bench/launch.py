"""One run of a variant, as a process: ./shard run of a job (started, waited
for, its figures read from its run directory), bench_floor.py, and ./shard cloud
of the bench's own cloud."""

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

from shard_jobs import paths
from shard_jobs.bench import BenchError
from shard_jobs.bench.run_files import read_run
from shard_jobs.bench.variants import JOB
from shard_jobs.rules import labels, processes, waits

SHARD = str(paths.REPO / "shard")


def command_env(extra=None) -> dict:
    """The environment of a command: this one for the default cloud; for the bench's
    own cloud (extra), nothing of the default cloud's SHARD_CLOUD_* settings."""
    if extra is None:
        return dict(os.environ)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARD_CLOUD_")}
    env.update(extra)
    return env


def new_build() -> str:
    """A build id, as Zuul's; the run's label (shard-<12 hex>) is derived from it."""
    return uuid.uuid4().hex


def start_shard_job(workdir: Path, build: str, job: str = JOB):
    """./shard run JOB as a process, with a build id known in advance."""
    log = open(workdir / f"{labels.label_for(build)}.out", "w+")  # noqa: SIM115 (closed in finish)
    proc = subprocess.Popen(
        [SHARD, "run", job, "--json", "--build", build],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=command_env(),
    )
    return {"proc": proc, "build": build, "job": job, "log": log, "start": time.monotonic()}


def label_of(build: str) -> str:
    return labels.label_for(build)


def wait_jobs(jobs: list[dict]):
    """Wait for every job, noting when each one ended (within a look, 0.2 s).

    No time limit of its own: each ./shard run ends on its jobs' timeouts."""

    def all_ended():
        for job in jobs:
            if "end" not in job and job["proc"].poll() is not None:
                job["end"] = time.monotonic()
        return all("end" in job for job in jobs)

    waits.wait_until(all_ended, deadline=float("inf"), interval=0.2)


def finish_shard_job(job) -> dict:
    """Wait until a ./shard run ends: nothing else, as this is measured."""
    wait_jobs([job])
    job["log"].close()
    return {
        "rc": job["proc"].returncode,
        "job": job["job"],
        "build": job["build"],
        "job_wall_s": round(job["end"] - job["start"], 1),
        "output": job["log"].name,
    }


def shard_run_result(finished: dict, runs_dir: Path | None = None, index=None) -> dict:
    """A finished ./shard run's figures, from the files it left (read_run);
    read after the measured window, as reading them is the bench's work."""
    run = read_run(finished["build"], runs_dir, index)
    result = run.pop("result") or f"exit {finished['rc']}"
    out = {k: v for k, v in finished.items() if k != "rc"}
    out.update(ok=finished["rc"] == 0 and result == "SUCCESS", result=result, **run)
    return out


def run_floor(
    secret_file: str,
    workdir: Path,
    venv: str | None = None,
    build=None,
    cycle: str = "shard_jobs.bench_floor",
) -> dict:
    """bench_floor.py (or cycle, a module of its kind) as a process: with build
    (floor_build()'s), the change is built first; with venv, nova-compute runs
    from that virtualenv."""
    cmd = [
        paths.bin_path("python"),
        "-m",
        cycle,
        "--secret-file",
        secret_file,
        "--workdir",
        str(workdir),
    ]
    if build:
        cmd += ["--src", build["src"], "--constraints", build["constraints"]]
        cmd += ["--cache", build["cache"], "--python", build["python"]]
    else:
        cmd += ["--venv", venv]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=command_env())
    try:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {"ok": False, "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    return {
        "ok": proc.returncode == 0 and out.get("ok", False),
        "label": out.get("label"),
        "error": out.get("error"),
        "code_cpu_s": out.get("code_cpu"),
        "steps": out.get("steps", {}),
        "floor_s": out.get("seconds"),
        "boot_retries": out.get("boot_retries"),
        "built": out.get("built", False),
        "deps": out.get("deps"),
        # No Ansible: plain openstacksdk in one process (bench_tempest.py's
        # three module runs are its own processes, not Ansible's).
        "tasks": 0,
        "module_processes": 0,
        **({"tempest": out["tempest"]} if "tempest" in out else {}),
    }


def service_pids(manifest: dict) -> list[int]:
    """The pids of a cloud's services, from their pid records (shard_processes)."""
    records = (processes.raw_record(svc["pidfile"]) for svc in manifest.get("services", []))
    return [record["pid"] for record in records if record is not None]


def cloud_pids(manifest: dict | None) -> list[int] | None:
    """A cloud's processes on this machine, as ./shard run names them to the
    efficiency report (its target cloud group): the services and the backends
    (MariaDB, RabbitMQ); None without a cloud."""
    if not manifest:
        return None
    from shard_jobs import cloud

    return cloud.process_ids(manifest)


def cloud_manifest(cloud_dir: str) -> dict:
    return json.loads((Path(cloud_dir) / "cloud.json").read_text())


def run_cloud(action: str, env: dict) -> float:
    start = time.monotonic()
    proc = subprocess.run(
        [SHARD, "cloud", action], env=command_env(env), capture_output=True, text=True, timeout=1800
    )
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise BenchError(f"cloud {action} of the bench cloud failed: {' / '.join(tail)}")
    return round(time.monotonic() - start, 1)


# ---------------------------------------------------------------- statistics and tables
