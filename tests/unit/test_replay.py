"""./shard run --from-zuul: a finished build's job, variables and change, read back from
its logs' zuul-info/inventory.yaml (shard_jobs/replay.py)."""

import base64
import functools
import gzip
import http.server
import threading
import zlib
from pathlib import Path

import pytest
import yaml
from unit_helpers import run_settings

from shard_jobs import cli, commands, replay, runner
from shard_jobs.settings import RunError, RunSettings

SECRET = "s3cr3t-of-the-site"
BUILD = "5" * 32


def zuul_inventory() -> dict:
    """The shape Zuul's executor writes (make_inventory_dict): host variables per node,
    the frozen variables (the job's and `zuul`, its message in base64) in all.vars."""
    return {
        "all": {
            "hosts": {
                "controller": {
                    "ansible_host": "203.0.113.7",
                    "ansible_user": "zuul",
                    "nodepool": {"label": "debian", "interface_ip": "203.0.113.7"},
                }
            },
            "vars": {
                "shard_profile": "nova-compute",
                "shard_exercise_servers": 2,
                "shard_cloud": {"cloud": {"auth": {"password": SECRET}}},
                "zuul_log_url": "https://logs.example.org/55/5",
                "ansible_python_interpreter": "/usr/bin/python3",
                "zuul": {
                    "build": BUILD,
                    "job": "site-shard-nova-compute-master",
                    "tenant": "openstack",
                    "pipeline": "check",
                    "branch": "stable/2026.2",
                    "ref": "refs/changes/55/955/3",
                    "change": "955",
                    "patchset": "3",
                    "change_url": "https://review.example.org/955",
                    "message": base64.b64encode(b"Fix the thing").decode(),
                    "project": {"name": "openstack/nova", "canonical_name": "x/openstack/nova"},
                    "projects": {
                        "x/openstack/nova": {"name": "openstack/nova", "commit": "c" * 40},
                        "x/openstack/glance": {"name": "openstack/glance", "commit": "d" * 40},
                    },
                    "executor": {"log_root": "/var/lib/zuul/builds/x/work/logs"},
                },
            },
        }
    }


@pytest.fixture
def logs(tmp_path) -> Path:
    (tmp_path / "logs" / "zuul-info").mkdir(parents=True)
    (tmp_path / "logs" / replay.INVENTORY).write_text(yaml.safe_dump(zuul_inventory()))
    return tmp_path / "logs"


def check_build(build: replay.Build) -> None:
    assert (build.build, build.job, build.project) == (
        BUILD,
        "site-shard-nova-compute-master",
        "openstack/nova",
    )
    # The job's variables only: not Zuul's, the hosts', Ansible's, nor the credentials.
    assert build.variables == {"shard_profile": "nova-compute", "shard_exercise_servers": 2}
    assert build.item == {
        "tenant": "openstack",
        "pipeline": "check",
        "branch": "stable/2026.2",
        "ref": "refs/changes/55/955/3",
        "change": "955",
        "patchset": "3",
        "change_url": "https://review.example.org/955",
    }
    assert build.commit == "c" * 40
    assert "change 955,3 on stable/2026.2" in build.describe()
    assert build.describe().endswith("with its variables shard_exercise_servers, shard_profile")
    assert SECRET not in repr(build)


def test_a_build_is_read_from_its_log_directory_or_its_inventory_file(logs):
    check_build(replay.read(str(logs)))
    check_build(replay.read(str(logs / replay.INVENTORY)))


def test_a_build_is_read_from_its_log_url(logs):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(logs))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/"
        check_build(replay.read(url))
        with pytest.raises(RunError, match=r"^cannot read http://127.0.0.1:\d+/nope/zuul-info/"):
            replay.read(url + "nope")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "cannot read .*zuul-info/inventory.yaml: No such file or directory"),
        ("all: [", "is not YAML"),
        ("[]", "names no job and project"),
        ("all: {vars: {zuul: {job: j}}}", "names no job and project"),
        ("all: {vars: {zuul: {project: {name: p}}}}", "names no job and project"),
        ("x" * (replay.MAX_BYTES + 1), "is larger than"),
    ],
)
def test_what_is_not_a_build_is_one_line(tmp_path, text, message):
    if text is not None:
        (tmp_path / "zuul-info").mkdir()
        (tmp_path / replay.INVENTORY).write_text(text)
    with pytest.raises(RunError, match=message) as raised:
        replay.read(str(tmp_path))
    assert "\n" not in str(raised.value)


