"""Shared fixtures of the molecule scenarios' testinfra tests (verify step).

Each scenario's create step (shared/create.yml) writes its state file into
molecule's ephemeral directory: the `zuul` variable, the target cloud's secret
(`shard_cloud`), the scenario's temporary directory. The tests read it to know
the build's names, and query the cloud with plain openstacksdk, independently
of the modules under test.
"""

import os
from pathlib import Path

import pytest
import yaml

from shard_jobs.rules import labels, processes

STATE_FILE = "shard-molecule.yml"


@pytest.fixture(scope="session")
def state() -> dict:
    path = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / STATE_FILE
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="session")
def build(state) -> str:
    return state["zuul"]["build"]


@pytest.fixture(scope="session")
def label(build) -> str:
    """The name of everything the build creates (roles/shard/vars/main.yaml)."""
    return labels.label_for(build)


@pytest.fixture(scope="session")
def trait(label) -> str:
    return labels.trait_for(label)


@pytest.fixture(scope="session")
def workspace(state, label) -> Path:
    return Path(state["shard_workspace_root"]) / label


@pytest.fixture(scope="session")
def src_dir(state) -> Path:
    return Path(state["zuul"]["projects"]["opendev.org/openstack/nova"]["src_dir"])


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """The node's cache of shard builds (the shard role's shard_cache_dir default)."""
    return Path.home() / ".cache" / "shard-jobs"


@pytest.fixture(scope="session")
def conn(state):
    """The target cloud, as the job's secret reaches it."""
    import openstack

    return openstack.connect(
        load_yaml_config=False, load_envvars=False, **state["shard_cloud"]["cloud"]
    )


def placement_get(conn, url: str, microversion: str = "1.6") -> dict:
    resp = conn.placement.get(url, microversion=microversion)
    resp.raise_for_status()
    return resp.json()


def provider(conn, name: str) -> dict | None:
    providers = placement_get(conn, f"/resource_providers?name={name}")["resource_providers"]
    return providers[0] if providers else None


def leftovers(conn, label: str) -> dict:
    """Everything in the cloud that still carries the build's label."""
    trait = "CUSTOM_" + label.upper().replace("-", "_")
    found = {
        "servers": [
            s.id
            for s in conn.compute.servers(all_projects=True)
            if (s.metadata or {}).get("shard_label") == label
            or label in (s.tags or [])
            or s.name.startswith(label)
        ],
        "compute_services": [s.id for s in conn.compute.services() if s.host == label],
        "resource_providers": [r.id for r in conn.placement.resource_providers(name=label)],
        "flavors": [
            f.id
            for f in conn.compute.flavors(is_public=None)
            if label in (f.description or "") or f.name.startswith(label)
        ],
        "aggregates": [
            a.id
            for a in conn.compute.aggregates()
            if (a.metadata or {}).get("shard_label") == label or a.name == label
        ],
        "traits": [t for t in placement_get(conn, "/traits")["traits"] if t == trait],
    }
    return {kind: ids for kind, ids in found.items() if ids}


def read_pid(pidfile: Path) -> int | None:
    """The pid of the process shard_process recorded, while it runs (the scenarios run on
    this machine: the record is read by its one reader, shard_processes)."""
    record = processes.read_record(str(pidfile))
    return record["pid"] if record else None
