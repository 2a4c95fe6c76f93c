"""The floor of `./shard bench`: the shard cycle's bare minimum, plain openstacksdk, no Ansible.

    python -m shard_jobs.bench_floor --secret-file FILE --src DIR --constraints FILE
                                     --cache DIR [--python PY] [--workdir DIR]
    python -m shard_jobs.bench_floor --secret-file FILE --venv DIR [--workdir DIR]

With --src it first builds the change as the shard job's build does
(roles/shard_build, a source build). The step "source": a clone of the source
tree of its own, as Zuul's merger prepares one. The step "build": the
dependency virtualenv looked up in the cache DIR (one per requirements,
constraints and interpreter; made there when missing, as the job's build makes
its cache: python -m venv, pip, setuptools, pbr and requirements.txt under the
constraints; ./shard bench makes it before it measures), a virtualenv layered
on it (a .pth file), and the project installed into that from the clone with
pip install --no-deps --no-build-isolation -e. With --venv it builds nothing
and runs what DIR has installed (the from-scratch variants: the cloud's own
services' virtualenv).

Then it starts a nova-compute (fake driver, configured by the nova-compute
profile's own template) from the build's bin/ (or DIR/bin), waits until the
cloud sees it (service up, resource provider, host mapped to a cell: added to
an aggregate), puts a trait of its own on its resource provider, creates a
flavor requiring that trait, boots a server with it, checks that it landed on
the new compute, drives it as the shard job's exercise does (stop, start, soft
reboot), deletes it, stops nova-compute and removes its service, resource
provider, aggregate, flavor and trait. Everything carries a shard label
(shard-<12 hex>), so a janitor finds what a crash left.

Prints one JSON object: seconds per step, the code under test's CPU seconds
(nova-compute and its children, from wait4), its pid, and the label.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jinja2
import openstack
import yaml

from shard_jobs import paths
from shard_jobs.rules import auth, bus, labels, waits
from shard_jobs.tool_venv import build_once, fingerprint

TEMPLATE = (
    paths.ROLES / "shard" / "profiles" / "nova-compute" / "templates" / "nova-compute.conf.j2"
)
DRIVER = "fake.FakeDriverWithoutFakeNodes"
POLL = 0.5
# What the job's build installs with the project's requirements for a source
# build (roles/shard_build/tasks/source.yaml; the nova-compute profile adds nothing).
BUILD_PACKAGES = ("setuptools", "pbr")
# pbr would walk the whole git history for these files (as in the job's build).
PBR_ENV = {
    "SKIP_GENERATE_AUTHORS": "1",
    "SKIP_WRITE_GIT_CHANGELOG": "1",
    "SKIP_GENERATE_RENO": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}


class FloorError(Exception):
    pass


def _run(cmd, what, env=None, cwd=None) -> str:
    proc = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        env=dict(os.environ, **(env or {})),
        cwd=cwd,
    )
    if proc.returncode != 0:
        tail = " / ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise FloorError(f"{what} failed (exit {proc.returncode}): {tail}")
    return proc.stdout


def site_packages(python) -> str:
    """The site-packages directory of a virtualenv's interpreter."""
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return _run([python, "-c", code], f"asking {python} for its site-packages").strip()


def deps_key(python, requirements: Path, constraints: Path) -> str:
    """Hash of what the dependency virtualenv is made of."""
    version = _run([python, "-c", "import sys; print(sys.version)"], python)
    return fingerprint((requirements, constraints), version, BUILD_PACKAGES)[:16]


def prepare_deps(src: Path, constraints: Path, cache: Path, python, log=None) -> Path:
    """The floor's dependency virtualenv for the project in src: made once per
    requirements, constraints and interpreter (under cache, locked: concurrent
    benches share it), as the job's build makes its dependency cache."""
    requirements = Path(src) / "requirements.txt"
    if not requirements.is_file():
        raise FloorError(f"{src} has no requirements.txt")

    def make(path: Path) -> None:
        if log:
            log(f"making the floor's dependency virtualenv (once): {path}")
        _run([python, "-m", "venv", path], "creating the dependency virtualenv")
        pip = [path / "bin" / "python", "-m", "pip", "install", "-q", "-c", constraints]
        _run([*pip, "pip"], "upgrading pip", env=PBR_ENV)
        _run(
            [*pip, *BUILD_PACKAGES, "-r", requirements], "installing the dependencies", env=PBR_ENV
        )

    key = deps_key(python, requirements, constraints)
    return build_once(Path(cache) / f"deps-{key}", key, make)


