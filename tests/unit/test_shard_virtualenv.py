"""shard_virtualenv: cached, stamped, layered virtualenvs.

The virtualenvs are real (created without pip, which is cheap); pip itself is
faked in module.run_command: an install records the command and, for each named
requirement, leaves a dist-info behind, so that the virtualenv shows it as
installed to the next layer (which is what sibling selection reads).
"""

import fcntl
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest
import shard_virtualenv as module

from shard_jobs.rules import phases

PYTHON = sys.executable


def is_pip_upgrade(cmd):
    """pip upgrading itself in a new virtualenv (the module does it first)."""
    return cmd[1:4] == ["-m", "pip", "install"] and cmd[-1] == "pip"


class Pip:
    """The fake: records every command; pip installs succeed unless told otherwise."""

    def __init__(self, real):
        self.real = real
        self.calls = []  # (cmd, environ_update)
        self.fail_with = None  # stderr of a failing pip install

    def run_command(self, ansible_module, cmd, *args, **kwargs):
        self.calls.append((list(cmd), kwargs.get("environ_update")))
        if cmd[1:3] == ["-m", "venv"]:
            if "--without-pip" not in cmd:  # a real one, without its costly pip
                cmd = cmd[:3] + ["--without-pip"] + cmd[3:]
            return self.real(ansible_module, cmd, *args, **kwargs)
        if cmd[1:4] == ["-m", "pip", "install"]:
            if self.fail_with and not is_pip_upgrade(cmd):
                return 1, "", self.fail_with
            self.install(cmd[0], cmd[4:])
            return 0, "", ""
        return self.real(ansible_module, cmd, *args, **kwargs)

    def install(self, python, args):
        site = module._site_packages(python)
        skip = False
        for arg in args:
            if skip or arg.startswith("-"):
                skip = arg in ("-c", "-r", "-e")
                continue
            name = re.split(r"[=<>!~\[;]", arg)[0]
            info = os.path.join(site, f"{name.replace('-', '_')}-1.0.dist-info")
            os.makedirs(info, exist_ok=True)
            with open(os.path.join(info, "METADATA"), "w") as f:
                f.write(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")

    def commands(self):
        """The commands other than the interpreter's version query and pip's own upgrade."""
        return [cmd for cmd, _ in self.calls if cmd[1] != "-c" and not is_pip_upgrade(cmd)]

    def pip_upgrades(self):
        return [cmd for cmd, _ in self.calls if is_pip_upgrade(cmd)]

    def installs(self):
        return [cmd for cmd in self.commands() if cmd[1:4] == ["-m", "pip", "install"]]


@pytest.fixture
def pip(monkeypatch):
    fake = Pip(module.AnsibleModule.run_command)

    def run_command(self, cmd, *args, **kwargs):
        return fake.run_command(self, cmd, *args, **kwargs)

    monkeypatch.setattr(module.AnsibleModule, "run_command", run_command)
    return fake


@pytest.fixture
def files(tmp_path):
    """Requirement and constraints files, and a tiny source tree of nova."""
    (tmp_path / "requirements.txt").write_text("oslo.config>=9.0\npbr\n")
    (tmp_path / "constraints.txt").write_text("oslo.config===9.6.0\npbr===6.1.0\n")
    src = tmp_path / "src" / "nova"
    src.mkdir(parents=True)
    (src / "setup.cfg").write_text("[metadata]\nname = nova\n")
    return tmp_path


def venv(path, **kwargs):
    args = dict(path=str(path), python=PYTHON)
    args.update(kwargs)
    return args


def stamp(path):
    with open(os.path.join(path, module.STAMP)) as f:
        return json.load(f)


# -- building and the stamp -----------------------------------------------------


def test_builds_once_then_the_stamp_makes_it_a_no_op(files, pip, run_module):
    path = files / "venv"
    args = venv(
        path,
        packages=["setuptools"],
        requirements=[str(files / "requirements.txt")],
        constraints=str(files / "constraints.txt"),
    )

    first = run_module(module, args)

    assert first["changed"] is True
    assert first["path"] == str(path)
    assert first["python"] == str(path / "bin" / "python")
    assert re.fullmatch(r"[0-9a-f]{16}", first["key"])
    assert first["installed_siblings"] == []
    assert os.access(first["python"], os.X_OK)
    python = first["python"]
    assert pip.commands() == [
        [PYTHON, "-m", "venv", str(path)],
        [python, "-m", "pip", "install", "-q", "-c", str(files / "constraints.txt")]
        + ["setuptools", "-r", str(files / "requirements.txt")],
    ]
    assert stamp(path)["key"] == first["key"]

    pip.calls.clear()
    second = run_module(module, args)

    assert second["changed"] is False
    assert second["key"] == first["key"] and second["path"] == first["path"]
    assert pip.commands() == []  # only the interpreter was asked its version


def test_key_in_the_path(files, pip, run_module):
    result = run_module(module, venv(files / "cache" / "deps-{key}", packages=["pbr"]))

    assert result["path"] == str(files / "cache" / f"deps-{result['key']}")
    assert stamp(result["path"])["key"] == result["key"]
    assert os.path.exists(str(files / "cache" / f"deps-{result['key']}") + ".lock")
    assert not os.path.exists(files / "cache" / "deps-{key}")


def test_the_key_follows_a_requirement_files_content(files, pip, run_module):
    args = venv(files / "cache" / "deps-{key}", requirements=[str(files / "requirements.txt")])
    first = run_module(module, args)
    same = run_module(module, args)

    (files / "requirements.txt").write_text("oslo.config>=9.1\npbr\n")
    changed = run_module(module, args)

    assert same["key"] == first["key"] and same["changed"] is False
    assert changed["key"] != first["key"]
    assert changed["changed"] is True
    assert changed["path"] != first["path"]
    assert os.path.exists(first["path"])  # the cache keeps the other input set


def test_the_key_follows_constraints_packages_and_layering(files, pip, run_module):
    base = venv(files / "v-{key}", packages=["pbr"], constraints=str(files / "constraints.txt"))
    keys = {run_module(module, base, check_mode=True)["key"]}
    (files / "constraints.txt").write_text("pbr===7.0.0\n")
    keys.add(run_module(module, base, check_mode=True)["key"])
    keys.add(run_module(module, dict(base, packages=["pbr", "six"]), check_mode=True)["key"])
    keys.add(run_module(module, dict(base, unconstrained=["pbr"]), check_mode=True)["key"])

    assert len(keys) == 4


def test_a_rebuild_in_place_when_the_inputs_change(files, pip, run_module):
    path = files / "venv"
    run_module(module, venv(path, packages=["pbr"]))
    (path / "leftover").write_text("from the old build")

    result = run_module(module, venv(path, packages=["pbr", "six"]))

    assert result["changed"] is True
    assert not (path / "leftover").exists()
    assert stamp(path)["key"] == result["key"]


# -- constraints ------------------------------------------------------------------


def test_unconstrained_drops_exactly_the_named_pins(files, pip, run_module):
    constraints = files / "upper-constraints.txt"
    original = (
        "# nova===1 in a comment stays\n"
        "nova===33.0.2\n"
        "nova-lib===1.0.0\n"
        "novaclient===2.0.0\n"
        "python-novaclient===18.7.0\n"
        "NOVA >= 30\n"
        "\n"
        "os_vif===4.0.0;python_version>='3.10'\n"
        "os-vif-extra===1.0\n"
        "oslo.config===9.6.0\n"
    )
    constraints.write_text(original)
    path = files / "venv"

    run_module(
        module,
        venv(
            path,
            packages=["nova==34.0.0"],
            constraints=str(constraints),
            unconstrained=["nova", "os-vif"],
        ),
    )

    (install,) = pip.installs()
    edited = path / "constraints.txt"
    assert install[5:7] == ["-c", str(edited)]
    assert edited.read_text() == (
        "# nova===1 in a comment stays\n"
        "nova-lib===1.0.0\n"
        "novaclient===2.0.0\n"
        "python-novaclient===18.7.0\n"
        "\n"
        "os-vif-extra===1.0\n"
        "oslo.config===9.6.0\n"
    )
    assert constraints.read_text() == original


def test_constraints_are_used_as_they_are_without_unconstrained(files, pip, run_module):
    run_module(
        module, venv(files / "venv", packages=["pbr"], constraints=str(files / "constraints.txt"))
    )

    (install,) = pip.installs()
    assert install[5:7] == ["-c", str(files / "constraints.txt")]
    assert not (files / "venv" / "constraints.txt").exists()


# -- missing inputs -------------------------------------------------------------


@pytest.mark.parametrize("option", ["requirements", "editable", "siblings"])
def test_a_missing_source_is_named(files, pip, run_module, option):
    missing = str(files / "nowhere")

    result = run_module(module, venv(files / "venv", **{option: [missing]}))

    assert result["failed"] is True
    assert result["msg"] == f"missing source: {missing} does not exist"
    assert pip.calls == []
    assert not (files / "venv").exists()


def test_a_missing_constraints_file_is_named(files, pip, run_module):
    missing = str(files / "nowhere" / "constraints.txt")

    result = run_module(module, venv(files / "venv", constraints=missing))

    assert result["failed"] is True
    assert result["msg"] == f"missing constraints file: {missing}"
    assert pip.calls == []


def test_an_interpreter_that_does_not_run(files, pip, run_module):
    python = files / "python3"
    python.write_text("#!/bin/sh\necho 'cannot load libpython' >&2\nexit 127\n")
    python.chmod(0o755)

    result = run_module(module, venv(files / "venv", python=str(python)))

    assert result["failed"] is True
    assert result["msg"] == f"interpreter {python} does not run: cannot load libpython"


def test_a_failing_install_leaves_no_stamp_and_is_retried(files, pip, run_module):
    path = files / "venv"
    lines = "\n".join(f"line {i}" for i in range(30))
    pip.fail_with = f"{lines}\nERROR: No matching distribution found for pbr===99"

    failed = run_module(module, venv(path, packages=["pbr===99"]))

    assert failed["failed"] is True
    assert failed["msg"] == f"installing packages failed in {path}"
    assert failed["stderr"].endswith("ERROR: No matching distribution found for pbr===99")
    assert len(failed["stderr"].splitlines()) == 15
    assert not (path / module.STAMP).exists()

    pip.fail_with = None
    retried = run_module(module, venv(path, packages=["pbr===99"]))
    assert retried["changed"] is True


def test_pip_gets_the_environment(files, pip, run_module):
    run_module(
        module, venv(files / "venv", packages=["pbr"], environment={"SKIP_GENERATE_RENO": 1})
    )

    ((_, env),) = [
        (cmd, env)
        for cmd, env in pip.calls
        if cmd[1:3] == ["-m", "pip"] and not is_pip_upgrade(cmd)
    ]
    assert env["SKIP_GENERATE_RENO"] == "1"
    assert env["PIP_DISABLE_PIP_VERSION_CHECK"] == "1"


# -- check mode and absent ------------------------------------------------------


def test_check_mode_builds_nothing(files, pip, run_module):
    path = files / "cache" / "deps-{key}"

    result = run_module(module, venv(path, packages=["pbr"]), check_mode=True)

    assert result["changed"] is True
    assert result["path"] == str(files / "cache" / f"deps-{result['key']}")
    assert pip.commands() == []
    assert not (files / "cache").exists()


def test_check_mode_on_a_built_virtualenv_is_a_no_op(files, pip, run_module):
    args = venv(files / "venv", packages=["pbr"])
    built = run_module(module, args)

    result = run_module(module, args, check_mode=True)

    assert result["changed"] is False
    assert result["key"] == built["key"]


def test_absent_removes_it(files, pip, run_module):
    path = files / "venv"
    run_module(module, venv(path, packages=["pbr"]))

    in_check_mode = run_module(module, venv(path, state="absent"), check_mode=True)
    assert in_check_mode["changed"] is True
    assert path.exists()

    removed = run_module(module, venv(path, state="absent"))
    again = run_module(module, venv(path, state="absent"))

    assert removed["changed"] is True
    assert removed["path"] == str(path) and removed["python"] is None
    assert not path.exists()
    assert again["changed"] is False


# -- layering, editable trees and siblings --------------------------------------


def source_tree(root, name, setup_cfg=None, pyproject=None):
    src = root / "src" / name
    src.mkdir(parents=True)
    if setup_cfg is not None:
        (src / "setup.cfg").write_text(setup_cfg)
    if pyproject is not None:
        (src / "pyproject.toml").write_text(pyproject)
    return str(src)


def test_a_layered_virtualenv_with_editable_trees_and_siblings(files, pip, run_module):
    deps = run_module(module, venv(files / "deps-{key}", packages=["os-vif", "oslo.config"]))
    os_vif = source_tree(files, "os-vif", setup_cfg="[metadata]\nname = os_vif\n")
    novaclient = source_tree(
        files, "python-novaclient", pyproject='[project]\nname = "python-novaclient"\n'
    )
    nova = str(files / "src" / "nova")
    path = files / "venv"
    pip.calls.clear()

    result = run_module(
        module,
        venv(
            path,
            layered_on=deps["path"],
            editable=[nova],
            siblings=[os_vif, novaclient],
            environment={"SKIP_WRITE_GIT_CHANGELOG": "1"},
        ),
    )

    assert result["changed"] is True
    assert result["installed_siblings"] == [os_vif]  # os-vif is a dependency, novaclient not
    python = str(path / "bin" / "python")
    editable = [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e"]
    assert pip.commands() == [
        [PYTHON, "-m", "venv", "--without-pip", str(path)],
        editable + [nova],
        editable + [os_vif],
    ]
    pth = os.path.join(module._site_packages(python), "_shard_layer.pth")
    with open(pth) as f:
        assert f.read() == module._site_packages(os.path.join(deps["path"], "bin", "python")) + "\n"
    assert "os-vif" in module._installed(python)  # the layer below shows through

    pip.calls.clear()
    again = run_module(
        module,
        venv(
            path,
            layered_on=deps["path"],
            editable=[nova],
            siblings=[os_vif, novaclient],
            environment={"SKIP_WRITE_GIT_CHANGELOG": "1"},
        ),
    )
    assert again["changed"] is False
    assert again["installed_siblings"] == [os_vif]
    assert pip.commands() == []


def test_a_layered_virtualenv_installs_its_own_packages_without_deps(files, pip, run_module):
    deps = run_module(module, venv(files / "deps", packages=["nova==33.0.2"]))
    (files / "constraints.txt").write_text("nova===34.0.0\npbr===6.1.0\n")
    path = files / "venv"
    pip.calls.clear()

    run_module(
        module,
        venv(
            path,
            layered_on=deps["path"],
            packages=["nova==33.0.2"],
            constraints=str(files / "constraints.txt"),
            unconstrained=["nova"],
        ),
    )

    (install,) = pip.installs()
    assert install == [
        str(path / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "-c",
        str(path / "constraints.txt"),
        "--no-deps",
        "--ignore-installed",
        "nova==33.0.2",
    ]
    assert (path / "constraints.txt").read_text() == "pbr===6.1.0\n"


def test_siblings_of_a_plain_virtualenv_are_its_own_packages(files, pip, run_module):
    os_vif = source_tree(files, "os-vif", setup_cfg="[metadata]\nname = os-vif\n")
    oslo = source_tree(files, "oslo.log", setup_cfg="[metadata]\nname = oslo.log\n")

    result = run_module(module, venv(files / "venv", packages=["os_vif"], siblings=[os_vif, oslo]))

    assert result["installed_siblings"] == [os_vif]


# -- dist_name ----------------------------------------------------------------------


def test_dist_name_from_setup_cfg(tmp_path):
    src = source_tree(tmp_path, "a", setup_cfg="[metadata]\nname = os_vif\nsummary = x\n")

    assert module.dist_name(src) == "os_vif"


def test_dist_name_from_pyproject(tmp_path):
    pyproject = (
        '[build-system]\nrequires = ["setuptools"]\n\n'
        '[project]\nversion = "1.0"\nname = "python-novaclient"\n\n'
        '[tool.other]\nname = "not-this"\n'
    )
    src = source_tree(tmp_path, "b", pyproject=pyproject)

    assert module.dist_name(src) == "python-novaclient"


def test_dist_name_prefers_setup_cfg_and_survives_a_broken_one(tmp_path):
    both = source_tree(
        tmp_path,
        "c",
        setup_cfg="[metadata]\nname = from-cfg\n",
        pyproject="[project]\nname = 'x'\n",
    )
    broken = source_tree(
        tmp_path, "d", setup_cfg="not an ini file\n", pyproject="[project]\nname = 'from-toml'\n"
    )
    neither = source_tree(tmp_path, "e", pyproject='[tool.poetry]\nname = "nope"\n')

    assert module.dist_name(both) == "from-cfg"
    assert module.dist_name(broken) == "from-toml"
    assert module.dist_name(neither) is None


# -- the lock -------------------------------------------------------------------------


def test_waits_for_the_lock_and_uses_what_the_holder_built(files, pip, run_module):
    args = venv(files / "cache" / "deps-{key}", packages=["pbr"])
    planned = run_module(module, args, check_mode=True)
    path = planned["path"]
    os.makedirs(path)
    lock = open(path + ".lock", "w")  # noqa: SIM115 - held across the thread
    fcntl.flock(lock, fcntl.LOCK_EX)

    def other_job_finishes():
        time.sleep(0.3)
        with open(os.path.join(path, module.STAMP), "w") as f:
            json.dump({"key": planned["key"], "siblings": [], "built": time.time()}, f)
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()

    thread = threading.Thread(target=other_job_finishes)
    thread.start()
    try:
        result = run_module(module, args)
    finally:
        thread.join()

    assert result["changed"] is False
    assert pip.commands() == []


def test_gives_up_on_a_lock_held_too_long(files, pip, run_module):
    path = files / "venv"
    with open(str(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)

        result = run_module(module, venv(path, packages=["pbr"], timeout=0))

    assert result["failed"] is True
    assert result["msg"] == f"timed out waiting for the lock on {path}"
    assert pip.commands() == []


def test_a_new_virtualenv_gets_a_current_pip_first_under_the_constraints(
    files, pip, run_module, tmp_path
):
    path = tmp_path / "venv"
    run_module(module, venv(path, packages=["pbr"], constraints=str(files / "constraints.txt")))
    python = str(path / "bin" / "python")
    constraints = ["-c", str(files / "constraints.txt")]
    assert pip.pip_upgrades() == [[python, "-m", "pip", "install", "-q", *constraints, "pip"]]
    # ... before anything else is installed.
    installs = [cmd for cmd, _ in pip.calls if cmd[1:4] == ["-m", "pip", "install"]]
    assert is_pip_upgrade(installs[0])


def test_a_reader_waits_while_another_job_holds_the_lock(files, pip, run_module):
    """A job rebuilding the virtualenv holds the lock: its stamp, read meanwhile, may be
    of a tree being removed. Reading takes the lock too."""
    args = venv(files / "venv", packages=["pbr"])
    built = run_module(module, args)
    with open(built["path"] + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)

        result = run_module(module, dict(args, timeout=0))

    assert result["failed"] is True
    assert result["msg"] == f"timed out waiting for the lock on {built['path']}"
    assert run_module(module, args)["changed"] is False  # once released


def test_a_rebuild_removes_the_stamp_before_anything_else(files, pip, run_module, monkeypatch):
    path = files / "venv"
    run_module(module, venv(path, packages=["pbr"]))
    stamped_while_removing = []
    real = module.shutil.rmtree

    def rmtree(target, *a, **kw):
        stamped_while_removing.append(os.path.exists(os.path.join(target, module.STAMP)))
        return real(target, *a, **kw)

    monkeypatch.setattr(module.shutil, "rmtree", rmtree)
    run_module(module, venv(path, packages=["pbr", "six"]))

    assert stamped_while_removing == [False]


# -- what was built, recorded ---------------------------------------------------


def test_the_records_say_what_was_built_and_are_written_once(files, pip, run_module):
    deps = run_module(module, venv(files / "deps-{key}", packages=["oslo.config"]))
    nova = files / "src" / "nova"
    subprocess.run(["git", "init", "-q", str(nova)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(nova),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "The change under test",
        ],
        check=True,
    )
    head = subprocess.run(
        ["git", "-C", str(nova), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    path = files / "venv"
    args = venv(
        path,
        layered_on=deps["path"],
        editable=[str(nova)],
        freeze=str(files / "pip-freeze-venv.txt"),
        source_record=str(files / "source-venv.txt"),
    )
    run_module(module, dict(args, freeze=None, source_record=None))
    # pip's editable install leaves this behind (the fake pip does not).
    info = os.path.join(
        module._site_packages(str(path / "bin" / "python")), "nova-34.0.0.dist-info"
    )
    os.makedirs(info)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: nova\nVersion: 34.0.0\n")
    with open(os.path.join(info, "direct_url.json"), "w") as f:
        json.dump({"url": nova.as_uri(), "dir_info": {"editable": True}}, f)

    first = run_module(module, args)
    # Built before: only the records are new (a change of the workspace).
    assert first["changed"] is True
    assert first["recorded"] == [args["freeze"], args["source_record"]]
    freeze = (files / "pip-freeze-venv.txt").read_text().splitlines()
    assert f"-e {nova.as_uri()}  # nova==34.0.0" in freeze
    assert "oslo.config==1.0" in freeze  # the layer below shows through
    assert (files / "source-venv.txt").read_text() == f"{head} The change under test\n"
    assert not any(cmd[1:3] == ["-m", "pip"] and "freeze" in cmd for cmd, _ in pip.calls)

    again = run_module(module, args)
    assert again["changed"] is False and again["recorded"] == []


def test_the_phase_option_brackets_the_build_and_a_failure_has_no_end(files, pip, run_module):
    ws = files / "ws"
    phase = dict(workspace=str(ws), name="build", start=True, end=True)

    def events():
        return [(e["phase"], e["event"]) for e in phases.read_events(ws / phases.PHASES_FILE)]

    built = run_module(module, venv(files / "venv", packages=["pbr"], phase=phase))
    assert built["changed"] is True
    assert events() == [("build", "start"), ("build", "end")]

    pip.fail_with = "ERROR: No matching distribution found for pbr===99"
    failed = run_module(module, venv(files / "other", packages=["pbr===99"], phase=phase))
    assert failed["failed"] is True
    assert events() == [("build", "start"), ("build", "end"), ("build", "start")]

    run_module(module, venv(files / "venv", packages=["pbr"], phase=phase), check_mode=True)
    assert len(events()) == 3
