"""The local executor (./shard run, ./shard janitor): a job of zuul.d/ run here as Zuul runs it.

What Zuul does and this does too: freeze the job (inheritance, playbooks,
vars, secrets), prepare the projects' git repositories under work/src, build
the `zuul` variable, write an inventory whose node is this machine, run the
pre-run playbooks (stop at the first failure: Zuul would retry), the run
playbooks, then every post-run playbook with zuul_success set (cleanup ones
even after a cancellation), with an ansible.cfg like Zuul's (no repository
ansible.cfg, roles from the job's repository, modules next to the playbooks).
What differs: the node is reached with the local connection, src_dir is an
absolute path into the run directory (roles join it to ansible_user_dir, a
no-op for absolute paths), and secrets come from the embedded cloud's handout
or --cloud/--secret-file instead of being decrypted.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml

from shard_jobs import ansible, ara_records, cloud, cloud_sources, paths, replay, zuul_config
from shard_jobs.credentials import target_secret
from shard_jobs.output import report_summary
from shard_jobs.rules import labels, profiles
from shard_jobs.settings import RunError, RunSettings, parse_extra_var
from shard_jobs.sources import (
    CANONICAL_HOST,
    local_trees,
    pinned_version,
    prepare_repo,
    project_entry,
    release_source,
)

NODE_PYTHON = os.environ.get("SHARD_NODE_PYTHON", "/usr/bin/python3")
PROGRESS = Path(__file__).resolve().parent / "ansible_plugins" / "callback"
ACTIONS = Path(__file__).resolve().parent / "ansible_plugins" / "action"

# What zuul.project and each zuul.items[].project hold of the item's project entry.
ITEM_PROJECT_KEYS = ("name", "short_name", "canonical_hostname", "canonical_name", "src_dir")


def report_env(settings: RunSettings) -> dict:
    """What the efficiency report (the shard_report module) measures
    beyond the code under test: this program's process tree (the harness), and
    the embedded cloud's processes when the job runs against it."""
    env = {"SHARD_RUN_PID": str(os.getpid())}
    if settings.embedded_cloud:
        manifest = cloud.load_manifest()
        pids = cloud.process_ids(manifest) if manifest else []
        if pids:
            env["SHARD_RUN_CLOUD_PIDS"] = ",".join(map(str, pids))
    return env


# ---------------------------------------------------------------- the run


# Zuul's names of the phases, as its executor passes them (zuul_execution_phase).
EXECUTION_PHASES = {"pre-run": "pre", "run": "run", "post-run": "post"}
# This repository as Zuul names a project (sources.project_entry): its playbooks'
# zuul_execution_canonical_name_and_path start with it.
LIBRARY = "shard-jobs/shard-jobs"
LIBRARY_CANONICAL_NAME = f"{CANONICAL_HOST}/{LIBRARY}"


def execution_vars(phase: str, index: int, playbook, results: dict) -> dict:
    """The extra variables Zuul's executor gives one playbook run: where it runs
    (zuul_execution_*) and, in post-run, the results so far (zuul_success,
    zuul_will_retry). As strings: the executor passes them as -e key=value."""
    out = {
        "zuul_execution_phase": EXECUTION_PHASES[phase],
        "zuul_execution_phase_index": str(index),
        # The library is an untrusted project of the tenant.
        "zuul_execution_trusted": "False",
        "zuul_execution_canonical_name_and_path": f"{LIBRARY_CANONICAL_NAME}/{playbook.path}",
        "zuul_execution_branch": "master",
    }
    out.update({key: str(bool(value)) for key, value in results.items()})
    return out


