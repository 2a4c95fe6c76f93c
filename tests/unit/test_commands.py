"""./shard run and ./shard janitor: settings typed once from the command line, one
way to refuse a run that cannot be prepared, the result printed from one data set."""

import json
import subprocess
from pathlib import Path

import pytest
import shard_report
import yaml
from unit_helpers import run_settings

from shard_jobs import cli, commands, credentials, output, paths, runner
from shard_jobs.settings import JanitorSettings, RunSettings


def test_run_settings_hold_every_flag():
    args = cli.build_parser().parse_args(
        ["run", "shard-nova-compute", "--src", "openstack/nova=~/nova", "-e", "a=1", "-e", "b=2"]
        + ["--cloud", "c", "--secret-file", "s.yaml", "--build", "b" * 32]
        + ["--json", "--ara", "--cleanup"]
    )
    assert RunSettings.from_args(args) == RunSettings(
        job="shard-nova-compute",
        src=("openstack/nova=~/nova",),
        extra_vars=("a=1", "b=2"),
        cloud="c",
        secret_file="s.yaml",
        build="b" * 32,
        json=True,
        ara=True,
        cleanup=True,
    )
    assert not RunSettings.from_args(args).embedded_cloud
    defaults = RunSettings.from_args(cli.build_parser().parse_args(["run", "shard-janitor"]))
    assert defaults.embedded_cloud and not (defaults.json or defaults.ara or defaults.cleanup)


def test_the_janitor_job_gets_typed_variables(tmp_path):
    args = cli.build_parser().parse_args(
        ["janitor", "--older-than", "2d", "--dry-run", "--label-pattern", "^shard-0[1]"]
    )
    job = JanitorSettings.from_args(args).job_settings("f" * 32, tmp_path / "janitor.json")
    assert (job.job, job.build, job.extra_vars, job.json) == ("shard-janitor", "f" * 32, (), False)
    assert job.variables == {
        "shard_janitor_older_than": "2d",
        "shard_janitor_force": False,
        "shard_janitor_dry_run": True,
        "shard_janitor_label_pattern": "^shard-0[1]",
        "shard_janitor_report": str(tmp_path / "janitor.json"),
    }


def test_the_janitor_s_default_is_every_label_as_the_role_s_and_the_job_s_are():
    """Empty, everywhere: the module then searches with shard_labels.ALL_LABELS_PATTERN
    (held by test_shard_labelled_resources), and no other place writes the regex."""
    args = cli.build_parser().parse_args(["janitor"])
    job = JanitorSettings.from_args(args).job_settings("f" * 32, Path("janitor.json"))
    role = yaml.safe_load((paths.ROLES / "shard_janitor" / "defaults" / "main.yaml").read_text())
    jobs = yaml.safe_load((paths.REPO / "zuul.d" / "jobs.yaml").read_text())
    (janitor,) = [j["job"] for j in jobs if j.get("job", {}).get("name") == "shard-janitor"]
    assert job.variables["shard_janitor_label_pattern"] == ""
    assert role["shard_janitor_label_pattern"] == ""
    assert janitor["vars"]["shard_janitor_label_pattern"] == ""


@pytest.mark.parametrize("command", ["run", "janitor"])
def test_a_job_that_cannot_be_frozen_is_one_line(capsys, command):
    assert commands.prepared_run(run_settings(job="no-such-job"), command) is None
    err = capsys.readouterr().err
    assert err.startswith(f"{command}: ") and "no-such-job" in err and err.count("\n") == 1


def test_a_failed_git_command_while_preparing_is_one_line(capsys, monkeypatch):
    def fail(run):
        raise subprocess.CalledProcessError(128, ["git", "clone"], stderr=b"hint\nfatal: gone\n")

    monkeypatch.setattr(runner.LocalRun, "prepare", fail)
    assert commands.prepared_run(run_settings(), "janitor") is None
    assert capsys.readouterr().err == (
        "janitor: preparing the run failed: git clone: fatal: gone\n"
    )


SUMMARY = {
    "job": "shard-nova-compute",
    "build": "0123456789abcdef" * 2,
    "result": "SUCCESS",
    "playbooks": [{"phase": "run", "playbook": "playbooks/run.yaml", "rc": 0, "seconds": 1.5}],
    "phases": {},
    "exercise": {"host": "h", "landed_on": "h"},
    "upgrade": {},
    "teardown": "ok",
    "report": {},
    "logs": "/tmp/logs",
}


def test_the_summary_as_json_and_as_a_table(capsys):
    output.show_run(SUMMARY, as_json=True)
    assert json.loads(capsys.readouterr().out) == SUMMARY
    output.show_run(SUMMARY, as_json=False)
    table = capsys.readouterr().out
    assert "shard-nova-compute build 0123456789ab: SUCCESS" in table
    assert "server landed on h" in table and "teardown and leak check: ok" in table


def test_the_summary_prints_the_reports_cpu_groups(capsys, tmp_path):
    """The CPU line reads report.json as the shard_report module writes it: every
    measured group, in the report's order; one not measured is left out."""
    cpu = {"machine": 0.0, "code": {}, "harness": 0.0}
    events = [
        {"phase": "run", "event": "start", "time": 0.0, "cpu": cpu},
        {"phase": "run", "event": "end", "time": 9.0, "cpu": dict(cpu, machine=8.0, harness=2.0)},
    ]
    report = shard_report.build_report(events, verdict="SUCCESS")
    (tmp_path / "report.json").write_text(json.dumps(report))
    output.show_run(dict(SUMMARY, report=output.report_summary(tmp_path)), as_json=False)
    table = capsys.readouterr().out
    assert "CPU: machine 8.0s (code under test 0.0s, harness 2.0s, other 6.0s)" in table
    assert ", 0.0% in the code under test" in table


def test_the_janitor_report_as_json_and_as_a_table(capsys, tmp_path):
    data = {
        "dry_run": True,
        "older_than": "3h",
        "labels": {"shard-0123": {"reason": "newest resource 4h old"}},
        "resources": {"servers": [{"label": "shard-0123"}], "networks": []},
    }
    output.show_janitor(data, "SUCCESS", tmp_path / "janitor.json", as_json=True)
    assert json.loads(capsys.readouterr().out) == dict(data, result="SUCCESS")
    output.show_janitor(data, "SUCCESS", tmp_path / "janitor.json", as_json=False)
    assert capsys.readouterr().out.splitlines() == [
        "janitor: would delete shard-0123: 1 servers (newest resource 4h old)",
        f"janitor: SUCCESS; report {tmp_path / 'janitor.json'}",
    ]


def test_a_secret_file_that_cannot_be_read_is_one_line_without_its_content(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(credentials.RunError, match=f"^cannot read the secret file {missing}: "):
        credentials.target_secret(run_settings(secret_file=str(missing)))
    broken = tmp_path / "broken.yaml"
    broken.write_text("cloud:\n  auth: {password: s3cret-value\n")
    with pytest.raises(credentials.RunError) as err:
        credentials.target_secret(run_settings(secret_file=str(broken)))
    assert str(err.value).startswith(f"the secret file {broken} is not valid YAML (line ")
    assert "s3cret" not in str(err.value)