def test_a_replay_takes_the_change_s_tree_and_may_name_this_repository_s_job(logs):
    build = replay.read(str(logs))
    with pytest.raises(RunError, match=r"pass --src openstack/nova=PATH, a tree holding that"):
        replay.settings(build, None, {"openstack/glance": Path("/g")})
    given = replay.settings(build, "shard-nova-compute", {"openstack/nova": Path("/n")})
    assert given == {
        "job": "shard-nova-compute",
        "variables": build.variables,
        "zuul_item": build.item,
    }
    assert replay.settings(build, None, {"openstack/nova": Path("/n")})["job"] == build.job


def test_the_command_refuses_a_replay_without_the_change_in_one_line(logs, capsys):
    args = cli.build_parser().parse_args(["run", "--from-zuul", str(logs)])
    assert commands.run(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("run: the build tested openstack/nova")
    # The job may be named: the build's variables stay under -e.
    args = cli.build_parser().parse_args(
        ["run", "shard-nova-compute", "--from-zuul", str(logs), "--src", "openstack/nova=/n"]
        + ["-e", "shard_exercise_servers=1"]
    )
    trees = {"openstack/nova": Path("/n")}
    settings = RunSettings.from_args(
        args, **replay.settings(replay.read(str(logs)), args.job, trees)
    )
    assert settings.job == "shard-nova-compute"
    assert settings.variables == {"shard_profile": "nova-compute", "shard_exercise_servers": 2}
    assert settings.extra_vars == ("shard_exercise_servers=1",)


def test_the_local_zuul_variable_carries_the_replayed_change():
    item = zuul_inventory()["all"]["vars"]["zuul"]
    zuul_item = {k: item[k] for k in replay.ITEM_KEYS}
    run = runner.LocalRun(run_settings(zuul_item=zuul_item))
    project = {
        "name": "openstack/nova",
        "short_name": "nova",
        "canonical_hostname": "opendev.org",
        "canonical_name": "opendev.org/openstack/nova",
        "src_dir": "src/opendev.org/openstack/nova",
    }
    zuul = run.zuul_var({"openstack/nova": project}, "openstack/nova")
    assert zuul["project"]["canonical_name"] == "opendev.org/openstack/nova"
    for key in replay.ITEM_KEYS:
        assert zuul[key] == item[key], key
    for key in ("branch", "ref", "change", "patchset", "change_url"):
        assert zuul["items"][0][key] == item[key], key
    assert zuul["projects"]["opendev.org/openstack/nova"]["checkout"] == "stable/2026.2"
    # The local build's own identity and directories.
    assert zuul["build"] == run.build and zuul["executor"]["log_root"] == str(run.log_root)


def test_what_a_local_run_logs_is_read_back_without_its_credentials():
    zuul = {"build": BUILD, "job": "shard-nova-compute", "project": {"name": "openstack/nova"}}
    logged = replay.inventory(
        {"controller": {"ansible_connection": "local"}},
        {"shard_profile": "nova-compute", "shard_cloud": {"password": SECRET}},
        zuul,
    )
    assert SECRET not in yaml.safe_dump(logged)
    build = replay.build_of(logged, "here")
    assert (build.job, build.variables) == ("shard-nova-compute", {"shard_profile": "nova-compute"})


def test_the_replay_says_whether_the_tree_is_the_build_s_commit(logs):
    build = replay.read(str(logs))
    assert replay.tree_note(build, "c" * 40) == (
        f"the --src tree is at the build's commit {'c' * 12}"
    )
    assert replay.tree_note(build, "e" * 40) == (
        f"the --src tree is at {'e' * 12}, not at the build's commit {'c' * 12}: this run "
        "tests the tree, not the build's change"
    )
    unrecorded = replay.build_of(
        {"all": {"vars": {"zuul": {"job": "j", "project": {"name": "p"}}}}}, "x"
    )
    assert replay.tree_note(unrecorded, "e" * 40) == ""


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "deflate-raw", "zlib-as-deflate"])
def test_a_log_server_s_compressed_inventory_is_read(logs, encoding):
    """zuul-jobs' uploads store text compressed, served with Content-Encoding."""
    raw = (logs / replay.INVENTORY).read_bytes()
    if encoding == "gzip":
        body, header = gzip.compress(raw), "gzip"
    elif encoding == "deflate-raw":
        packer = zlib.compressobj(wbits=-15)
        body, header = packer.compress(raw) + packer.flush(), "deflate"
    else:
        body, header = zlib.compress(raw), "deflate"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Encoding", header)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # The URL of the logs, or of the file itself.
        check_build(replay.read(f"http://127.0.0.1:{server.server_port}/logs/"))
        url = f"http://127.0.0.1:{server.server_port}/logs/{replay.INVENTORY}"
        check_build(replay.read(url))
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("where", ["file:///tmp/logs", "ftp://logs.example.org/55"])
def test_other_schemes_are_refused_in_one_line(where):
    with pytest.raises(RunError, match=r"a build's logs are a URL \(http, https\) or a path$"):
        replay.read(where)
