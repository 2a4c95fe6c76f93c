"""Virtualenvs made once for what they are made of (shard_jobs/tool_venv.py), the
one builder of the controller's virtualenvs, ./shard's own .venv included."""

import hashlib
import os
import subprocess
import sys

import pytest

from shard_jobs import docs, paths, tool_venv


def _maker(made, fail=False):
    def make(venv):
        made.append(venv)
        venv.mkdir()
        (venv / "half-built").write_text("")
        if fail:
            raise tool_venv.VenvError("pip failed")

    return make


def test_made_once_per_key_and_from_nothing_when_it_changes(tmp_path):
    made = []
    venv = tmp_path / "venvs" / "tool"
    assert tool_venv.build_once(venv, "one", _maker(made)) == venv
    assert tool_venv.build_once(venv, "one", _maker(made)) == venv
    assert made == [venv]
    (venv / "left-over").write_text("")
    tool_venv.build_once(venv, "two", _maker(made))
    assert made == [venv, venv] and not (venv / "left-over").exists()
    assert (venv / tool_venv.STAMP).read_text() == "two\n"


def test_a_failed_build_is_started_again(tmp_path):
    made = []
    venv = tmp_path / "tool"
    with pytest.raises(tool_venv.VenvError):
        tool_venv.build_once(venv, "one", _maker(made, fail=True))
    assert not (venv / tool_venv.STAMP).exists()
    tool_venv.build_once(venv, "one", _maker(made))
    assert made == [venv, venv]


def test_made_in_place_over_what_is_there(tmp_path):
    made = []
    venv = tmp_path / ".venv"
    venv.mkdir()
    (venv / "kept").write_text("")
    (venv / tool_venv.STAMP).write_text("old\n")

    def update(path):
        made.append(path)
        # The old stamp is gone before the update starts: a half-updated
        # virtualenv is never taken for the old one.
        assert not (path / tool_venv.STAMP).exists() and (path / "kept").exists()

    tool_venv.build_once(venv, "new", update, in_place=True)
    assert made == [venv] and (venv / "kept").exists()
    assert (venv / tool_venv.STAMP).read_text() == "new\n"


def test_a_stamped_virtualenv_is_used_without_a_lock(tmp_path):
    venv = tmp_path / "tool"
    venv.mkdir()
    (venv / tool_venv.STAMP).write_text("one\n")
    assert tool_venv.build_once(venv, "one", _maker([])) == venv
    # Nothing written beside it: a virtualenv someone else owns works as it is.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tool"]


def _shard(venv, *argv):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARD_")}
    return subprocess.run(
        [str(paths.REPO / "shard"), *argv],
        env=dict(env, SHARD_VENV=str(venv)),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_bootstrap_keeps_the_stamp_its_virtualenvs_have(tmp_path):
    # The stamp ./shard always wrote: the hash of its inputs, one after the other.
    inputs = [paths.REPO / name for name in ("requirements/tools.txt", "constraints.txt")]
    inputs.append(paths.REPO / "pyproject.toml")
    stamp = hashlib.sha256(b"".join(path.read_bytes() for path in inputs)).hexdigest()
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / tool_venv.STAMP).write_text(stamp + "\n")
    # A stand-in interpreter: what the bootstrap would run.
    python = venv / "bin" / "python"
    python.write_text('#!/bin/sh\necho "ran $*"\n')
    python.chmod(0o755)
    proc = _shard(venv, "run", "--list")
    # Stamped: nothing built, no lock, straight on to the command.
    assert proc.stdout == "ran -m shard_jobs run --list\n", proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["venv"]


def test_the_builder_is_standard_library_only():
    # ./shard imports it before its virtualenv exists: no site-packages (-S).
    code = "import sys; sys.path.insert(0, sys.argv[1]); import shard_jobs.tool_venv"
    subprocess.run([sys.executable, "-I", "-S", "-c", code, str(paths.REPO)], check=True)


def test_the_fingerprint_follows_every_input(tmp_path):
    requirements, constraints = tmp_path / "req.txt", tmp_path / "con.txt"
    requirements.write_text("a\n")
    constraints.write_text("a==1\n")
    key = tool_venv.fingerprint((requirements, constraints), "3.11.2")
    assert key == tool_venv.fingerprint((requirements, constraints), "3.11.2")
    assert key != tool_venv.fingerprint((requirements, constraints), "3.11.9")
    assert key != tool_venv.fingerprint((requirements, constraints), "3.11.2", ["pbr"])
    constraints.write_text("a==2\n")
    assert key != tool_venv.fingerprint((requirements, constraints), "3.11.2")


def test_a_tool_virtualenv_is_made_with_its_requirements(tmp_path, monkeypatch):
    monkeypatch.setenv("SHARD_DOCS_VENV", str(tmp_path / "docs"))
    commands = []

    def run(cmd, what):
        commands.append(cmd)
        if cmd[1:3] == ["-m", "venv"]:
            (tmp_path / "docs").mkdir()

    monkeypatch.setattr(tool_venv, "_run", run)
    python = docs.DOCS.ensure(log=lambda line: None)
    assert python == tmp_path / "docs" / "bin" / "python"
    assert commands[0][1:] == ["-m", "venv", str(tmp_path / "docs")]
    assert "--no-deps" in commands[1] and commands[-1][-1] == "check"
    # Made: the next use builds nothing.
    commands.clear()
    assert docs.DOCS.ensure(log=lambda line: None) == python and commands == []
