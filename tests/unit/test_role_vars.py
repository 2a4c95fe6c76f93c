"""The shard role's derived names that several playbooks must agree on (roles/shard/vars/)."""

import hashlib

import yaml
from unit_helpers import jinja

from shard_jobs import paths

VARS = yaml.safe_load((paths.ROLES / "shard" / "vars" / "main.yaml").read_text())


def _client_venv(tmp_path, constraints: str, python="python3") -> str:
    path = tmp_path / "constraints.txt"
    path.write_text(constraints)
    # As a role variable: Ansible templates the value where it is used.
    result = jinja(
        "client_venv",
        client_venv=VARS["_shard_openstack_venv"],
        shard_cache_dir="/cache",
        shard_python=python,
        _shard_openstack_packages=VARS["_shard_openstack_packages"],
        shard_constraints=str(path),
    )
    assert not result.get("failed"), result
    return result["msg"]


def test_the_client_virtualenv_is_keyed_by_what_it_is_built_from(tmp_path):
    """A run with other constraints (or another interpreter) must not rebuild, in place,
    the client another run on the node is using: each input set has its own path, and
    every playbook of a run derives the same one."""
    first = _client_venv(tmp_path, "openstacksdk===4.1.0\n")
    again = _client_venv(tmp_path, "openstacksdk===4.1.0\n")
    other = _client_venv(tmp_path, "openstacksdk===4.2.0\n")
    python = _client_venv(tmp_path, "openstacksdk===4.1.0\n", python="python3.12")

    assert first == again
    assert (
        first.startswith("/cache/openstack-client-")
        and len(first) == len("/cache/openstack-client-") + 16
    )
    assert len({first, other, python}) == 3
    # The derivation the molecule scenarios repeat to find it.
    key = hashlib.sha1(b"python3:openstacksdk amqp:openstacksdk===4.1.0\n").hexdigest()[:16]
    assert first == f"/cache/openstack-client-{key}"