def build(src: Path, deps: Path, venv: Path, python):
    """The change's build as the job's does it: a virtualenv without pip that
    sees the dependency virtualenv's packages (a .pth file), and the project
    installed into it from its source tree, editable, without dependencies."""
    _run([python, "-m", "venv", "--without-pip", venv], "creating the build's virtualenv")
    below = site_packages(Path(deps) / "bin" / "python")
    own = site_packages(Path(venv) / "bin" / "python")
    Path(own, "_shard_layer.pth").write_text(below + "\n")
    _run(
        [Path(venv) / "bin" / "python", "-m", "pip", "install", "-q"]
        + ["--no-deps", "--no-build-isolation", "-e", src],
        f"installing {src} (editable)",
        env=PBR_ENV,
    )


def render_config(secret: dict, build: str, state: Path) -> str:
    """nova-compute.conf as the nova-compute profile renders it for a shard."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    # The filters the template uses, from the same rules the role's filter plugin
    # wraps (roles/shard/filter_plugins/shard_rules.py).
    env.filters["shard_service_auth"] = auth.service_options
    template = env.from_string(TEMPLATE.read_text())
    return template.render(
        ansible_managed="written by shard_jobs.bench_floor",
        _shard_host=labels.label_for(build),
        shard_build_id=build,
        _shard_cloud=secret,
        _shard_options={"compute_driver": DRIVER},
        _shard_state=str(state),
    )


class Floor:
    """The cycle. With src, the change is built first (the steps "source" and
    "build") and nova-compute runs from the build; else from venv."""

    # The profile's flavor_disk: 0 lets only an admin boot from it.
    flavor_disk = 0

    def __init__(
        self,
        secret: dict,
        venv: Path | None,
        workdir: Path,
        timeout: int,
        src: Path | None = None,
        constraints: Path | None = None,
        cache: Path | None = None,
        python: str = "python3",
    ):
        self.secret = secret
        self.venv = venv
        self.src = src
        self.constraints = constraints
        self.cache = cache
        self.python = python
        self.deps = None
        self.build = uuid.uuid4().hex
        self.label = labels.label_for(self.build)
        self.trait = labels.trait_for(self.label)
        self.workdir = workdir / self.label
        self.timeout = timeout
        self.steps = {}
        self.proc = None
        self.code_cpu = None
        self.boot_retries = 0
        self.conn = openstack.connect(load_yaml_config=False, load_envvars=False, **secret["cloud"])

    def step(self, name, func, steps=None):
        """func(), its seconds added to steps[name] (the cycle's steps by default)."""
        steps = self.steps if steps is None else steps
        start = time.monotonic()
        try:
            return func()
        finally:
            steps[name] = round(steps.get(name, 0.0) + time.monotonic() - start, 2)

    # -- build
    def source(self):
        """The source tree as Zuul's merger prepares it: a clone of its own."""
        tree = self.workdir / "src"
        _run(["git", "clone", "-q", "--no-hardlinks", self.src, tree], "cloning the source")
        return tree

    def build_change(self, tree: Path):
        self.deps = prepare_deps(tree, self.constraints, self.cache, self.python)
        self.venv = self.workdir / "venv"
        build(tree, self.deps, self.venv, self.python)

    # -- deploy
    def start(self):
        state = self.workdir / "state"
        (state / "locks").mkdir(parents=True)
        conf = self.workdir / "nova-compute.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(render_config(self.secret, self.build, state))
        with open(self.workdir / "nova-compute.log", "wb") as log:
            self.proc = subprocess.Popen(
                [str(self.venv / "bin" / "nova-compute"), "--config-file", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,
            )

    def registered(self):
        compute = self.conn.compute

        def service():
            if self.proc.poll() is not None:
                raise FloorError(f"nova-compute exited ({self.proc.returncode}); see its log")
            found = [s for s in compute.services(host=self.label) if s.state == "up"]
            return found[0] if found else None

        self.service = self.wait_for("the compute service", service)
        self.provider = self.wait_for(
            "the resource provider",
            lambda: self.conn.placement.find_resource_provider(self.label, ignore_missing=True),
        )
        # The host is mapped to a cell once it can join an aggregate.
        self.aggregate = compute.create_aggregate(name=self.label)
        compute.set_aggregate_metadata(self.aggregate, {labels.LABEL_METADATA_KEY: self.label})

        def mapped():
            try:
                compute.add_host_to_aggregate(self.aggregate, self.label)
            except openstack.exceptions.NotFoundException:
                return False
            return True

        self.wait_for("the host's cell mapping", mapped)

    def wait_for(self, what, probe):
        """The shared wait with this run's timeout, its timeout a FloorError."""
        return waits.wait_until(probe, self.timeout, what=what, interval=POLL, error=FloorError)

    # -- label
    def label_it(self):
        self.flavor = self.conn.compute.create_flavor(
            name=labels.flavor_name_for(self.label),
            ram=128,
            vcpus=1,
            disk=self.flavor_disk,
            description=labels.description_for(self.label),
            # As the job's (shard_label): private, the account's project given access.
            is_public=False,
        )
        self.conn.compute.flavor_add_tenant_access(self.flavor, self.conn.current_project_id)
        self.conn.compute.create_flavor_extra_specs(
            self.flavor, labels.trait_requirement(self.label)
        )
        self.conn.placement.create_trait(self.trait)
        url = f"/resource_providers/{self.provider.id}/traits"
        current = self.conn.placement.get(url, microversion="1.6").json()
        body = {
            "traits": sorted(set(current["traits"]) | {self.trait}),
            "resource_provider_generation": current["resource_provider_generation"],
        }
        resp = self.conn.placement.put(url, json=body, microversion="1.6")
        if resp.status_code != 200:
            raise FloorError(f"setting the trait failed: {resp.status_code} {resp.text[:200]}")

    # -- exercise
    def boot(self, image):
        """Boot the server on the shard's flavor and wait until it is ACTIVE.

        nova-api lets a host into an aggregate before the scheduler has mapped it
        to a cell (it falls back to a search of the cells), so "registered" does
        not prove the mapping: a boot right after it may be buried in cell0 with
        "is not mapped to any cell". Then it deletes that server and boots again."""
        compute = self.conn.compute
        deadline = time.monotonic() + self.timeout
        while True:
            server = compute.create_server(
                name=labels.server_name_for(self.label),
                flavor_id=self.flavor.id,
                image_id=image.id,
                networks="none",
                metadata={labels.LABEL_METADATA_KEY: self.label},
            )
            self.server = server
            try:
                server = compute.wait_for_server(server, interval=POLL, wait=self.timeout)
                return compute.get_server(server.id)
            except openstack.exceptions.ResourceFailure:
                failed = compute.get_server(server.id)
                fault = (failed.fault or {}).get("message", "")
                if "not mapped to any cell" not in fault or time.monotonic() > deadline:
                    raise FloorError(f"server {server.id} went to ERROR: {fault}") from None
            # A retry of the boot, not a wait: it creates anew after a known
            # failure, with sdk's own waits in between, so not waits.wait_until.
            self.boot_retries += 1
            compute.delete_server(server)
            compute.wait_for_delete(server, interval=POLL, wait=self.timeout)
            time.sleep(POLL)

    def exercise(self):
        compute = self.conn.compute
        image = self.conn.image.find_image(self.secret.get("image") or "cirros")
        if image is None:
            raise FloorError(f"no image {self.secret.get('image') or 'cirros'}")
        server = self.boot(image)
        if server.compute_host != self.label:
            raise FloorError(f"server landed on {server.compute_host}, not on {self.label}")
        compute.stop_server(server)
        compute.wait_for_server(server, status="SHUTOFF", interval=POLL, wait=self.timeout)
        compute.start_server(server)
        compute.wait_for_server(server, status="ACTIVE", interval=POLL, wait=self.timeout)
        compute.reboot_server(server, "SOFT")
        compute.wait_for_server(server, status="ACTIVE", interval=POLL, wait=self.timeout)
        compute.delete_server(server)
        compute.wait_for_delete(server, interval=POLL, wait=self.timeout)
        self.server = None
        return server.compute_host

    # -- teardown
    def stop(self):
        if self.proc is None or self.code_cpu is not None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)

        def reaped():
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            return (status, usage) if pid else None

        try:
            status, usage = waits.wait_until(reaped, 30, what="nova-compute to stop", interval=0.1)
        except waits.WaitTimeout:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(self.proc.pid, 0)  # SIGKILLed: blocks briefly
        # wait4 rather than Popen.wait: its rusage is the code's CPU time.
        self.code_cpu = round(usage.ru_utime + usage.ru_stime, 2)
        self.proc.returncode = status

    def remove(self):
        compute, placement = self.conn.compute, self.conn.placement
        if getattr(self, "server", None) is not None:
            with contextlib.suppress(openstack.exceptions.NotFoundException):
                compute.delete_server(self.server)
                compute.wait_for_delete(self.server, interval=POLL, wait=self.timeout)
        self.stop()
        # It holds the cloud's passwords; the service that read it is gone.
        (self.workdir / "nova-compute.conf").unlink(missing_ok=True)
        for service in compute.services(host=self.label):
            compute.delete_service(service, ignore_missing=True)
        provider = placement.find_resource_provider(self.label, ignore_missing=True)
        if provider is not None:
            placement.delete_resource_provider(provider, ignore_missing=True)
        if getattr(self, "aggregate", None) is not None:
            aggregate = compute.get_aggregate(self.aggregate.id)
            if self.label in (aggregate.hosts or []):
                compute.remove_host_from_aggregate(aggregate, self.label)
            compute.delete_aggregate(aggregate, ignore_missing=True)
        if getattr(self, "flavor", None) is not None:
            compute.delete_flavor(self.flavor, ignore_missing=True)
        with contextlib.suppress(openstack.exceptions.NotFoundException):
            placement.delete_trait(self.trait)
        # As the job's teardown does (the nova-compute profile's order ends with
        # queues): the host's queues on the bus, which nothing else removes.
        conn = bus.connect(self.secret["transport_url"], self.timeout)
        try:
            bus.delete_queues(conn, bus.host_queues(self.label, ["nova-compute"]))
        finally:
            bus.close(conn)

    def remove_build(self):
        for name in ("src", "venv"):
            shutil.rmtree(self.workdir / name, ignore_errors=True)

    def run(self) -> dict:
        self.workdir.mkdir(parents=True)
        result = {"label": self.label, "ok": False}
        try:
            if self.src is not None:
                tree = self.step("source", self.source)
                self.step("build", lambda: self.build_change(tree))
            self.step("deploy", self.start)
            result["pid"] = self.proc.pid
            self.step("deploy", self.registered)
            self.step("label", self.label_it)
            result["landed_on"] = self.step("exercise", self.exercise)
            result["ok"] = True
        except (FloorError, openstack.exceptions.SDKException) as exc:
            result["error"] = str(exc)
        finally:
            self.step("teardown", self.stop)
            try:
                self.step("teardown", self.remove)
            except openstack.exceptions.SDKException as exc:
                result["ok"] = False
                result.setdefault("error", f"teardown: {exc}")
            finally:
                # As the job does, whatever happened (timed): its teardown
                # removes the build's workspace (the virtualenv) and ./shard
                # run the prepared sources; the log stays.
                self.step("teardown", self.remove_build)
        result["steps"] = self.steps
        result["boot_retries"] = self.boot_retries
        result["code_cpu"] = self.code_cpu
        result["log"] = str(self.workdir / "nova-compute.log")
        result["built"] = self.src is not None
        result["deps"] = str(self.deps) if self.deps else None
        return result


def main(argv=None, cycle=None, description=None) -> int:
    """The command: one cycle of the class cycle (Floor by default), its JSON printed."""
    cycle = cycle or Floor
    parser = argparse.ArgumentParser(description=description or __doc__.split("\n\n")[0])
    parser.add_argument("--secret-file", required=True, help="the cloud's handout (YAML)")
    parser.add_argument("--venv", help="run nova-compute from this virtualenv, build nothing")
    parser.add_argument("--src", help="build this source tree of nova first")
    parser.add_argument("--constraints", help="pins of the build's dependencies (with --src)")
    parser.add_argument("--cache", help="where dependency virtualenvs are kept (with --src)")
    parser.add_argument(
        "--python", default="python3", help="the interpreter the build's virtualenvs are made with"
    )
    parser.add_argument("--workdir", default=str(paths.HOME / "bench" / "floor"))
    parser.add_argument("--timeout", type=int, default=300)
    args = parser.parse_args(argv)
    if bool(args.src) == bool(args.venv) or (args.src and not (args.constraints and args.cache)):
        parser.error(
            "give --src, --constraints and --cache (build the change), or --venv (build nothing)"
        )
    secret = yaml.safe_load(Path(args.secret_file).read_text())
    start = time.monotonic()
    floor = cycle(
        secret,
        Path(args.venv) if args.venv else None,
        Path(args.workdir),
        args.timeout,
        src=Path(args.src) if args.src else None,
        constraints=Path(args.constraints) if args.constraints else None,
        cache=Path(args.cache) if args.cache else None,
        python=args.python,
    )
    result = floor.run()
    result["seconds"] = round(time.monotonic() - start, 2)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
