"""The floor's cycle with tempest's selection: what ./shard bench runs on a cloud
built from nothing (the variant from-scratch-tempest): the same tempest run as
the shard job's, on a cloud that a fresh CI node brought up for the change.

    python -m shard_jobs.bench_tempest --secret-file FILE --venv DIR [--workdir DIR]

The floor's cycle (bench_floor.py: nova-compute from DIR, its trait, its
flavor, the boot, stop, start, reboot and delete), then, in the exercise,
what shard-nova-compute-tempest does after its exercise (roles/shard_tempest),
from the same sources: tempest (the nova-compute profile's tempest.packages)
installed by the module shard_virtualenv into a new virtualenv, as on a fresh
node; the accounts and the second flavor made by the module
shard_tempest_accounts; tempest.conf from the role's settings, the profile's
and the role's template; the profile's selection (module_utils/shard_tempest.py)
run by the role's script (files/run-tempest.sh); every server checked and the
results read by the module shard_tempest_result. The modules run as Ansible
runs them on a node (a process each, arguments on standard input), with no
Ansible around them. Teardown deletes the accounts (the module, state absent)
while nova-compute still runs, then the floor's teardown.

Prints the floor's JSON object, with "tempest": its counts, its servers and
the seconds of its steps.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import jinja2
import yaml

from shard_jobs import bench_floor, paths
from shard_jobs.bench.variants import FLOOR_PROFILE
from shard_jobs.bench_floor import Floor, FloorError, _run
from shard_jobs.rules import tempest
from shard_jobs.zuul_config import deep_merge

ROLE = paths.ROLES / "shard_tempest"
# What the role decides of tempest.conf, and how it is written; its defaults
# (projects, workers, timeout); the script that runs tempest.
BASE_CONF = ROLE / "vars" / "main.yaml"
TEMPLATE = ROLE / "templates" / "tempest.conf.j2"
DEFAULTS = ROLE / "defaults" / "main.yaml"
RUN_SCRIPT = str(ROLE / "files" / "run-tempest.sh")
# Runs a file of library/ as its __main__, with the repository's module_utils
# on the path of ansible.module_utils (shard_jobs.rules puts it there), as
# Ansible's module payload does on a node.
_MODULE_MAIN = (
    "import runpy, sys, shard_jobs.rules; runpy.run_path(sys.argv.pop(1), run_name='__main__')"
)


def run_module(name: str, args: dict) -> dict:
    """The module library/<name>.py run once with args: its JSON result. Its
    arguments go on standard input (they may hold the cloud's credentials)."""
    proc = subprocess.run(
        [sys.executable, "-c", _MODULE_MAIN, str(paths.LIBRARY / f"{name}.py")],
        input=json.dumps({"ANSIBLE_MODULE_ARGS": args}),
        capture_output=True,
        text=True,
        cwd=paths.REPO,
    )
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        tail = " / ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
        raise FloorError(f"{name} printed no result (exit {proc.returncode}): {tail}") from None
    # Its arguments as Ansible echoes them: nothing the caller needs.
    result.pop("invocation", None)
    if result.get("failed"):
        raise FloorError(f"{name}: {result.get('msg')}")
    return result


def render_conf(context: dict, profile_config: dict) -> str:
    """tempest.conf as roles/shard_tempest writes it: the role's settings
    (rendered with context, the role's variables), the profile's over them,
    through the role's template."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    base = yaml.safe_load(BASE_CONF.read_text())["_shard_tempest_base_conf"]
    rendered = {
        section: {
            key: env.from_string(value).render(context) if isinstance(value, str) else value
            for key, value in options.items()
        }
        for section, options in base.items()
    }
    return env.from_string(TEMPLATE.read_text()).render(
        context,
        ansible_managed="written by shard_jobs.bench_tempest",
        _shard_tempest_conf=deep_merge(rendered, profile_config),
    )


class TempestFloor(Floor):
    """The floor's cycle, tempest's selection after its exercise."""

    # tempest's accounts are not admins: the profile's flavor_disk with tempest.
    flavor_disk = 1

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.profile = yaml.safe_load(FLOOR_PROFILE.read_text())["tempest"]
        self.defaults = yaml.safe_load(DEFAULTS.read_text())
        self.tempest_dir = self.workdir / "tempest"
        self.tempest_venv = None
        self.accounts_file = self.workdir / "tempest-accounts.yaml"
        self.log_dir = self.workdir / "tempest-logs"
        self.accounts = None
        self.accounts_made = False
        self.teardown_error = None
        self.tempest = {"steps": {}}

    def timed(self, name, func):
        """A step of tempest's, timed apart (inside the floor's step exercise)."""
        return self.step(name, func, steps=self.tempest["steps"])

    def module_args(self, **args) -> dict:
        return dict(cloud=self.secret["cloud"], label=self.label, **args)

    def exercise(self):
        host = super().exercise()
        self.tempest_venv = Path(self.timed("install", self.install))
        # From here on teardown deletes the accounts, whatever got made (by the label).
        self.accounts_made = True
        self.accounts = self.timed(
            "accounts",
            lambda: run_module(
                "shard_tempest_accounts",
                self.module_args(
                    projects=self.defaults["shard_tempest_projects"],
                    flavor=self.flavor.id,
                    image=self.secret.get("image") or "cirros",
                    accounts_file=str(self.accounts_file),
                ),
            ),
        )
        self.timed("run", self.run_tempest)
        checked = self.timed(
            "check",
            lambda: run_module(
                "shard_tempest_result",
                self.module_args(
                    host=self.label,
                    results_csv=str(self.log_dir / "results.csv"),
                    exit_status_file=str(self.log_dir / "tempest-exit-status"),
                ),
            ),
        )
        self.tempest.update(
            tests={k: v for k, v in checked["tests"].items() if k != "failures"},
            servers=checked["servers"],
        )
        return host

    def install(self) -> str:
        """tempest's virtualenv, made by the module the role makes it with, new
        in this run's directory (as on a fresh node): its path."""
        made = run_module(
            "shard_virtualenv",
            dict(
                path=str(self.workdir / "venv-tempest-{key}"),
                python=self.python,
                packages=self.profile["packages"],
                constraints=str(paths.CONSTRAINTS),
            ),
        )
        return made["path"]

    def run_tempest(self):
        """tempest init, tempest.conf, then the role's script: the profile's selection."""
        _run(
            [self.tempest_venv / "bin" / "tempest", "init"]
            + ["--workspace-path", f"{self.tempest_dir}.workspaces.yaml", self.tempest_dir],
            "tempest init",
        )
        context = {
            "_shard_tempest_log_dir": str(self.log_dir),
            "_shard_label": self.label,
            "_shard_tempest_dir": str(self.tempest_dir),
            "_shard_tempest_accounts_file": str(self.accounts_file),
            "_shard_tempest_accounts": self.accounts,
            "shard_wait_timeout": self.timeout,
        }
        conf = render_conf(context, self.profile.get("config") or {})
        (self.tempest_dir / "etc" / "tempest.conf").write_text(conf)
        regex, exclude = tempest.selection(self.profile)
        env = dict(
            os.environ,
            VENV=str(self.tempest_venv),
            LOGS=str(self.log_dir),
            REGEX=regex,
            EXCLUDE=exclude,
            WORKERS=str(self.defaults["shard_tempest_concurrency"]),
        )
        # A session of its own: at its timeout, stestr's workers go with it.
        proc = subprocess.Popen(
            ["/bin/bash", RUN_SCRIPT],
            cwd=self.tempest_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            _, err = proc.communicate(timeout=self.defaults["shard_tempest_timeout"])
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise FloorError(
                f"tempest ran longer than {self.defaults['shard_tempest_timeout']} s"
            ) from None
        if proc.returncode != 0:
            tail = " / ".join(err.strip().splitlines()[-2:]) or f"exit {proc.returncode}"
            raise FloorError(f"run-tempest.sh failed: {tail}")

    def stop(self):
        # tempest's servers go while nova-compute still runs (the profile's
        # teardown_order has servers before the service), once.
        if self.accounts_made:
            self.accounts_made = False
            try:
                run_module("shard_tempest_accounts", self.module_args(state="absent"))
            except FloorError as exc:
                self.teardown_error = f"teardown: {exc}"
            finally:
                self.accounts_file.unlink(missing_ok=True)
        super().stop()

    def remove_build(self):
        super().remove_build()
        for path in (self.tempest_venv, self.tempest_dir):
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
        Path(f"{self.tempest_dir}.workspaces.yaml").unlink(missing_ok=True)
        # shard_virtualenv's lock beside the virtualenv.
        for lock in self.workdir.glob("venv-tempest-*.lock"):
            lock.unlink(missing_ok=True)

    def run(self) -> dict:
        result = super().run()
        if self.teardown_error:
            result["ok"] = False
            result.setdefault("error", self.teardown_error)
        result["tempest"] = self.tempest
        return result


def main(argv=None) -> int:
    return bench_floor.main(argv, cycle=TempestFloor, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
