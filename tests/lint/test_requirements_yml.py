"""requirements.yml declares every collection the Ansible content uses, and the pinned
`ansible` bundle satisfies it (offline: Galaxy is not asked).

The checks live in shard_jobs/collection_requirements.py."""

import glob
from pathlib import Path

import pytest
from lint_helpers import REPO

from shard_jobs import collection_requirements as collections
from shard_jobs import paths

REQUIREMENTS = REPO / collections.REQUIREMENTS


def declared() -> dict[str, str]:
    if not REQUIREMENTS.is_file():
        pytest.fail(f"{collections.REQUIREMENTS}: missing", pytrace=False)
    try:
        return collections.load_requirements(REQUIREMENTS)
    except (ValueError, AttributeError) as exc:
        pytest.fail(f"{collections.REQUIREMENTS}: {exc}", pytrace=False)


def test_used_collections_are_declared():
    used = collections.used_collections(REPO)
    assert used, "the scan found no collection at all: the scanner is broken"
    missing = [
        f"{name} (first used at {places[0]})"
        for name, places in used.items()
        if name not in declared()
    ]
    if missing:
        pytest.fail(
            f"{collections.REQUIREMENTS} does not declare: " + "; ".join(missing), pytrace=False
        )


def test_declared_collections_are_used():
    unused = sorted(set(declared()) - set(collections.used_collections(REPO)))
    if unused:
        pytest.fail(
            f"{collections.REQUIREMENTS} declares collections nothing uses: {', '.join(unused)}",
            pytrace=False,
        )


def test_ansible_bundle_satisfies_requirements():
    """Only the tool virtualenv's site-packages: what ~/.ansible holds on this machine
    must not make the test pass (or fail)."""
    bundles = glob.glob(str(paths.VENV / "lib" / "python3*" / "site-packages"))
    assert bundles, f"no site-packages in {paths.VENV}"
    installed = collections.installed_collections([Path(bundles[0])])
    assert "ansible.posix" in installed, f"no collections in {bundles[0]}/ansible_collections"
    wrong = collections.unmet(declared(), installed)
    if wrong:
        pytest.fail("; ".join(wrong.values()), pytrace=False)


def test_checker_catches_an_undeclared_collection(tmp_path):
    tasks = tmp_path / "roles" / "demo" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yaml").write_text(
        "---\n"
        "- name: A module of an undeclared collection\n"
        "  community.foo.bar:\n"
        "    state: present\n"
        "- name: A declared one, and a builtin\n"
        "  ansible.builtin.debug:\n"
        "    msg: \"{{ 'x' | community.general.dict_kv('k') }}\"\n"
    )
    (tmp_path / "requirements.yml").write_text(
        "collections:\n  - name: community.general\n    version: '>=8.0.0'\n"
    )
    used = collections.used_collections(tmp_path)
    assert used == {
        "community.foo": ["roles/demo/tasks/main.yaml:3"],
        "community.general": ["roles/demo/tasks/main.yaml:7"],
    }
    assert set(used) - set(collections.load_requirements(tmp_path / "requirements.yml")) == {
        "community.foo"
    }


def test_scanner_finds_each_kind_of_use(tmp_path):
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "site.yaml").write_text(
        "---\n"
        "- hosts: all\n"
        "  collections: [ns_a.coll]\n"
        "  roles:\n"
        "    - ns_b.coll.role\n"
        "  tasks:\n"
        "    - name: Lookup, test and conditional\n"
        "      ansible.builtin.debug:\n"
        "        msg: \"{{ lookup('ns_c.coll.lk', 'x') }}\"\n"
        "      when: x is ns_d.coll.test\n"
        "    - name: Filter by name, in a literal block\n"
        "      ansible.builtin.set_fact:\n"
        "        y: |\n"
        "          first line\n"
        "          {{ [1] | map('ns_e.coll.flt') }}\n"
        "    - name: Role of a collection, with_ lookup\n"
        "      ansible.builtin.include_role:\n"
        "        name: ns_f.coll.role\n"
        "      with_ns_g.coll.lk: [1]\n"
        "    - name: Task name mentioning ns_x.coll.mod is no use\n"
        "      ansible.legacy.command: echo\n"
    )
    (tmp_path / "molecule" / "default").mkdir(parents=True)
    (tmp_path / "molecule" / "default" / "molecule.yml").write_text(
        "provisioner:\n"
        "  config_options:\n"
        "    defaults:\n"
        "      callbacks_enabled: ansible.builtin.junit, ns_h.coll.cb\n"
        "  env:\n"
        "    ANSIBLE_STDOUT_CALLBACK: ns_i.coll.out\n"
    )
    (tmp_path / "roles" / "r" / "templates").mkdir(parents=True)
    (tmp_path / "roles" / "r" / "templates" / "a.conf.j2").write_text(
        "module = x.y.z\n{{ v\n   | ns_j.coll.flt }}\n"
    )
    used = collections.used_collections(tmp_path)
    assert used == {
        "ns_a.coll": ["playbooks/site.yaml:3"],
        "ns_b.coll": ["playbooks/site.yaml:5"],
        "ns_c.coll": ["playbooks/site.yaml:9"],
        "ns_d.coll": ["playbooks/site.yaml:10"],
        "ns_e.coll": ["playbooks/site.yaml:15"],
        "ns_f.coll": ["playbooks/site.yaml:18"],
        "ns_g.coll": ["playbooks/site.yaml:19"],
        "ns_h.coll": ["molecule/default/molecule.yml:4"],
        "ns_i.coll": ["molecule/default/molecule.yml:6"],
        "ns_j.coll": ["roles/r/templates/a.conf.j2:3"],
    }


@pytest.mark.parametrize(
    "version, spec, expected",
    [
        ("2.5.0", ">=2.4.0,<3.0.0", True),
        ("2.4.0", ">=2.4.0,<3.0.0", True),
        ("2.3.9", ">=2.4.0,<3.0.0", False),
        ("3.0.0", ">=2.4.0,<3.0.0", False),
        ("3.0.0-rc1", "<3.0.0", True),
        ("2.4.0", ">=2.4", True),
        ("2.1.0", "*", True),
        ("2.1.0", "2.1.0", True),
        ("2.1.0", "==2.1.1", False),
        ("2.1.0", "!=2.1.0", False),
        ("2.1.0", ">2.0.9,<=2.1.0", True),
        ("10.0.0", ">=9.0.0", True),  # numbers, not strings
        ("*", ">=1.0.0", True),  # a version-less source checkout
    ],
)
def test_version_matches(version, spec, expected):
    assert collections.version_matches(version, spec) is expected
    # The same answer as ansible-galaxy's own check.
    from ansible.galaxy.dependency_resolution.versioning import meets_requirements

    assert meets_requirements(version, spec) is expected


def test_unmet_names_the_problem(tmp_path):
    coll = tmp_path / "ansible_collections" / "community" / "mysql"
    coll.mkdir(parents=True)
    (coll / "MANIFEST.json").write_text('{"collection_info": {"version": "2.1.0"}}')
    installed = collections.installed_collections([tmp_path])
    assert installed["community.mysql"].version == "2.1.0"
    wrong = collections.unmet({"community.mysql": ">=3.0.0", "community.rabbitmq": "*"}, installed)
    assert wrong == {
        "community.mysql": f"collection community.mysql >=3.0.0 is not installed "
        f"({coll} has 2.1.0)",
        "community.rabbitmq": "collection community.rabbitmq * is not installed",
    }
