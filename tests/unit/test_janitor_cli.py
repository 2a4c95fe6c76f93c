"""./shard janitor's age rules, before anything runs (module_utils/shard_janitor_rules.py)."""

import argparse

import pytest

from shard_jobs import commands
from shard_jobs.rules import janitor


def _args(**kw):
    values = dict(
        older_than="3h",
        force=False,
        dry_run=True,
        label_pattern="",
        cloud=None,
        secret_file=None,
        json=False,
    )
    values.update(kw)
    return argparse.Namespace(**values)


@pytest.mark.parametrize(
    ("older_than", "force", "message"),
    [
        ("0s", False, "janitor: --older-than 0s is below the minimum age of 150m"),
        ("109m", False, "janitor: --older-than 109m is below the minimum age"),
        ("3 h", True, "janitor: invalid --older-than '3 h'"),
    ],
)
def test_refused_in_one_line(capsys, older_than, force, message):
    assert commands.janitor(_args(older_than=older_than, force=force)) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_the_minimum_covers_every_job():
    """The layout tier checks the jobs' timeouts against it; here its arithmetic."""
    assert janitor.duration_seconds("150m") == janitor.MINIMUM_AGE
    assert janitor.age_error("150m") is None
    assert janitor.age_error("0s", force=True) is None
    assert janitor.duration_seconds("2d") == 2 * 86400


def test_the_help_states_the_minimum_age_of_the_rule():
    from shard_jobs import cli

    # (./shard janitor --help is written without importing the rule.)
    with open(cli.__file__) as f:
        assert f"minimum age ({janitor.MINIMUM_AGE // 60}m)" in f.read()
