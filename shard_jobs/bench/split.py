"""--split: where a shard run's harness CPU goes, process by process.

TreeSampler (sampling) records each process of one ./shard run's tree: its
command line, its parent when first seen and its own user+system CPU as last
seen. classify() says what each process is, by these rules and nowhere else;
split() adds the groups up against the run's machine CPU."""

import os

from shard_jobs.bench.sampling import openstack_program

# The groups, in the order the table shows them, and their labels there.
ANSIBLE_PLAYBOOK = "ansible_playbook"
ANSIBLE_WORKERS = "ansible_workers"
MODULES_NODE = "modules_node_python"
MODULES_CLIENT = "modules_client_python"
BUILD = "build"
CLI = "cli"
CODE_UNDER_TEST = "code_under_test"
OTHER = "other"
GROUPS = {
    ANSIBLE_PLAYBOOK: "ansible-playbook (main process)",
    ANSIBLE_WORKERS: "ansible workers (its forks, their shells)",
    MODULES_NODE: "modules on the node's python",
    MODULES_CLIENT: "modules on the OpenStack client's python",
    BUILD: "build (pip, git, venv)",
    CLI: "./shard run itself",
    CODE_UNDER_TEST: "code under test",
    OTHER: "other",
}
# The OpenStack client's virtualenv, where the cloud tasks' modules run
# (roles/shard/vars/main.yaml: _shard_openstack_venv, <cache>/openstack-client-<hash>).
CLIENT_VENV_MARK = "/openstack-client-"
BUILD_TOOLS = ("pip", "pip3", "git", "virtualenv")


def node_python() -> str:
    """The interpreter ./shard run gives the node's modules (runner.NODE_PYTHON)."""
    from shard_jobs.runner import NODE_PYTHON

    return NODE_PYTHON


def _own_group(argv: list[str], python: str) -> str | None:
    """What a process is by its own command line; None when that says nothing
    (it is then what its parent is)."""
    argv = [arg for arg in argv if arg]
    if not argv:
        return None
    names = [os.path.basename(arg) for arg in argv[:2]]
    # The program, run by its interpreter or not (pip3.11, python -m pip).
    tools = [name.rstrip("0123456789.") for name in names]
    if (
        any(tool in BUILD_TOOLS for tool in tools)
        or names[0].startswith("git-")
        or argv[1:3] in (["-m", "pip"], ["-m", "venv"])
    ):
        return BUILD
    if openstack_program(argv):
        return CODE_UNDER_TEST
    if "ansible-playbook" in names:
        return ANSIBLE_PLAYBOOK
    if argv[1:3] == ["-m", "shard_jobs"] or names[1:2] == ["shard"]:
        return CLI
    if argv[0] == python:
        return MODULES_NODE
    if CLIENT_VENV_MARK in argv[0]:
        return MODULES_CLIENT
    return None


def program(argv: list[str]) -> str:
    """What a process runs, for the JSON, never its arguments (a command line may
    hold a credential: a URL with a password, a -p option): the program's name,
    and for an interpreter the script or module it runs."""
    if not argv:
        return ""
    names = [os.path.basename(argv[0].split()[0]) if argv[0].strip() else ""]
    rest = argv[1:]
    if names[0].startswith("python") and rest:
        if rest[0] == "-m" and len(rest) > 1:
            names += ["-m", rest[1]]
        elif not rest[0].startswith("-"):
            names.append(os.path.basename(rest[0]))
    return " ".join(names)


def classify(records: dict, python: str | None = None) -> dict:
    """(pid, start) -> group of each process record ({"argv": [...], "parent":
    its parent's (pid, start) or None}).

    By its own command line: build (pip, git and its helpers, python -m
    venv); the code under test (an OpenStack program: the service the job
    started); ansible-playbook, a worker when its parent is ansible-playbook
    too (Ansible forks its workers); the CLI (python -m shard_jobs, or
    ./shard before it execs); a module process (the node's python, or the
    OpenStack client virtualenv's).
    Else what its parent is (the commands a module runs, pip's build
    subprocesses, git's helpers), a worker below ansible-playbook (a fork only
    seen once it had exited, without a command line; the shells a worker
    starts a module through), and other when its parent is not in the run's
    tree."""
    python = python or node_python()
    groups = {}

    def group_of(key, depth=0):
        if key in groups:
            return groups[key]
        record = records.get(key)
        if record is None or depth > 64:
            return None
        parent = tuple(record["parent"]) if record.get("parent") else None
        group = _own_group(record.get("argv") or [], python)
        inherited = group_of(parent, depth + 1) if parent else None
        if group in (None, ANSIBLE_PLAYBOOK) and inherited in (ANSIBLE_PLAYBOOK, ANSIBLE_WORKERS):
            # What ansible-playbook forks and what its forks start is a worker's.
            group = ANSIBLE_WORKERS
        elif group is None:
            group = inherited or OTHER
        groups[key] = group
        return group

    for key in records:
        group_of(key)
    return groups


def split(records: list[dict], machine_cpu_s: float | None, python: str | None = None) -> dict:
    """TreeSampler's records added up by group: processes, CPU seconds and
    their share of the run's machine CPU; the sampled total; and the records,
    each with its group (largest CPU first)."""
    by_key = {(r["pid"], r["start"]): r for r in records}
    groups = classify(by_key, python)
    rows = []
    for group, label in GROUPS.items():
        members = [by_key[k] for k, g in groups.items() if g == group]
        cpu = round(sum(r["cpu_s"] for r in members), 2)
        rows.append(
            {
                "group": group,
                "label": label,
                "processes": len(members),
                "cpu_s": cpu,
                "share": round(cpu / machine_cpu_s, 4) if machine_cpu_s else None,
            }
        )
    total = round(sum(r["cpu_s"] for r in rows), 2)
    processes = [
        {
            "pid": r["pid"],
            "ppid": r.get("ppid"),
            "group": groups[k],
            "cpu_s": r["cpu_s"],
            "program": program(r.get("argv") or []),
        }
        for k, r in by_key.items()
    ]
    return {
        "groups": rows,
        "sampled_cpu_s": total,
        "sampled_share": round(total / machine_cpu_s, 4) if machine_cpu_s else None,
        "processes": sorted(processes, key=lambda p: -p["cpu_s"]),
    }
