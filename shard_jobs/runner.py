"""./shard run JOB: run a job of zuul.d/ on this machine the way Zuul's executor runs it.

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

import argparse
import contextlib
import fcntl
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from shard_jobs import ansible, ara_records, cloud, collection_requirements, paths, zuul_config
from shard_jobs.rules import janitor as janitor_rules
from shard_jobs.rules import labels

CANONICAL_HOST = "opendev.org"
NODE_PYTHON = os.environ.get("SHARD_NODE_PYTHON", "/usr/bin/python3")
PROGRESS = Path(__file__).resolve().parent / "ansible_plugins" / "callback"
ACTIONS = Path(__file__).resolve().parent / "ansible_plugins" / "action"


class RunError(Exception):
    """Bad input: one line, non-zero exit, nothing created."""


PROFILE_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


# ---------------------------------------------------------------- sources


def _git(args, cwd):
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="shard-jobs",
        GIT_AUTHOR_EMAIL="shard@localhost",
        GIT_COMMITTER_NAME="shard-jobs",
        GIT_COMMITTER_EMAIL="shard@localhost",
    )
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout


def release_source(package: str, version: str) -> Path:
    """The source release of a package (sdist from the package index), as a tagged git repo."""
    dest = paths.HOME / "cache" / "sources" / f"{package}-{version}"
    if (dest / ".git").exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Runs started together (concurrent jobs) fetch it once, one after the other.
    with open(dest.parent / f".{package}-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (dest / ".git").exists():
            return dest
        return _fetch_release(package, version, dest)


def _fetch_release(package: str, version: str, dest: Path) -> Path:
    download = paths.HOME / "cache" / "sdists"
    download.mkdir(parents=True, exist_ok=True)
    print(f"run: fetching the {package} {version} source release (the code under test)", flush=True)
    start = time.monotonic()
    # pip's output stays off the terminal (a machine's pip configuration may
    # warn once per package); its error line is the failure's one line.
    fetched = subprocess.run(
        [
            paths.bin_path("python"),
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-d",
            str(download),
            f"{package}=={version}",
        ],
        capture_output=True,
        text=True,
    )
    if fetched.returncode != 0:
        errors = [line for line in fetched.stderr.splitlines() if line.startswith("ERROR")]
        reason = errors[-1] if errors else f"pip download exited {fetched.returncode}"
        raise RunError(f"fetching the {package} {version} source release failed: {reason}")
    sdist = next(download.glob(f"{package}-{version}.tar.gz"))
    tmp = dest.with_suffix(".tmp")
    subprocess.run(["rm", "-rf", str(tmp)], check=True)
    tmp.mkdir(parents=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp, filter="data")
    (tmp / f"{package}-{version}").rename(tmp / "src")
    src = tmp / "src"
    _git(["init", "-q", "-b", "master"], src)
    _git(["add", "-A"], src)
    _git(["commit", "-q", "-m", f"{package} {version} source release"], src)
    _git(["tag", version], src)
    src.rename(dest)
    tmp.rmdir()
    print(f"run: {package} {version} source release fetched in {time.monotonic() - start:.0f}s")
    return dest


def _source_git(args: list[str], source: Path, **kwargs) -> subprocess.CompletedProcess:
    """git on the user's tree, as Zuul's merger reads a repository it did not create.

    The tree may belong to another user (a container's bind mount, a CI
    workspace): git refuses such a repository ("dubious ownership") unless it
    is a safe.directory of the protected (global or system) configuration.
    Trust it for this one command only: a global configuration of our own
    that includes the user's and adds the tree (`-c` would not reach the
    upload-pack a local clone starts: git clears it from that environment).
    The user's git configuration is not changed. A failure is one line: git's.
    """
    with tempfile.NamedTemporaryFile("w", prefix="shard-git-", suffix=".cfg") as config:
        user_config = os.environ.get("GIT_CONFIG_GLOBAL") or Path.home() / ".gitconfig"
        config.write(f'[include]\n\tpath = "{user_config}"\n[safe]\n')
        # The work tree for commands run in it; its .git for upload-pack (clone).
        config.write(f'\tdirectory = "{source}"\n\tdirectory = "{source / ".git"}"\n')
        config.flush()
        env = dict(os.environ, GIT_CONFIG_GLOBAL=config.name)
        try:
            return subprocess.run(
                ["git", *args], check=True, capture_output=True, env=env, **kwargs
            )
        except subprocess.CalledProcessError as exc:
            err = exc.stderr.decode(errors="replace")
            lines = [line.strip() for line in err.splitlines() if line.strip()]
            reason = next((x for x in lines if x.startswith(("fatal:", "error:"))), None)
            reason = reason or (lines[0] if lines else f"exit status {exc.returncode}")
            raise RunError(
                f"cannot read the source tree {source} with git {args[0]}: {reason}"
            ) from None


VAR_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_extra_var(item: str) -> dict:
    """One -e of ./shard run, by ansible-playbook's rule: KEY=VALUE is a string;
    a VALUE that starts with { or [ is YAML (a mapping or a list); @FILE is a
    YAML file of variables. Nothing else is converted: 0123 stays "0123"."""
    if item.startswith("@"):
        path = Path(item[1:]).expanduser()
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            reason = str(exc).splitlines()[0]
            raise RunError(
                f"bad -e {item!r}: cannot read a YAML file of variables: {reason}"
            ) from None
        if not isinstance(data, dict):
            raise RunError(f"bad -e {item!r}: the file must hold a mapping of variables")
        return data
    key, sep, value = item.partition("=")
    if not sep or not VAR_NAME_RE.fullmatch(key):
        raise RunError(f"bad -e {item[:60]!r}: expected KEY=VALUE, KEY={{yaml}} or @FILE")
    if value.lstrip().startswith(("{", "[")):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            reason = " ".join(str(exc).split())[:120]
            raise RunError(f"bad -e {key}: its value is not valid YAML: {reason}") from None
        if not isinstance(parsed, (dict, list)):
            raise RunError(f"bad -e {key}: a value in braces or brackets must be a mapping or list")
        return {key: parsed}
    return {key: value}


def prepare_repo(source: Path, dest: Path):
    """Like Zuul's merger: a git repo with the change (here: the tree's state) checked out."""
    source = source.expanduser().resolve()
    if not source.is_dir():
        raise RunError(f"missing source tree: {source} is not a directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if (dest / ".git").exists():
        return  # prepared by an earlier attempt of the same build (--cleanup)
    if (source / ".git").exists():
        _source_git(["clone", "-q", "--no-hardlinks", str(source), str(dest)], source)
        # Uncommitted changes of the tree are part of what is tested: changes to
        # tracked files, and new files not yet added (not the ignored ones). The
        # source's own index is left alone.
        diff = _source_git(["diff", "HEAD", "--binary"], source, cwd=source).stdout
        if diff:
            subprocess.run(
                ["git", "apply", "--index"], cwd=dest, input=diff, check=True, capture_output=True
            )
        untracked = _source_git(
            ["ls-files", "--others", "--exclude-standard", "-z"], source, cwd=source
        ).stdout.split(b"\0")
        for rel in filter(None, (os.fsdecode(name) for name in untracked)):
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / rel, target, follow_symlinks=False)
        if _git(["status", "--porcelain"], dest).strip():
            _git(["add", "-A"], dest)
            _git(["commit", "-q", "-m", "Local changes under test"], dest)
    else:
        # Copied as this user (not cp -a): a copy still owned by the tree's
        # owner would be a "dubious" repository to the git commands below.
        shutil.copytree(source, dest, symlinks=True)
        _git(["init", "-q", "-b", "master"], dest)
        _git(["add", "-A"], dest)
        _git(["commit", "-q", "-m", "Source tree under test"], dest)


def project_entry(name: str, src_dir: Path, checkout: str = "master") -> dict:
    commit = _git(["rev-parse", "HEAD"], src_dir).strip()
    return {
        "name": name,
        "short_name": name.rsplit("/", 1)[-1],
        "canonical_hostname": CANONICAL_HOST,
        "canonical_name": f"{CANONICAL_HOST}/{name}",
        "src_dir": str(src_dir),
        "required": True,
        "checkout": checkout,
        "checkout_description": "local run",
        "commit": commit,
    }


# ---------------------------------------------------------------- target cloud


def target_secret(args) -> dict:
    """The value of the job's shard_cloud secret."""
    if args.cloud:
        import openstack.config

        try:
            region = openstack.config.OpenStackConfig().get_one(cloud=args.cloud)
        except Exception as exc:
            raise RunError(f"unknown cloud {args.cloud!r} in clouds.yaml ({exc})") from None
        entry = dict(region.config)
        secret = {
            "cloud_name": args.cloud,
            "cloud": {
                k: entry[k]
                for k in ("auth", "region_name", "interface", "identity_api_version")
                if k in entry
            },
        }
        if args.secret_file:
            secret.update(yaml.safe_load(Path(args.secret_file).read_text()) or {})
        if not secret.get("transport_url"):
            raise RunError(f"--cloud {args.cloud} needs --secret-file with its transport_url")
        return secret
    if args.secret_file:
        return yaml.safe_load(Path(args.secret_file).read_text())
    if cloud.up() != 0:
        raise RunError("the embedded cloud did not come up (see above)")
    manifest = cloud.load_manifest()
    return yaml.safe_load(Path(manifest["secret_file"]).read_text())


def report_env(args) -> dict:
    """What the efficiency report (the shard_report module) measures
    beyond the code under test: this program's process tree (the harness), and
    the embedded cloud's processes when the job runs against it."""
    env = {"SHARD_RUN_PID": str(os.getpid())}
    if not args.cloud and not args.secret_file:
        manifest = cloud.load_manifest()
        pids = cloud.process_ids(manifest) if manifest else []
        if pids:
            env["SHARD_RUN_CLOUD_PIDS"] = ",".join(map(str, pids))
    return env


# ---------------------------------------------------------------- the run


class LocalRun:
    def __init__(self, args):
        self.args = args
        self.objects = zuul_config.load(paths.REPO / "zuul.d")
        try:
            self.job = zuul_config.freeze(self.objects, args.job)
        except zuul_config.ConfigError as exc:
            raise RunError(str(exc)) from None
        self.build = args.build or uuid.uuid4().hex
        error = labels.build_id_error(self.build)
        if error:
            raise RunError(error)
        self.dir = paths.RUNS_DIR / self.build
        self.work = self.dir / "work"
        self.src_root = self.work / "src"
        self.log_root = self.dir / "logs"
        self.private = self.dir / "private"  # secrets, inventory: never collected
        self.playbooks = []
        self.status = None
        self.cancelled = False

    # -- preparation
    def extra_job_vars(self) -> dict:
        out = dict(getattr(self.args, "variables", None) or {})
        for item in self.args.var:
            out.update(parse_extra_var(item))
        return out

    def sources(self) -> dict:
        wanted = {}
        for item in self.args.src:
            name, sep, path = item.partition("=")
            if not sep or "/" not in name:
                raise RunError(
                    f"bad --src {item!r}: expected PROJECT=PATH, e.g. openstack/nova=~/nova"
                )
            wanted[name] = Path(path)
            # Before anything is written: a missing tree leaves nothing behind.
            if not wanted[name].expanduser().is_dir():
                raise RunError(
                    f"missing source tree: {wanted[name].expanduser()} is not a directory"
                )
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
                wanted[name] = release_source(package, self.pinned_version(package))
        return wanted

    def profile_package(self) -> str:
        return self.profile()["package"]

    def profile(self) -> dict:
        """The job's profile (shard_profile), or a RunError naming the known ones."""
        profile = self.job.variables.get("shard_profile", "nova-compute")
        root = paths.ROLES / "shard" / "profiles"
        path = root / str(profile) / "profile.yaml"
        if not (isinstance(profile, str) and PROFILE_RE.match(profile) and path.is_file()):
            known = ", ".join(sorted(p.parent.name for p in root.glob("*/profile.yaml")))
            raise RunError(f"unknown shard profile {str(profile)[:60]!r}; known profiles: {known}")
        return yaml.safe_load(path.read_text())

    @staticmethod
    def pinned_version(package: str) -> str:
        for line in paths.CONSTRAINTS.read_text().splitlines():
            name, sep, version = line.partition("==")
            if sep and name.strip().lower() == package.lower():
                return version.strip()
        raise RunError(f"{package} has no pinned version in {paths.CONSTRAINTS}")

    def zuul_var(self, projects: dict, item_project: str) -> dict:
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
            "project": {
                k: item[k]
                for k in ("name", "short_name", "canonical_hostname", "canonical_name", "src_dir")
            },
            "projects": {p["canonical_name"]: p for p in projects.values()},
            "items": [
                {
                    "project": {
                        k: item[k]
                        for k in (
                            "name",
                            "short_name",
                            "canonical_hostname",
                            "canonical_name",
                            "src_dir",
                        )
                    },
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
        secret = target_secret(self.args)
        self.report_env = report_env(self.args)
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
            item = project_entry("shard-jobs/shard-jobs", paths.REPO)
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
        self._write(extra_file, yaml.safe_dump(extra))
        env = ansible.base_env(
            {
                "ANSIBLE_CONFIG": str(self.ansible_cfg()),
                "SHARD_PROGRESS_PREFIX": f"{phase:<9}",
                "SHARD_PROGRESS_GROUP": "role",
                "SHARD_PROGRESS_QUIET_ROLES": "shard",
                "SHARD_PROGRESS_LOG": str(self.log_root / "job-output.txt"),
                **getattr(self, "report_env", {}),
            }
        )
        # The node's own interpreter (inventory), not this tool's virtualenv.
        env.pop("ANSIBLE_PYTHON_INTERPRETER", None)
        if getattr(self.args, "ara", False):
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
            proc = subprocess.Popen(cmd, env=env, cwd=self.work, start_new_session=True)
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
        if getattr(self, "in_cleanup", False) and not getattr(self, "cleanup_warned", False):
            self.cleanup_warned = True
            sys.stderr.write(
                "run: cleaning up the run's resources; interrupt again to stop (then finish "
                f"with ./shard run {self.job.name} --cleanup --build {self.build})\n"
            )
            return
        self.cancelled = True
        if getattr(self, "in_cleanup", False):
            sys.stderr.write(
                "run: cleanup stopped; the run's resources may remain: finish with "
                f"./shard run {self.job.name} --cleanup --build {self.build}\n"
            )
        if getattr(self, "current", None) is not None:
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
        if getattr(self.args, "cleanup", False):
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
            # unless pre-run failed (that result, a retry, takes precedence).
            if self.run_playbook("post-run", i, pb, extra) != 0 and not pre_failed:
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
        # The cleanup playbook ends with the leak check: it failing means leaks.
        cleanup = [p for p in self.playbooks if p["playbook"].endswith("cleanup.yaml")]
        out["teardown"] = "ok" if cleanup and cleanup[-1]["rc"] == 0 else "failed"
        return out


def report_summary(logs: Path) -> dict:
    """The efficiency report's files, verdict and CPU split ({} without one)."""
    try:
        report = json.loads((logs / "report.json").read_text())
    except (OSError, ValueError):
        return {}
    cpu = report.get("cpu") or {}
    return {
        "html": str(logs / "report.html"),
        "json": str(logs / "report.json"),
        "verdict": report.get("verdict"),
        "teardown": (report.get("teardown") or {}).get("state"),
        "seconds": report.get("seconds"),
        "cpu_seconds": {
            group: value.get("seconds") for group, value in (cpu.get("groups") or {}).items()
        },
        "machine_cpu_seconds": (cpu.get("machine") or {}).get("seconds"),
        "code_share": cpu.get("code_share"),
    }


def print_summary(summary: dict):
    print(f"\n{summary['job']} build {summary['build'][:12]}: {summary['result']}")
    for p in summary["playbooks"]:
        state = "ok" if p["rc"] == 0 else f"failed (rc {p['rc']})"
        print(f"  {p['phase']:<9} {p['playbook']:<36} {state:<16} {p['seconds']:7.1f}s")
    if summary["phases"]:
        print(
            "  phases: "
            + ", ".join(
                f"{name} {t['seconds']}s" for name, t in summary["phases"].items() if "seconds" in t
            )
        )
    exercise = summary["exercise"]
    if exercise and "landed_on" in exercise:
        print(f"  shard host {exercise.get('host')}, server landed on {exercise.get('landed_on')}")
    elif exercise:
        # A kind of shard without servers says what its exercise did.
        print(f"  shard {exercise.get('label')}: {exercise.get('summary', 'exercised')}")
    upgrade = summary["upgrade"]
    if upgrade:
        source = upgrade["from"]
        print(f"  upgraded from {source['version'] or source['ref']} ({source['reason']})")
        print(
            f"  to {upgrade['to'].get('version')} {upgrade['to'].get('commit', '')[:12]},"
            f" downtime {upgrade.get('downtime_seconds')}s"
        )
    print(f"  teardown and leak check: {summary['teardown']}")
    report = summary.get("report") or {}
    if report:
        groups = report["cpu_seconds"]
        split = ", ".join(
            f"{name.replace('_', ' ')} {groups[name]:.1f}s"
            for name in ("code_under_test", "target_cloud", "harness", "other")
            if groups.get(name) is not None
        )
        share = report.get("code_share")
        print(
            f"  CPU: machine {report['machine_cpu_seconds'] or 0:.1f}s ({split})"
            + (f", {share * 100:.1f}% in the code under test" if share is not None else "")
        )
        print(f"  efficiency report: {report['html']}")
    print(f"  logs in {summary['logs']}")
    if "ara_report" in summary:
        print(f"  ARA report: {summary['ara_report']}")


def list_jobs(as_json: bool = False) -> int:
    """./shard run --list: the jobs of zuul.d/ a run can name, with their first line."""
    try:
        jobs = zuul_config.runnable_jobs(zuul_config.load(paths.REPO / "zuul.d"))
    except (zuul_config.ConfigError, yaml.YAMLError) as exc:
        sys.stderr.write(f"run: {str(exc).splitlines()[0]}\n")
        return 2
    if as_json:
        print(json.dumps([{"job": name, "description": line} for name, line in jobs], indent=2))
    else:
        width = max(len(name) for name, _ in jobs)
        for name, line in jobs:
            print(f"{name:<{width}}  {line}")
    return 0


@contextlib.contextmanager
def result_only(enabled: bool):
    """--json: standard output holds the result alone. Progress lines (this program's
    and the playbooks') are not written; failure lines still go to standard error."""
    if not enabled:
        yield
        return
    previous = os.environ.get("SHARD_PROGRESS_QUIET")
    os.environ["SHARD_PROGRESS_QUIET"] = "1"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        if previous is None:
            os.environ.pop("SHARD_PROGRESS_QUIET", None)
        else:
            os.environ["SHARD_PROGRESS_QUIET"] = previous


def main(args) -> int:
    with result_only(bool(getattr(args, "json", False))):
        outcome = _run_job(args)
    if isinstance(outcome, int):
        return outcome
    summary, result = outcome
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary)
    if getattr(args, "cleanup", False):
        return 0 if result == "ABORTED" else 1  # the cleanup itself succeeded
    return 0 if result == "SUCCESS" else 1


def _run_job(args):
    """Prepare and run the job: (summary, result), or an exit status for bad input."""
    if getattr(args, "cleanup", False) and not args.build:
        sys.stderr.write("run: --cleanup needs the --build of the run to clean up\n")
        return 2
    # The collections the playbooks use (requirements.yml), checked offline
    # against the installed ansible bundle; Galaxy only when one is missing.
    problems = collection_requirements.ensure(paths.REPO, paths.bin_path("python"))
    if problems:
        sys.stderr.write("".join(f"run: {problem}\n" for problem in problems))
        return 2
    try:
        run = LocalRun(args)
        run.prepare()
    except (RunError, zuul_config.ConfigError) as exc:
        sys.stderr.write(f"run: {exc}\n")
        return 2
    except subprocess.CalledProcessError as exc:
        stderr = exc.stderr or ""
        if isinstance(stderr, bytes):
            stderr = stderr.decode(errors="replace")
        why = stderr.strip().splitlines()[-1:] or [f"exit status {exc.returncode}"]
        sys.stderr.write(
            f"run: preparing the run failed: {' '.join(map(str, exc.cmd))}: {why[0]}\n"
        )
        return 2
    result = run.execute()
    summary = run.summary(result)
    # As Zuul's executor removes a build's work directory: the prepared sources
    # (a copy of each project) are not kept; the logs are. --cleanup --build
    # prepares them again.
    shutil.rmtree(run.src_root, ignore_errors=True)
    if getattr(args, "ara", False):
        index, why = ara_records.generate(run.log_root, run.private)
        summary["ara_report"] = str(index) if index else f"not generated: {why}"
    (run.log_root / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary, result


def janitor_main(args) -> int:
    """./shard janitor: the shard-janitor job, run here, and its report as a table."""
    error = janitor_rules.age_error(args.older_than, getattr(args, "force", False))
    if error:
        sys.stderr.write(f"janitor: {error.replace('older-than', '--older-than', 1)}\n")
        return 2
    try:
        re.compile(args.label_pattern)
    except re.error as exc:
        sys.stderr.write(f"janitor: invalid --label-pattern {args.label_pattern!r}: {exc}\n")
        return 2
    build = uuid.uuid4().hex
    report = paths.RUNS_DIR / build / "logs" / "janitor.json"
    job_args = argparse.Namespace(
        job="shard-janitor",
        src=[],
        cloud=args.cloud,
        secret_file=args.secret_file,
        var=[],
        # Typed values, not -e text: the pattern stays the string it is.
        variables={
            "shard_janitor_older_than": args.older_than,
            "shard_janitor_force": bool(getattr(args, "force", False)),
            "shard_janitor_dry_run": bool(args.dry_run),
            "shard_janitor_label_pattern": args.label_pattern,
            "shard_janitor_report": str(report),
        },
        build=build,
        json=False,
        quiet=True,
    )
    with result_only(args.json):
        try:
            run = LocalRun(job_args)
            run.prepare()
        except (RunError, zuul_config.ConfigError) as exc:
            sys.stderr.write(f"janitor: {exc}\n")
            return 2
        result = run.execute()
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        sys.stderr.write(f"janitor: {result}; no report (see {run.log_root}/job-output.txt)\n")
        return 1
    if args.json:
        print(json.dumps(dict(data, result=result), indent=2))
        return 0 if result == "SUCCESS" else 1
    verb = "would delete" if data["dry_run"] else "deleted"
    if not data["labels"]:
        print(f"janitor: nothing labelled older than {data['older_than']}")
    for label, why in sorted(data["labels"].items()):
        kinds = {
            kind: len([r for r in found if r["label"] == label])
            for kind, found in data["resources"].items()
        }
        what = ", ".join(f"{n} {kind}" for kind, n in kinds.items() if n)
        print(f"janitor: {verb} {label}: {what} ({why['reason']})")
    print(f"janitor: {result}; report {report}")
    return 0 if result == "SUCCESS" else 1
