"""Virtualenvs made once for what they are made of (shard_jobs/tool_venv.py)."""

import pytest

from shard_jobs import docs, tool_venv


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