class LocalRun:
    def __init__(self, settings: RunSettings):
        self.settings = settings
        self.objects = zuul_config.load(paths.REPO / "zuul.d")
        try:
            self.job = zuul_config.freeze(self.objects, settings.job)
        except zuul_config.ConfigError as exc:
            raise RunError(str(exc)) from None
        self.build = settings.build or uuid.uuid4().hex
        error = labels.build_id_error(self.build)
        if error:
            raise RunError(error)
        self.dir = paths.RUNS_DIR / self.build
        self.work = self.dir / "work"
        self.src_root = self.work / "src"
        self.log_root = self.dir / "logs"
        self.private = self.dir / "private"  # secrets, inventory: never collected
        self.playbooks = []
        self.cancelled = False
        self.in_cleanup = False  # a cleanup playbook runs: the first interrupt spares it
        self.cleanup_warned = False
        self.current = None  # the running ansible-playbook
        self.report_env = {}

    # -- preparation
    def extra_job_vars(self) -> dict:
        out = dict(self.settings.variables)
        for item in self.settings.extra_vars:
            out.update(parse_extra_var(item))
        return out

    def sources(self) -> dict:
        """Each project's source: its --src tree, else (the project the profile
        builds) its source release; a RunError for a project that has neither."""
        wanted = local_trees(self.settings.src)
        projects = list(self.job.required_projects)
        for name in wanted:
            if name not in projects:
                projects.append(name)
        profile_project = self.job.variables.get("shard_project")
        for name in projects:
            if name not in wanted:
                if name != profile_project:
                    raise RunError(f"no source for {name}: pass --src {name}=PATH")
                package = self.profile_package()
                # The embedded cloud that follows a branch: the commit it runs,
                # as the release is the code of a cloud that runs a release.
                followed = {}
                if self.settings.embedded_cloud:
                    followed = cloud_sources.load(paths.CLOUD_DIR).get(package)
                if followed:
                    wanted[name] = cloud_sources.followed_source(followed, package)
                else:
                    wanted[name] = release_source(package, pinned_version(package))
        return wanted

    def profile_package(self) -> str:
        return self.profile()["package"]

    def profile(self) -> dict:
        """The job's profile (shard_profile), or a RunError naming the known ones."""
        profile = self.job.variables.get("shard_profile", "nova-compute")
        root = str(paths.ROLES / "shard" / "profiles")
        error = profiles.profile_error(profile, root)
        if error:
            raise RunError(error)
        path = Path(profiles.profile_path(profile, root)) / profiles.PROFILE_FILE
        return yaml.safe_load(path.read_text())

    def zuul_var(self, projects: dict, item_project: str) -> dict:
        """Zuul's variable as the executor gives it, for this local build (a replayed
        build's change in its item: branch, ref, change, pipeline...)."""
        zuul = self._zuul_var(projects, item_project)
        given = self.settings.zuul_item
        zuul.update(given)
        zuul["items"][0].update({k: v for k, v in given.items() if k not in ("tenant", "pipeline")})
        if "branch" in given:
            zuul["projects"][zuul["project"]["canonical_name"]]["checkout"] = given["branch"]
        return zuul

    def _zuul_var(self, projects: dict, item_project: str) -> dict:
        short = self.build[:7]
        item = projects[item_project]
        return {
            "build": self.build,
            "buildset": uuid.uuid5(uuid.NAMESPACE_OID, self.build).hex,
            "event_id": uuid.uuid5(uuid.NAMESPACE_URL, self.build).hex,
            "tenant": "local",
            "pipeline": "check",
            "job": self.job.name,
            "voting": True,
            "timeout": self.job.timeout,
            "attempts": 1,
            "max_attempts": 3,
            "ansible_version": "local",
            "ref": "refs/heads/master",
            "branch": "master",
            "override_checkout": None,
            "change_url": f"local:{short}",
            "project": {k: item[k] for k in ITEM_PROJECT_KEYS},
            "projects": {p["canonical_name"]: p for p in projects.values()},
            "items": [
                {
                    "project": {k: item[k] for k in ITEM_PROJECT_KEYS},
                    "branch": "master",
                    "change_url": f"local:{short}",
                }
            ],
            "executor": {
                "hostname": os.uname().nodename,
                "src_root": str(self.src_root),
                "log_root": str(self.log_root),
                "work_root": str(self.work),
                "result_data_file": str(self.work / "results.json"),
                "inventory_file": str(self.private / "inventory.yaml"),
            },
        }

    def prepare(self):
        job_vars = dict(self.job.variables)
        job_vars.update(self.extra_job_vars())
        self.job.variables = job_vars
        if "shard_profile" in job_vars and not job_vars.get("shard_profile_dir"):
            self.profile()
        secret = target_secret(self.settings)
        self.report_env = report_env(self.settings)
        sources = self.sources()
        for d in (self.src_root, self.log_root, self.private):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.private, 0o700)
        projects = {}
        for name, source in sources.items():
            dest = self.src_root / CANONICAL_HOST / name
            prepare_repo(source, dest)
            projects[name] = project_entry(name, dest)
        if not projects:
            # A job about the cloud rather than a project (the janitor): its
            # item is this repository, as in a periodic pipeline of its own.
            item = project_entry(LIBRARY, paths.REPO)
            self.zuul = self.zuul_var({item["name"]: item}, item["name"])
            self.zuul["projects"] = {}
        else:
            item_project = job_vars.get("shard_project")
            if item_project not in projects:
                item_project = next(iter(projects))
            self.zuul = self.zuul_var(projects, item_project)
        inventory = {
            "all": {
                "hosts": {
                    "controller": {
                        "ansible_connection": "local",
                        "ansible_host": "127.0.0.1",
                        # As a nodepool/launcher image's python-path would set it.
                        "ansible_python_interpreter": NODE_PYTHON,
                        "nodepool": {
                            "label": "local",
                            "provider": "local",
                            "cloud": "local",
                            "region": None,
                            "az": None,
                            "interface_ip": "127.0.0.1",
                        },
                    }
                },
                "vars": job_vars,
            }
        }
        self._write(self.private / "inventory.yaml", yaml.safe_dump(inventory))
        self._write(self.private / "zuul-vars.yaml", yaml.safe_dump({"zuul": self.zuul}))
        # As zuul-jobs' log-inventory role logs the executor's: a replay reads it back.
        logged = replay.inventory(inventory["all"]["hosts"], job_vars, self.zuul)
        (self.log_root / "zuul-info").mkdir(exist_ok=True)
        self._write(self.log_root / replay.INVENTORY, yaml.safe_dump(logged))
        # The target cloud's credentials reach the playbooks as shard_cloud, as
        # a secret attached with pass-to-parent would (a site may instead
        # write them on the node from its trusted base job).
        self.secret_values = {"shard_cloud": secret}
        (self.dir / "job.json").write_text(
            json.dumps(
                {
                    "job": self.job.name,
                    "chain": self.job.chain,
                    "build": self.build,
                    "projects": list(projects),
                },
                indent=2,
            )
        )

    @staticmethod
    def _write(path: Path, text: str):
        path.write_text(text)
        os.chmod(path, 0o600)

    def ansible_cfg(self) -> Path:
        cfg = self.private / "ansible.cfg"
        self._write(
            cfg,
            "\n".join(
                [
                    "[defaults]",
                    f"inventory = {self.private / 'inventory.yaml'}",
                    f"local_tmp = {self.private / 'tmp'}",
                    "retry_files_enabled = False",
                    "gathering = smart",
                    "fact_caching = jsonfile",
                    f"fact_caching_connection = {self.private / 'fact-cache'}",
                    f"roles_path = {paths.ROLES}",
                    "nocows = True",
                    "timeout = 30",
                    "internal_poll_interval = 0.01",
                    f"callback_plugins = {PROGRESS}",
                    # Zuul's zuul_return, for the local run (Zuul has its own).
                    f"action_plugins = {ACTIONS}",
                    "stdout_callback = shard_progress",
                    "[ssh_connection]",
                    "pipelining = True",
                    "",
                ]
            ),
        )
        return cfg

    def run_playbook(self, phase: str, index: int, playbook, extra: dict) -> int:
        self.in_cleanup = playbook.cleanup
        values = dict(self.secret_values)
        for s in zuul_config.secrets_for(self.job, playbook):
            values.setdefault(s["name"], {})
        secret_file = self.private / f"secrets-{phase}-{index}.yaml"
        self._write(secret_file, yaml.safe_dump(values))
        extra_file = self.private / f"extra-{phase}-{index}.yaml"
        self._write(extra_file, yaml.safe_dump(execution_vars(phase, index, playbook, extra)))
        # As Zuul's executor runs it: what sets Ansible up is the ansible.cfg
        # written for the run, never an ANSIBLE_* of the user's shell (but for
        # where collections are: ansible.base_env).
        env = ansible.base_env(
            {
                "ANSIBLE_CONFIG": str(self.ansible_cfg()),
                "SHARD_PROGRESS_PREFIX": f"{phase:<9}",
                "SHARD_PROGRESS_GROUP": "role",
                "SHARD_PROGRESS_QUIET_ROLES": "shard",
                "SHARD_PROGRESS_LOG": str(self.log_root / "job-output.txt"),
                **self.report_env,
            },
            inherit_ansible=False,
        )
        # The node's own interpreter (inventory), not this tool's virtualenv.
        env.pop("ANSIBLE_PYTHON_INTERPRETER", None)
        if self.settings.ara:
            # --ara: ARA's callback records the playbook (see ara_records.py).
            env.update(
                ara_records.env(
                    self.log_root, self.private, PROGRESS, [self.job.name, self.build[:12]]
                )
            )
        cmd = [
            paths.bin_path("ansible-playbook"),
            "-e",
            f"@{self.private / 'zuul-vars.yaml'}",
            "-e",
            f"@{secret_file}",
            "-e",
            f"@{extra_file}",
            str(paths.REPO / playbook.path),
        ]
        start = time.monotonic()
        try:
            # No terminal: under Zuul a prompt fails at once, it never waits.
            proc = subprocess.Popen(
                cmd, env=env, cwd=self.work, start_new_session=True, stdin=subprocess.DEVNULL
            )
            self.current = proc
            rc = proc.wait()
        finally:
            self.current = None
            # The credentials live on disk only while a playbook runs (--cleanup
            # reads them again from where the run got them).
            secret_file.unlink(missing_ok=True)
        self.playbooks.append(
            {
                "phase": phase,
                "playbook": playbook.path,
                "rc": rc,
                "seconds": round(time.monotonic() - start, 1),
            }
        )
        return rc

    def cancel(self, signum, frame):
        """Like a Zuul abort: stop the running playbook; cleanup playbooks still run.

        A cleanup playbook is not stopped by the first interrupt: it is what
        removes the run's resources. A second one stops it, and says how to
        finish the cleanup later."""
        if self.in_cleanup and not self.cleanup_warned:
            self.cleanup_warned = True
            sys.stderr.write(
                "run: cleaning up the run's resources; interrupt again to stop (then finish "
                f"with ./shard run {self.job.name} --cleanup --build {self.build})\n"
            )
            return
        self.cancelled = True
        if self.in_cleanup:
            sys.stderr.write(
                "run: cleanup stopped; the run's resources may remain: finish with "
                f"./shard run {self.job.name} --cleanup --build {self.build}\n"
            )
        if self.current is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.current.pid, signal.SIGTERM)

    def cleanup_only(self) -> str:
        """Only the cleanup playbooks, as Zuul runs them for an aborted build."""
        result = "ABORTED"
        for i, pb in enumerate(self.job.post_run):
            if pb.cleanup:
                extra = {"zuul_success": False, "zuul_will_retry": False}
                if self.run_playbook("post-run", i, pb, extra) != 0:
                    result = "POST_FAILURE"
        return result

    def execute(self) -> str:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self.cancel)
        if self.settings.cleanup:
            return self.cleanup_only()
        nesting = {name: i for i, name in enumerate(self.job.chain)}
        pre_failed = False
        achieved = None
        success = False
        result = None
        will_retry = False
        for i, pb in enumerate(self.job.pre_run):
            achieved = nesting[pb.job]
            if self.cancelled or self.run_playbook("pre-run", i, pb, {}) != 0:
                pre_failed = True
                result = "ABORTED" if self.cancelled else "RETRY"
                will_retry = True
                break
        # As Zuul: a failed pre-run that returned zuul.retry: false (zuul_return)
        # is the change's failure, not one to retry.
        if pre_failed and not self.cancelled and self.returned().get("retry") is False:
            result = "FAILURE"
            will_retry = False
        if not pre_failed:
            achieved = None
            for i, pb in enumerate(self.job.run):
                rc = 1 if self.cancelled else self.run_playbook("run", i, pb, {})
                success = rc == 0
                result = "ABORTED" if self.cancelled else ("SUCCESS" if success else "FAILURE")
                if not success:
                    break
        for i, pb in enumerate(self.job.post_run):
            if self.cancelled and not pb.cleanup:
                continue
            if achieved is not None and nesting[pb.job] > achieved:
                continue
            extra = {"zuul_success": success, "zuul_will_retry": will_retry}
            # As Zuul: a failing post-run playbook makes the result POST_FAILURE
            # unless pre-run failed (that result, a retry, takes precedence),
            # and the post-run playbooks after it see zuul_success false.
            if self.run_playbook("post-run", i, pb, extra) != 0:
                success = False
                if not pre_failed:
                    result = "POST_FAILURE"
        return result or "FAILURE"

    def returned(self) -> dict:
        """The zuul section of what the playbooks returned with zuul_return."""
        try:
            data = json.loads((self.work / "results.json").read_text())
        except (OSError, ValueError):
            return {}
        return (data.get("data") or {}).get("zuul") or {}

    def summary(self, result: str) -> dict:
        logs = self.log_root / "shard"
        out = {
            "job": self.job.name,
            "build": self.build,
            "result": result,
            "playbooks": self.playbooks,
            "logs": str(self.log_root),
        }
        for key, name in (
            ("exercise", "result.json"),
            ("phases", "phases.json"),
            ("upgrade", "upgrade.json"),
        ):
            try:
                out[key] = json.loads((logs / name).read_text())
            except (OSError, ValueError):
                out[key] = {}
        out["report"] = report_summary(logs)
        # What Zuul would keep with the build (the upgrade job's last-good record).
        out["artifacts"] = self.returned().get("artifacts") or []
        # The cleanup playbook ends with the leak check: it failing means leaks.
        cleanup = [p for p in self.playbooks if p["playbook"].endswith("cleanup.yaml")]
        out["teardown"] = "ok" if cleanup and cleanup[-1]["rc"] == 0 else "failed"
        return out
