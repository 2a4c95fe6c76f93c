"""A real Zuul on this machine, for the zuul tier: everything on 127.0.0.1, all state in one dir.

What it starts (each process in its own session, stopped by its pid at the end):
ZooKeeper (Debian's package, TLS only, certificates made here with openssl), sshd (its own
port, host key and authorized key: the job node is this machine), and Zuul 14.3.0's
scheduler, executor (bubblewrap sandbox, --keep-jobdir so the test can read the build's
logs), web and launcher (static node provider). The database is a dedicated MariaDB
database and user, dropped at the end. Zuul's git connection serves three local bare
repositories: the config project (tests/zuul/config-project), this library (the current
working tree, with the embedded cloud's handout as the secret's data) and openstack/nova.

Installs what is missing: Debian packages (zookeeper, openssh-server, bubblewrap, rsync),
the pinned Zuul virtualenv (tests/layout/zuul_venv.py) and Zuul's Ansible installations
(zuul-manage-ansible, into ~/.shard-jobs/venvs/zuul-ansible, reused afterwards).
"""

import base64
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from shard_jobs import cloud, git_identity, paths, rules

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "layout"))
import zuul_venv  # noqa: E402

CONFIG_PROJECT = HERE / "config-project"
# The layout for a cloud with real tenants (use_post_review_layout): the site's job.
POST_REVIEW = HERE / "post-review"
POST_REVIEW_JOB = "site-shard-nova-compute"
# The base job's pre-run playbook that leaves the credentials on the node (CI-only layout).
CREDENTIALS_PLAYBOOK = "playbooks/base/credentials.yaml"
TENANT = "shard"
CANONICAL_HOST = "opendev.org"
ANSIBLE_ROOT = Path(os.environ.get("SHARD_ZUUL_ANSIBLE") or paths.HOME / "venvs" / "zuul-ansible")
# Short on purpose: Ansible's SSH control sockets live in <job dir>/<build uuid>/.ansible/cp/
# and a Unix socket path has at most 107 bytes.
WORK_ROOT = Path(os.environ.get("SHARD_ZUUL_WORK") or "/var/tmp/shard-zuul")
# "/<build uuid: 32 hex>/.ansible/cp/<10 hex>.<16 random>"
CONTROL_SOCKET_TAIL = 1 + 32 + len("/.ansible/cp/") + 10 + 1 + 16
DEBIAN_PACKAGES = {
    # package: a file it installs (present = installed)
    "zookeeper": "/usr/share/java/zookeeper.jar",
    "openssh-server": "/usr/sbin/sshd",
    "bubblewrap": "/usr/bin/bwrap",
    "rsync": "/usr/bin/rsync",
    "openssl": "/usr/bin/openssl",
    "git": "/usr/bin/git",
    "openssh-client": "/usr/bin/ssh-keygen",
    "default-jre-headless": "/usr/bin/java",
}
# Debian's zookeeper.jar manifest misses the netty codec its TLS (Netty) listener needs.
ZK_CLASSPATH = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/netty-resolver.jar",
    "/usr/share/java/slf4j-simple.jar",
]
MYSQL_SOCKET = "/run/mysqld/mysqld.sock"
# openstack/glance: required by shard-glance-api; only there so the library's
# configuration loads (this tier builds the nova jobs).
PROJECTS = (
    "shard-config",
    "shard-jobs",
    "openstack/nova",
    "openstack/glance",
    "openstack/unauthorized",
)
DB_NAME = "shard_zuul_test"


class Encrypted(list):
    """A value encrypted as Zuul's secrets are: !encrypted/pkcs1-oaep, a list of chunks."""


class EncryptedDumper(yaml.SafeDumper):
    pass


EncryptedDumper.add_representer(
    Encrypted, lambda dumper, chunks: dumper.represent_sequence("!encrypted/pkcs1-oaep", chunks)
)


def encrypted(handout: dict, key) -> dict:
    """HANDOUT with each string that holds one of its secrets (shard_secrets' rule: a
    password, an application credential's secret, a URL with a password) encrypted with
    KEY as zuul-client encrypt does: RSA-OAEP with SHA-1, in chunks the key can take."""
    found = set(rules.secrets.secret_values(handout).values())
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303 - Zuul's scheme
    size = key.key_size // 8 - 2 * hashes.SHA1.digest_size - 2

    def walk(value):
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        text = None if value is None else str(value)
        if text is not None and (text in found or rules.secrets.secret_values(text)):
            data = text.encode()
            return Encrypted(
                base64.b64encode(key.encrypt(data[i : i + size], oaep)).decode()
                for i in range(0, len(data), size)
            )
        return value

    return walk(handout)


