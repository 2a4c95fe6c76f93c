"""The floor of `./shard bench`: the shard cycle's bare minimum, plain openstacksdk, no Ansible.

    python -m shard_jobs.bench_floor --secret-file FILE --venv DIR [--workdir DIR]

Starts a nova-compute (fake driver, configured by the nova-compute profile's own
template) from DIR/bin, waits until the cloud sees it (service up, resource
provider, host mapped to a cell: added to an aggregate), puts a trait of its own
on its resource provider, creates a flavor requiring that trait, boots a server
with it, checks that it landed on the new compute, drives it as the shard job's
exercise does (stop, start, soft reboot), deletes it, stops nova-compute and
removes its service, resource provider, aggregate, flavor and trait. Everything
carries a shard label (shard-<12 hex>), so a janitor finds what a crash left.

Prints one JSON object: seconds per step, the code under test's CPU seconds
(nova-compute and its children, from wait4), its pid, and the label.
"""

import argparse
import contextlib
import json
import os
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
from shard_jobs.rules import labels

TEMPLATE = (
    paths.ROLES / "shard" / "profiles" / "nova-compute" / "templates" / "nova-compute.conf.j2"
)
DRIVER = "fake.FakeDriverWithoutFakeNodes"
POLL = 0.5


class FloorError(Exception):
    pass


def wait_for(what, probe, timeout, interval=POLL):
    """probe() until it returns something true; FloorError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise FloorError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def render_config(secret: dict, build: str, state: Path) -> str:
    """nova-compute.conf as the nova-compute profile renders it for a shard."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
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
    def __init__(self, secret: dict, venv: Path, workdir: Path, timeout: int):
        self.secret = secret
        self.venv = venv
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

    def step(self, name, func):
        start = time.monotonic()
        try:
            return func()
        finally:
            self.steps[name] = round(self.steps.get(name, 0.0) + time.monotonic() - start, 2)

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

        self.service = wait_for("the compute service", service, self.timeout)
        self.provider = wait_for(
            "the resource provider",
            lambda: self.conn.placement.find_resource_provider(self.label, ignore_missing=True),
            self.timeout,
        )
        # The host is mapped to a cell once it can join an aggregate.
        self.aggregate = compute.create_aggregate(name=self.label)
        compute.set_aggregate_metadata(self.aggregate, {"shard_label": self.label})

        def mapped():
            try:
                compute.add_host_to_aggregate(self.aggregate, self.label)
            except openstack.exceptions.NotFoundException:
                return False
            return True

        wait_for("the host's cell mapping", mapped, self.timeout)

    # -- label
    def label_it(self):
        self.flavor = self.conn.compute.create_flavor(
            name=f"{self.label}-flavor",
            ram=128,
            vcpus=1,
            disk=0,
            description=f"shard-jobs label={self.label} created="
            + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        self.conn.compute.create_flavor_extra_specs(
            self.flavor, {f"trait:{self.trait}": "required"}
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
                name=f"{self.label}-server",
                flavor_id=self.flavor.id,
                image_id=image.id,
                networks="none",
                metadata={"shard_label": self.label},
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
        deadline = time.monotonic() + 30
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.code_cpu = round(usage.ru_utime + usage.ru_stime, 2)
                self.proc.returncode = status
                return
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.1)

    def remove(self):
        compute, placement = self.conn.compute, self.conn.placement
        if getattr(self, "server", None) is not None:
            with contextlib.suppress(openstack.exceptions.NotFoundException):
                compute.delete_server(self.server)
                compute.wait_for_delete(self.server, interval=POLL, wait=self.timeout)
        self.stop()
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

    def run(self) -> dict:
        self.workdir.mkdir(parents=True)
        result = {"label": self.label, "ok": False}
        try:
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
        result["steps"] = self.steps
        result["boot_retries"] = self.boot_retries
        result["code_cpu"] = self.code_cpu
        result["log"] = str(self.workdir / "nova-compute.log")
        return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--secret-file", required=True, help="the cloud's handout (YAML)")
    parser.add_argument("--venv", required=True, help="a virtualenv with nova installed")
    parser.add_argument("--workdir", default=str(paths.HOME / "bench" / "floor"))
    parser.add_argument("--timeout", type=int, default=300)
    args = parser.parse_args(argv)
    secret = yaml.safe_load(Path(args.secret_file).read_text())
    start = time.monotonic()
    result = Floor(secret, Path(args.venv), Path(args.workdir), args.timeout).run()
    result["seconds"] = round(time.monotonic() - start, 2)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
