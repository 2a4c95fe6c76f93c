"""Helpers of the `cloud` tier: ./shard cloud up|status|down|destroy on an isolated second cloud.

Every test drives the real command line (./shard, as a subprocess) with the
overrides that make a second cloud next to the default one: its own state
directory, ports, database names and user, message-bus vhost and user, and cloud
name. The default cloud (~/.shard-jobs/cloud), which others may be using, is never
touched. Its services' virtualenv is a new one, in a temporary place, made from
nothing by the first `up` (only pip's download cache may be warm): a bring-up
that works only because an earlier run left a virtualenv behind fails here.

The tests run in file order and share one cloud: the first brings it up from
nothing, the last destroys it, and the session fixture destroys it again however
the tests ended. A lock file keeps two sessions on one machine from sharing the
isolated names.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from job_runs import RABBIT_ENV  # rabbitmqctl reaches the embedded cloud's broker

from shard_jobs import paths
from shard_jobs.rules import processes, waits

# SHARD_TEST_CLI runs another command line in place of this repository's ./shard
# (a checkout without its own virtualenv, for instance).
SHARD = os.environ.get("SHARD_TEST_CLI") or str(paths.REPO / "shard")

PORTS = {
    "keystone": 15000,
    "placement": 18778,
    "glance": 19292,
    "neutron": 19696,
    "nova_api": 18774,
}
DB_PREFIX = "shardtest_"
DB_USER = "shard_test"
VHOST = "shard-test"
RABBIT_USER = "shard_test"
NAME = "shard-test"
DATABASES = ["keystone", "placement", "glance", "neutron", "nova_api", "nova_cell0", "nova"]
# Where the isolated cloud keeps its state (cloud/) and its logs (cloud-logs/).
BASE = Path(os.environ.get("SHARD_TEST_CLOUD_BASE") or "/tmp/shard-jobs-cloud-tier")
LOCK = BASE / "lock"


class Result:
    def __init__(self, proc: subprocess.CompletedProcess, seconds: float):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.seconds = seconds

    def __repr__(self):
        return (
            f"<rc {self.rc} in {self.seconds:.1f}s\n--- stdout\n{self.stdout}"
            f"--- stderr\n{self.stderr}>"
        )

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


class IsolatedCloud:
    """The second cloud: its environment, and ./shard cloud ... run against it."""

    def __init__(self, base: Path):
        self.dir = base / "cloud"
        self.venv = base / "venv"
        self.env = dict(os.environ)
        # Nothing of an outer run's cloud settings leaks in.
        for key in list(self.env):
            if key.startswith("SHARD_CLOUD_"):
                del self.env[key]
        self.env.update(
            {
                "SHARD_CLOUD_DIR": str(self.dir),
                "SHARD_CLOUD_VENV": str(self.venv),
                "SHARD_CLOUD_VAR_PORTS": json.dumps(PORTS),
                "SHARD_CLOUD_VAR_DB_PREFIX": DB_PREFIX,
                "SHARD_CLOUD_VAR_DB_USER": DB_USER,
                "SHARD_CLOUD_VAR_RABBIT_VHOST": VHOST,
                "SHARD_CLOUD_VAR_RABBIT_USER": RABBIT_USER,
                "SHARD_CLOUD_VAR_NAME": NAME,
            }
        )
        self.timings: dict[str, float] = {}

    def shard(self, *args: str, env: dict | None = None, timeout: int = 1200) -> Result:
        start = time.monotonic()
        proc = subprocess.run(
            [SHARD, "cloud", *args],
            env=dict(self.env, **(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(proc, time.monotonic() - start)

    def status(self) -> tuple[int, dict]:
        result = self.shard("status", "--json")
        return result.rc, json.loads(result.stdout)

    def services(self) -> dict[str, dict]:
        return {s["name"]: s for s in self.status()[1]["services"] if s["pid"] is not None}

    @property
    def manifest(self) -> dict:
        return json.loads((self.dir / "cloud.json").read_text())

    def connect(self, admin: bool = False):
        import openstack

        manifest = self.manifest
        name = manifest["admin_cloud_name"] if admin else manifest["cloud_name"]
        config = openstack.config.OpenStackConfig(config_files=[manifest["clouds_yaml"]])
        return openstack.connection.Connection(config=config.get_one(cloud=name))

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """(size, mtime) of every file of the state directory but the logs of the running
        services and the converged stamp, which only records the last successful `up`
        (a failed one removes it)."""
        found = {}
        for path in sorted(self.dir.rglob("*")):
            relative = path.relative_to(self.dir)
            if path.is_file() and path.name != "converged" and relative.parts[0] != "log":
                st = path.stat()
                found[str(relative)] = (st.st_size, st.st_mtime_ns)
        return found


def mysql(query: str) -> list[str]:
    """A query as MariaDB's root (socket authentication), one line per row."""
    proc = subprocess.run(
        ["mysql", "-N", "-B", "-e", query], capture_output=True, text=True, check=True
    )
    return proc.stdout.splitlines()


def cloud_databases() -> list[str]:
    return sorted(mysql(f"SHOW DATABASES LIKE '{DB_PREFIX.replace('_', chr(92) + '_')}%'"))


def rabbitmqctl(*args: str) -> list[str]:
    proc = subprocess.run(
        ["rabbitmqctl", "-q", *args],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, **RABBIT_ENV),
    )
    return proc.stdout.splitlines()


def group_members(pgids: set[int]) -> list[int]:
    """Processes whose process group is one of pgids (a service and its workers)."""
    return sorted(pid for pgid in pgids for pid in processes.group_members(pgid))


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    """The product's wait (shard_waits), its timeout a test failure without a traceback."""
    try:
        return waits.wait_until(predicate, timeout, what=what, interval=interval)
    except waits.WaitTimeout as exc:
        pytest.fail(str(exc), pytrace=False)
