"""First contact: help answers on a fresh clone, before any virtualenv exists.

./shard is run with the machine's python3 and SHARD_VENV pointing at a place
where no virtualenv is: help must come from the parser alone, and nothing may
be created there.
"""

import json
import os
import subprocess
import sys

import pytest

from shard_jobs import paths, testing

SHARD = str(paths.REPO / "shard")


def _fresh(tmp_path, *args):
    venv = tmp_path / "no-venv"
    env = dict(os.environ, SHARD_VENV=str(venv))
    proc = subprocess.run(
        [sys.executable, SHARD, *args], capture_output=True, text=True, env=env, timeout=30
    )
    return proc, venv


@pytest.mark.parametrize(
    "args",
    [["--help"], ["-h"], ["run", "--help"], ["cloud", "-h"], ["bench", "--help"], ["test", "-h"]],
)
def test_help_needs_no_virtualenv(tmp_path, args):
    proc, venv = _fresh(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: shard")
    assert not venv.exists()


def test_no_command_is_a_usage_error_without_virtualenv(tmp_path):
    proc, venv = _fresh(tmp_path)
    assert proc.returncode == 2
    assert "usage: shard" in proc.stderr
    assert not venv.exists()


def test_test_help_lists_every_tier_with_its_needs_and_time(tmp_path):
    proc, _ = _fresh(tmp_path, "test", "--help")
    epilog = proc.stdout.split("tiers (run in this order")[1]
    for tier in testing.TIER_INFO:
        line = next(x for x in epilog.splitlines() if x.split()[:1] == [tier.name])
        assert tier.needs in line and f"~{tier.minutes} min" in line


def test_run_list_names_every_runnable_job():
    proc = subprocess.run([SHARD, "run", "--list"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert "shard-nova-compute" in names and "shard-glance-api" in names
    assert "shard-base" not in names  # abstract
    listed = json.loads(
        subprocess.run(
            [SHARD, "run", "--list", "--json"], capture_output=True, text=True, timeout=60
        ).stdout
    )
    assert [j["job"] for j in listed] == names
    assert all(j["description"] for j in listed)


def test_run_without_a_job_is_one_line():
    proc = subprocess.run([SHARD, "run"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "shard run: name a job (./shard run --list lists them)"
    ]
