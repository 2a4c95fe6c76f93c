"""shard_files: directories, links and files laid out in one run, idempotent, kept private."""

import hashlib
import os
import stat

import shard_files as module

from shard_jobs.rules import phases


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def layout(tmp_path, **extra):
    args = dict(
        directories=[str(tmp_path / "ws" / "etc"), str(tmp_path / "ws" / "log")],
        links={str(tmp_path / "ws" / "current"): str(tmp_path / "venv")},
        files={
            str(tmp_path / "ws" / "etc" / "a.conf"): "[DEFAULT]\npassword = s3cret\n",
            str(tmp_path / "ws" / "etc" / "mod.py"): "X = 1\n",
        },
        modes={str(tmp_path / "ws" / "etc" / "mod.py"): "0644"},
    )
    args.update(extra)
    return args


def test_lays_out_everything_and_returns_the_checksums(tmp_path, run_module):
    result = run_module(module, layout(tmp_path))

    ws = tmp_path / "ws"
    assert result["changed"] is True
    assert mode(ws / "etc") == 0o700 and mode(ws / "log") == 0o700
    assert os.readlink(ws / "current") == str(tmp_path / "venv")
    assert (ws / "etc" / "a.conf").read_text() == "[DEFAULT]\npassword = s3cret\n"
    assert mode(ws / "etc" / "a.conf") == 0o600
    assert mode(ws / "etc" / "mod.py") == 0o644
    assert result["checksums"] == {
        str(ws / "etc" / "a.conf"): hashlib.sha1(b"[DEFAULT]\npassword = s3cret\n").hexdigest(),
        str(ws / "etc" / "mod.py"): hashlib.sha1(b"X = 1\n").hexdigest(),
    }
    # The content is no_log: it never comes back, not even in the invocation.
    assert "s3cret" not in str(result)
    # No temporary file is left beside the files.
    assert sorted(p.name for p in (ws / "etc").iterdir()) == ["a.conf", "mod.py"]


def test_a_second_run_changes_nothing(tmp_path, run_module):
    run_module(module, layout(tmp_path))

    result = run_module(module, layout(tmp_path))

    assert result["changed"] is False
    assert result["changed_paths"] == []


def test_changed_content_mode_and_link_are_fixed(tmp_path, run_module):
    run_module(module, layout(tmp_path))
    conf = tmp_path / "ws" / "etc" / "a.conf"
    os.chmod(conf, 0o644)
    os.chmod(tmp_path / "ws" / "log", 0o755)
    other = tmp_path / "other"
    args = layout(tmp_path, links={str(tmp_path / "ws" / "current"): str(other)})
    args["files"][str(tmp_path / "ws" / "etc" / "mod.py")] = "X = 2\n"

    result = run_module(module, args)

    assert sorted(result["changed_paths"]) == sorted(
        [
            str(tmp_path / "ws" / "log"),
            str(tmp_path / "ws" / "current"),
            str(conf),
            str(tmp_path / "ws" / "etc" / "mod.py"),
        ]
    )
    assert mode(conf) == 0o600 and mode(tmp_path / "ws" / "log") == 0o700
    assert os.readlink(tmp_path / "ws" / "current") == str(other)
    assert (tmp_path / "ws" / "etc" / "mod.py").read_text() == "X = 2\n"


def test_check_mode_says_what_would_change_and_writes_nothing(tmp_path, run_module):
    result = run_module(module, layout(tmp_path), check_mode=True)

    assert result["changed"] is True
    assert len(result["changed_paths"]) == 5
    assert not (tmp_path / "ws").exists()
    assert str(tmp_path / "ws" / "etc" / "a.conf") in result["checksums"]


def test_a_directory_where_a_link_goes_fails_in_one_line(tmp_path, run_module):
    (tmp_path / "ws" / "current").mkdir(parents=True)

    result = run_module(module, layout(tmp_path))

    assert result["failed"] is True
    assert result["msg"].startswith("cannot lay out the files: ")
    assert "is a directory, not a link" in result["msg"]


def test_a_bad_mode_is_refused(tmp_path, run_module):
    result = run_module(module, layout(tmp_path, directory_mode="rwx"))

    assert result["failed"] is True
    assert "not an octal number" in result["msg"]


def events(workspace):
    return [(e["phase"], e["event"]) for e in phases.read_events(workspace / phases.PHASES_FILE)]


def test_the_phase_option_records_a_start_before_and_an_end_after(tmp_path, run_module):
    ws = tmp_path / "ws"

    started = run_module(
        module, layout(tmp_path, phase=dict(workspace=str(ws), name="deploy", start=True))
    )
    ended = run_module(
        module, dict(files={}, phase=dict(workspace=str(ws), name="deploy", end=True))
    )

    assert started["changed"] is True and ended["changed"] is False
    assert events(ws) == [("deploy", "start"), ("deploy", "end")]
    # The start made the workspace, with the mode of every directory of a build's.
    assert mode(ws) == 0o700


def test_the_phase_option_records_nothing_in_check_mode_nor_the_end_of_a_failure(
    tmp_path, run_module
):
    ws = tmp_path / "ws"
    ws.mkdir()
    both = dict(workspace=str(ws), name="deploy", start=True, end=True)

    run_module(module, layout(tmp_path, phase=both), check_mode=True)
    assert not (ws / phases.PHASES_FILE).exists()

    (ws / "current").mkdir()  # a directory where the link goes: the module fails
    failed = run_module(module, layout(tmp_path, phase=both))

    assert failed["failed"] is True
    assert events(ws) == [("deploy", "start")]


def test_absent_removes_a_tree_a_file_and_a_link_but_not_its_target(tmp_path, run_module):
    run_module(module, layout(tmp_path))
    target = tmp_path / "venv"
    target.mkdir()
    (target / "keep").write_text("x")
    ws = tmp_path / "ws"
    gone = [str(ws / "current"), str(ws / "etc" / "a.conf"), str(ws), str(tmp_path / "never")]

    checked = run_module(module, dict(absent=gone), check_mode=True)
    assert checked["changed"] is True and (ws / "etc" / "a.conf").exists()

    result = run_module(module, dict(absent=gone))

    assert result["changed"] is True
    assert result["changed_paths"] == gone[:3]
    assert not ws.exists() and (target / "keep").read_text() == "x"
    assert run_module(module, dict(absent=gone))["changed"] is False


def test_absent_takes_a_link_with_a_trailing_slash_as_the_link(tmp_path, run_module):
    target = tmp_path / "venv"
    target.mkdir()
    (target / "keep").write_text("x")
    link = tmp_path / "current"
    link.symlink_to(target)

    result = run_module(module, dict(absent=[str(link) + "/"]))

    assert result["changed"] is True
    assert not os.path.lexists(link) and (target / "keep").read_text() == "x"


def test_absent_refuses_a_mount_point_and_still_removes_the_others(tmp_path, run_module):
    first, last = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("secret")
    last.write_text("secret")

    result = run_module(module, dict(absent=[str(first), "/proc", str(last)]))

    assert result["failed"] is True and "/proc is a mount point" in result["msg"]
    assert not first.exists() and not last.exists()
    assert os.path.isdir("/proc/self")