def base_without_credentials(zuul_d: Path) -> None:
    """The config project's base job without the secret and the playbook that writes it."""
    jobs = yaml.safe_load((zuul_d / "jobs.yaml").read_text())
    (base,) = [item["job"] for item in jobs if item["job"]["name"] == "base"]
    base.pop("secrets")
    base["pre-run"] = [run for run in base["pre-run"] if run != CREDENTIALS_PLAYBOOK]
    (zuul_d / "jobs.yaml").write_text(
        "---\n# The base job without the credentials (zuul_site.py).\n"
        + yaml.safe_dump(jobs, sort_keys=False)
    )


class SiteError(Exception):
    pass


def say(msg: str) -> None:
    print(f"zuul-site: {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kw):
    kw.setdefault("check", True)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    try:
        return subprocess.run(cmd, **kw)
    except subprocess.CalledProcessError as exc:
        raise SiteError(
            f"{' '.join(map(str, cmd))} failed (rc {exc.returncode}):\n{exc.stdout}\n{exc.stderr}"
        ) from None


def git(args, cwd, **kw):
    return run(["git", *args], cwd=cwd, env=git_identity.environment(), **kw).stdout


# ---------------------------------------------------------------- installs


def ensure_debian_packages() -> None:
    missing = [pkg for pkg, path in DEBIAN_PACKAGES.items() if not Path(path).exists()]
    if not missing:
        return
    say(f"installing Debian packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env, check=False)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)


def ensure_ansible(zuul_bin: Path) -> None:
    """Zuul's Ansible installations (every version it supports), made once and reused."""
    ANSIBLE_ROOT.mkdir(parents=True, exist_ok=True)
    stamp_file = ANSIBLE_ROOT / ".shard-stamp"
    stamp = (zuul_venv.VENV / ".shard-stamp").read_text().strip()
    with open(ANSIBLE_ROOT.parent / f".{ANSIBLE_ROOT.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
            return
        say(f"installing Zuul's Ansible versions into {ANSIBLE_ROOT} (about 2 minutes)")
        for child in ANSIBLE_ROOT.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
        run([str(zuul_bin / "zuul-manage-ansible"), "-r", str(ANSIBLE_ROOT)], timeout=1800)
        stamp_file.write_text(stamp + "\n")


# ---------------------------------------------------------------- the site


class Site:
    def __init__(self):
        self.work = WORK_ROOT / time.strftime("%d%H%M%S")
        if len(str(self.p("j"))) + CONTROL_SOCKET_TAIL > 107:
            raise SiteError(
                f"{self.p('j')} is too long for Ansible's SSH control sockets under it: "
                "set SHARD_ZUUL_WORK to a shorter directory"
            )
        self.procs: dict[str, subprocess.Popen] = {}
        self.ports = {
            "zookeeper": free_port(),
            "ssh": free_port(),
            "web": free_port(),
            "finger": free_port(),
        }
        self.db_password = secrets.token_hex(16)
        self.manifest = cloud.load_manifest()
        if not self.manifest:
            raise SiteError("the embedded cloud is not up (./shard cloud up)")

    # -- layout of the work dir
    def p(self, *parts) -> Path:
        return self.work.joinpath(*parts)

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['web']}"

    # -- setup
    def prepare(self) -> None:
        ensure_debian_packages()
        python = zuul_venv.ensure(log=say)
        self.zuul_bin = python.parent
        ensure_ansible(self.zuul_bin)
        # Keep the previous run's directory only (for a look after a failure).
        if WORK_ROOT.is_dir():
            for old in sorted(WORK_ROOT.iterdir(), key=lambda d: d.stat().st_mtime)[:-1]:
                shutil.rmtree(old, ignore_errors=True)
        self.work.mkdir(parents=True)
        for d in ("etc", "log", "run", "state", "git", "j", "tls", "ssh", "zk-data"):
            self.p(d).mkdir()
        os.chmod(self.work, 0o700)
        self.make_tls()
        self.make_ssh_keys()
        self.make_database()
        self.make_repos()
        self.write_zuul_conf()

    def make_tls(self) -> None:
        tls = self.p("tls")
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=shard-test-zookeeper-ca",
             "-keyout", tls / "ca.key", "-out", tls / "ca.pem"])  # fmt: skip
        (tls / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        for name in ("server", "client"):
            run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", tls / f"{name}.key", "-out", tls / f"{name}.csr"])  # fmt: skip
            run(["openssl", "x509", "-req", "-days", "2", "-in", tls / f"{name}.csr",
                 "-CA", tls / "ca.pem", "-CAkey", tls / "ca.key", "-CAcreateserial",
                 "-extfile", tls / "san.ext", "-out", tls / f"{name}.pem"])  # fmt: skip
        # ZooKeeper reads a PEM key store: the private key followed by its certificate.
        (tls / "server-keystore.pem").write_text(
            (tls / "server.key").read_text() + (tls / "server.pem").read_text()
        )

    def make_ssh_keys(self) -> None:
        ssh = self.p("ssh")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "shard-test-host",
             "-f", ssh / "host_ed25519_key"])  # fmt: skip
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "zuul-executor",
             "-f", ssh / "executor_key"])  # fmt: skip
        shutil.copy(ssh / "executor_key.pub", ssh / "authorized_keys")

    def mysql(self, sql: str) -> None:
        run(["mysql", "-uroot", f"--socket={MYSQL_SOCKET}", "-e", sql])

    def make_database(self) -> None:
        user = f"'{DB_NAME}'@'127.0.0.1'"
        self.mysql(
            f"DROP DATABASE IF EXISTS {DB_NAME}; CREATE DATABASE {DB_NAME};"
            f"DROP USER IF EXISTS {user}; CREATE USER {user} IDENTIFIED BY '{self.db_password}';"
            f"GRANT ALL ON {DB_NAME}.* TO {user};"
        )

    # -- repositories
    def bare(self, name: str) -> Path:
        return self.p("git", name)

    def publish(self, tree: Path, name: str) -> Path:
        """The tree's current branch as master of bare repo NAME."""
        bare = self.bare(name)
        bare.parent.mkdir(parents=True, exist_ok=True)
        run(["git", "init", "-q", "--bare", "-b", "master", str(bare)])
        git(["push", "-q", str(bare), "HEAD:refs/heads/master"], tree)
        return bare

    def make_repos(self) -> None:
        src = self.p("src")
        src.mkdir()
        handout = yaml.safe_load(Path(self.manifest["secret_file"]).read_text())
        self.handout = handout
        # This library: its working tree as it is now (tracked files with their
        # uncommitted changes, and untracked files that are not ignored).
        lib = src / "shard-jobs"
        run(["git", "clone", "-q", "--no-hardlinks", str(paths.REPO), str(lib)])
        diff = run(["git", "diff", "HEAD", "--binary"], cwd=paths.REPO, text=False).stdout
        if diff:
            run(["git", "apply", "--index"], cwd=lib, input=diff, text=False)
        untracked = git(["ls-files", "-z", "--others", "--exclude-standard"], paths.REPO)
        for rel in filter(None, untracked.split("\0")):
            dest = lib / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(paths.REPO / rel, dest, follow_symlinks=False)
        # The library's secret, if it has one: the embedded cloud's handout, as
        # plain (unencrypted) secret data, acceptable for this local tenant.
        if (lib / "zuul.d" / "secrets.yaml").is_file():
            secret = [{"secret": {"name": "shard-cloud", "data": handout}}]
            (lib / "zuul.d" / "secrets.yaml").write_text(
                "---\n# The embedded cloud's handout (zuul tier).\n"
                + yaml.safe_dump(secret, sort_keys=False)
            )
        self.library_jobs_with_secrets = sorted(
            item["job"]["name"]
            for path in (lib / "zuul.d").glob("*.yaml")
            for item in yaml.safe_load(path.read_text()) or []
            if "job" in item and item["job"].get("secrets")
        )
        git(["add", "-A"], lib)
        git(["commit", "-q", "--allow-empty", "-m", "Working tree under test"], lib)
        self.publish(lib, "shard-jobs")

        # The config project.
        config = src / "shard-config"
        shutil.copytree(CONFIG_PROJECT, config)
        nodes = config / "zuul.d" / "nodes.yaml"
        port = f"connection-port: {self.ports['ssh']}"
        nodes.write_text(nodes.read_text().replace("connection-port: 2222", port))
        # No secret yet, anywhere in its history: once Zuul has made the project's key,
        # use_ci_only_layout adds it encrypted, as a site keeps it.
        base_without_credentials(config / "zuul.d")
        self.write_pipeline_and_projects(config / "zuul.d")
        git(["init", "-q", "-b", "master"], config)
        git(["add", "-A"], config)
        git(["commit", "-q", "-m", "Test tenant: pipeline, base job, static node"], config)
        self.publish(config, "shard-config")

        # openstack/nova: the source release the embedded cloud runs, plus a
        # .zuul.yaml that only adds the shard-jobs template.
        from shard_jobs import sources

        release = sources.release_source("nova", sources.pinned_version("nova"))
        nova = src / "nova"
        run(["git", "clone", "-q", str(release), str(nova)])
        git(["checkout", "-q", "-B", "master"], nova)
        (nova / ".zuul.yaml").write_text("---\n- project:\n    templates:\n      - shard-jobs\n")
        git(["add", ".zuul.yaml"], nova)
        git(["commit", "-q", "-m", "Run the shard jobs"], nova)
        self.publish(nova, "openstack/nova")
        # A consumer that adds the template but that the site did not authorize.
        other = src / "unauthorized"
        other.mkdir()
        (other / ".zuul.yaml").write_text("---\n- project:\n    templates:\n      - shard-jobs\n")
        (other / "README").write_text("A project the site did not authorize for the shard jobs.\n")
        git(["init", "-q", "-b", "master"], other)
        git(["add", "-A"], other)
        git(["commit", "-q", "-m", "Ask for the shard jobs"], other)
        self.publish(other, "openstack/unauthorized")
        # openstack/glance, which shard-glance-api requires: a placeholder repository.
        glance = src / "glance"
        glance.mkdir()
        (glance / "README").write_text("Stands for openstack/glance (not built here).\n")
        git(["init", "-q", "-b", "master"], glance)
        git(["add", "-A"], glance)
        git(["commit", "-q", "-m", "Placeholder"], glance)
        self.publish(glance, "openstack/glance")
        self.trees = {
            "openstack/nova": nova,
            "openstack/unauthorized": other,
            "shard-config": config,
        }
        # What each test's change is made against: the tree as published, so that one
        # test's change (a broken nova-compute) never reaches the next test's build.
        self.base = {
            name: git(["rev-parse", "HEAD"], tree).strip() for name, tree in self.trees.items()
        }

    def write_pipeline_and_projects(self, zuul_d: Path, site_job: str | None = None) -> None:
        """The pipeline, and the site's authorization when the shard job carries a secret.

        Zuul's rule for a job that carries a secret of an untrusted project: it runs only in
        post-review pipelines, and for another project only when a config project lists the
        job in that project's pipeline. When the library's jobs carry a secret, or the site
        gives its secret to SITE_JOB only (the post-review layout), the tenant's pipeline is
        `gate` (post-review) and the site lists that job for openstack/nova; otherwise it is
        `check` (pre-review, as for a proposed change) and nova's .zuul.yaml alone counts.
        """
        library_secret = "shard-nova-compute" in self.library_jobs_with_secrets
        job = site_job or ("shard-nova-compute" if library_secret else None)
        self.pipeline = "gate" if job else "check"
        pipeline = {
            "name": self.pipeline,
            "manager": "independent",
            "post-review": bool(job),
            # No code review system here: a push to a branch of a local bare
            # repository, seen by the git driver's poll, enqueues the new ref.
            "trigger": {"git": [{"event": "ref-updated", "ref": "^refs/heads/.*$"}]},
        }
        (zuul_d / "pipelines.yaml").write_text(
            "---\n# Written by zuul_site.py (see write_pipeline_and_projects).\n"
            + yaml.safe_dump([{"pipeline": pipeline}], sort_keys=False)
        )
        if job:
            project = {"name": "openstack/nova", "gate": {"jobs": [job]}}
            (zuul_d / "projects.yaml").write_text(
                "---\n# The site authorizes openstack/nova to run the shard job, which carries\n"
                "# a secret (openstack/unauthorized is not authorized).\n"
                + yaml.safe_dump([{"project": project}], sort_keys=False)
            )

    def use_post_review_layout(self) -> str:
        """Switch the tenant to the layout for a cloud with real tenants; the config's revision.

        The base job loses its secret and the playbook that writes the credentials on the
        node; the config project gains tests/zuul/post-review/site-jobs.yaml (a child of the
        shard job with the secret, passed to its parent) and lists it for openstack/nova in
        a post-review gate pipeline. Returns once Zuul has loaded it.
        """

        def edit(tree: Path) -> None:
            zuul_d = tree / "zuul.d"
            shutil.copy2(POST_REVIEW / "site-jobs.yaml", zuul_d / "site-jobs.yaml")
            self.write_pipeline_and_projects(zuul_d, site_job=POST_REVIEW_JOB)
            self.write_site_secret(zuul_d)

        rev = self.push("shard-config", "Credentials for the site's shard job only", edit)

        def loaded():
            pipelines = {p["name"] for p in self.api(f"/api/tenant/{TENANT}/pipelines", True) or []}
            job = self.api(f"/api/tenant/{TENANT}/job/{POST_REVIEW_JOB}", True)
            return pipelines == {"gate"} and bool(job) and not self.base_writes_credentials()

        self.wait_for("the post-review layout", loaded, 120, 2, ["scheduler"])
        return rev

    def use_ci_only_layout(self) -> str:
        """The layout the tier starts with (a CI-only cloud): the base job gets the secret
        and writes the credentials on the node. The config's revision, once Zuul loaded it."""

        def edit(tree: Path) -> None:
            zuul_d = tree / "zuul.d"
            shutil.copy2(CONFIG_PROJECT / "zuul.d" / "jobs.yaml", zuul_d / "jobs.yaml")
            self.write_site_secret(zuul_d)

        rev = self.push("shard-config", "Credentials on the node, from the base job", edit)
        self.wait_for("the CI-only layout", self.base_writes_credentials, 120, 2, ["scheduler"])
        return rev

    def base_writes_credentials(self) -> bool:
        """Whether the base job Zuul has loaded runs the playbook that writes them."""
        variants = self.api(f"/api/tenant/{TENANT}/job/base", True) or []
        return any(
            run["path"] == CREDENTIALS_PLAYBOOK
            for variant in variants
            for run in variant.get("pre_run") or []
        )

    def write_site_secret(self, zuul_d: Path) -> None:
        """The handout as the site's secret, encrypted with the config project's key, so
        that no checkout of the config project (every job gets one) holds it in the clear."""
        data = encrypted(self.handout, self.project_key("shard-config"))
        site_secret = [{"secret": {"name": "shard-site-cloud", "data": data}}]
        (zuul_d / "site-secret.yaml").write_text(
            "---\n# The embedded cloud's handout, its secrets encrypted (zuul_site.py).\n"
            + yaml.dump(site_secret, Dumper=EncryptedDumper, sort_keys=False)
        )

    def project_key(self, project: str):
        """PROJECT's public key, which Zuul made when it first loaded the project."""
        with urllib.request.urlopen(f"{self.web_url}/api/tenant/{TENANT}/key/{project}.pub") as r:
            return serialization.load_pem_public_key(r.read())

    def push(self, project: str, message: str, edit) -> str:
        """Push edit(published tree) as a new commit on PROJECT's master: the new revision.

        The commit's parent is master's head (a fast-forward, as Zuul's git driver
        expects), its tree the published tree plus this edit alone.
        """
        tree, bare = self.trees[project], str(self.bare(project))
        git(["fetch", "-q", bare, "master"], tree)
        git(["reset", "-q", "--hard", "FETCH_HEAD"], tree)
        git(["read-tree", "-u", "--reset", self.base[project]], tree)
        edit(tree)
        git(["add", "-A"], tree)
        git(["commit", "-q", "-m", message], tree)
        rev = git(["rev-parse", "HEAD"], tree).strip()
        git(["push", "-q", bare, "HEAD:refs/heads/master"], tree)
        return rev

    # -- configuration
    def write_zuul_conf(self) -> None:
        tls, state = self.p("tls"), self.p("state")
        (self.p("etc", "main.yaml")).write_text(
            yaml.safe_dump(
                [
                    {
                        "tenant": {
                            "name": TENANT,
                            "source": {
                                "git": {
                                    "config-projects": ["shard-config"],
                                    "untrusted-projects": [
                                        "shard-jobs",
                                        "openstack/nova",
                                        "openstack/glance",
                                        "openstack/unauthorized",
                                    ],
                                }
                            },
                        }
                    }
                ],
                sort_keys=False,
            )
        )
        conf = f"""\
[zookeeper]
hosts=127.0.0.1:{self.ports["zookeeper"]}
tls_ca={tls}/ca.pem
tls_cert={tls}/client.pem
tls_key={tls}/client.key
session_timeout=40

[keystore]
password={secrets.token_hex(16)}

[database]
dburi=mysql+pymysql://{DB_NAME}:{self.db_password}@127.0.0.1:3306/{DB_NAME}

[scheduler]
tenant_config={self.p("etc", "main.yaml")}
state_dir={state}/scheduler
command_socket={self.p("run", "scheduler.socket")}

[merger]
git_dir={state}/merger-git
git_user_email=zuul@localhost
git_user_name=zuul
command_socket={self.p("run", "merger.socket")}

[executor]
state_dir={state}/executor
git_dir={state}/executor-git
job_dir={self.p("j")}
command_socket={self.p("run", "executor.socket")}
private_key_file={self.p("ssh", "executor_key")}
default_username=root
manage_ansible=false
ansible_root={ANSIBLE_ROOT}
finger_port={self.ports["finger"]}
min_avail_mem=0
min_avail_hdd=0
load_multiplier=100

[web]
listen_address=127.0.0.1
port={self.ports["web"]}
root={self.web_url}/
command_socket={self.p("run", "web.socket")}

[launcher]
command_socket={self.p("run", "launcher.socket")}
temp_dir={state}/launcher

[connection git]
driver=git
baseurl={self.p("git")}
canonical_hostname={CANONICAL_HOST}
poll_delay=2

[connection static]
driver=static
"""
        self.zuul_conf = self.p("etc", "zuul.conf")
        self.zuul_conf.write_text(conf)
        os.chmod(self.zuul_conf, 0o600)
        for d in ("scheduler", "executor", "merger-git", "executor-git", "launcher"):
            (state / d).mkdir(parents=True, exist_ok=True)

    # -- processes
    def spawn(self, name: str, cmd: list, **kw) -> subprocess.Popen:
        log = open(self.p("log", f"{name}.log"), "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                [str(c) for c in cmd],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kw,
            )
        finally:
            log.close()
        self.procs[name] = proc
        self.p("run", f"{name}.pid").write_text(f"{proc.pid}\n")
        return proc

    def wait_for(self, what: str, check, timeout: float, interval: float = 1.0, procs=()):
        """The product's wait (shard_waits); fails at once when one of procs exited."""

        def probe():
            result = check()
            if result:
                return result
            for name in procs:
                if self.procs[name].poll() is not None:
                    raise SiteError(
                        f"{name} exited (rc {self.procs[name].returncode}) while waiting for "
                        f"{what}; see {self.p('log', name + '.log')}:\n{self.log_tail(name)}"
                    )
            return result

        return rules.waits.wait_until(probe, timeout, what=what, interval=interval, error=SiteError)

    def log_tail(self, name: str, lines: int = 30) -> str:
        try:
            return "\n".join(self.p("log", f"{name}.log").read_text().splitlines()[-lines:])
        except OSError:
            return ""

    @staticmethod
    def port_open(port: int) -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", port)) == 0

    def start_zookeeper(self) -> None:
        tls = self.p("tls")
        cfg = self.p("etc", "zoo.cfg")
        cfg.write_text(
            "\n".join(
                [
                    "tickTime=2000",
                    f"dataDir={self.p('zk-data')}",
                    f"secureClientPort={self.ports['zookeeper']}",
                    "secureClientPortAddress=127.0.0.1",
                    "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
                    f"ssl.keyStore.location={tls}/server-keystore.pem",
                    "ssl.keyStore.type=PEM",
                    f"ssl.trustStore.location={tls}/ca.pem",
                    "ssl.trustStore.type=PEM",
                    "admin.enableServer=false",
                    "",
                ]
            )
        )
        self.spawn(
            "zookeeper",
            ["java", "-Xmx256m", "-cp", ":".join(ZK_CLASSPATH),
             "org.apache.zookeeper.server.ZooKeeperServerMain", cfg],
        )  # fmt: skip
        self.wait_for(
            "ZooKeeper", lambda: self.port_open(self.ports["zookeeper"]), 60, 0.5, ["zookeeper"]
        )

    def start_sshd(self) -> None:
        ssh = self.p("ssh")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        cfg = self.p("etc", "sshd_config")
        cfg.write_text(
            "\n".join(
                [
                    f"Port {self.ports['ssh']}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {ssh}/host_ed25519_key",
                    f"AuthorizedKeysFile {ssh}/authorized_keys",
                    f"PidFile {self.p('run', 'sshd-daemon.pid')}",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "Subsystem sftp /usr/lib/openssh/sftp-server",
                    "",
                ]
            )
        )
        self.spawn("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", cfg])
        self.wait_for("sshd", lambda: self.port_open(self.ports["ssh"]), 30, 0.3, ["sshd"])

    def zuul(self, component: str, *args) -> list:
        return [self.zuul_bin / f"zuul-{component}", "-c", self.zuul_conf, *args]

    def start_zuul(self) -> None:
        env = dict(os.environ, PATH=f"{self.zuul_bin}:{os.environ['PATH']}")
        self.spawn("scheduler", self.zuul("scheduler", "-f"), env=env)
        self.spawn("executor", self.zuul("executor", "-f", "--keep-jobdir"), env=env)
        self.spawn("launcher", self.zuul("launcher", "-f"), env=env)
        self.spawn("web", self.zuul("web", "-f"), env=env)
        zuul_procs = ["scheduler", "executor", "launcher", "web"]
        self.wait_for("zuul-web", lambda: self.api("/api/info", quiet=True), 180, 1, zuul_procs)
        self.wait_for(
            f"tenant {TENANT} to load",
            lambda: self.api(f"/api/tenant/{TENANT}/projects", quiet=True),
            300,
            2,
            zuul_procs,
        )

    def start(self) -> None:
        self.start_zookeeper()
        self.start_sshd()
        self.start_zuul()
        self.use_ci_only_layout()

    def stop(self) -> None:
        """Stop what this site started, by pid (process group), newest first."""
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        # Anything of their process groups still alive (e.g. the executor's log streamer).
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        # The node's copies of the repositories (the base job's pre-run made them).
        node_src = Path.home() / "src" / CANONICAL_HOST
        for name in PROJECTS:
            shutil.rmtree(node_src / name, ignore_errors=True)
        for d in (node_src / "openstack", node_src, node_src.parent):
            with contextlib.suppress(OSError):
                d.rmdir()  # only when empty
        with contextlib.suppress(SiteError):
            self.mysql(
                f"DROP DATABASE IF EXISTS {DB_NAME}; DROP USER IF EXISTS '{DB_NAME}'@'127.0.0.1';"
            )

    def listeners(self) -> list[int]:
        return [port for port in self.ports.values() if self.port_open(port)]

    # -- API
    def api(self, path: str, quiet: bool = False):
        try:
            with urllib.request.urlopen(self.web_url + path, timeout=10) as resp:
                return json.loads(resp.read().decode())
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            if quiet:
                return None
            raise

    def config_errors(self) -> list:
        return self.api(f"/api/tenant/{TENANT}/config-errors") or []

    def buildset_of(self, project: str, rev: str) -> dict | None:
        sets = self.api(f"/api/tenant/{TENANT}/buildsets?project={project}&limit=50", True)
        for s in sets or []:
            if any(r.get("newrev") == rev for r in s.get("refs") or []):
                return s
        return None

    def wait_buildset(self, project: str, rev: str, timeout: float = 1500) -> dict:
        """The reported buildset of PROJECT at revision REV, with its builds."""

        def reported():
            found = self.buildset_of(project, rev)
            if found and found.get("result"):
                return self.api(f"/api/tenant/{TENANT}/buildset/{found['uuid']}")
            return None

        return self.wait_for(
            f"the buildset of {project} at {rev[:10]}", reported, timeout, 5,
            ["scheduler", "executor", "launcher", "web"],
        )  # fmt: skip

    def wait_build(self, project: str, rev: str, job: str, timeout: float = 1500) -> dict:
        buildset = self.wait_buildset(project, rev, timeout)
        builds = [b for b in buildset.get("builds") or [] if b["job_name"] == job]
        if not builds:
            raise SiteError(
                f"{project} at {rev[:10]}: no {job} build; buildset {buildset['result']}: "
                f"{buildset.get('message')}"
            )
        return builds[-1]

    def build_logs(self, build: dict) -> Path:
        return self.p("j", build["uuid"], "work", "logs")
