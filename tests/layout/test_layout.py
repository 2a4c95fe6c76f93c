"""zuul.d/ as Zuul itself loads it, and what its jobs point at.

tests/layout/zuul_layout_check.py loads zuul.d/ with the configuration loader of the
pinned Zuul (requirements/zuul.txt, in its own virtualenv: zuul_venv.py) into a synthetic
tenant and prints the layout as JSON. Here:

- Zuul reports no configuration error;
- every job has a description, and each of its vars is documented as
  `.. zuul:jobvar:: <name>` in its description or an ancestor's;
- every playbook a job runs (pre-run, run, post-run, cleanup) exists in the repository;
- every role repository a job lists is this repository or a project of the tenant, and
  every role its playbooks use (plays' roles, include_role/import_role, also from the
  roles' own tasks) exists under roles/;
- a broken configuration (unknown attribute, undefined parent) is reported (negative test).
"""

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
import zuul_venv

from shard_jobs import paths

REPO = paths.REPO
ZUUL_D = REPO / "zuul.d"
CHECKER = Path(__file__).with_name("zuul_layout_check.py")
PROJECT = "shard-jobs"

# The other projects of a tenant running these jobs: the OpenStack services a shard
# can be built from (required-projects). A job naming another project fails
# test_no_loading_errors ("project ... was not found") until it is added here.
TENANT_PROJECTS = (
    "openstack/nova",
    "openstack/keystone",
    "openstack/placement",
    "openstack/glance",
    "openstack/neutron",
    "openstack/requirements",
)

JOBVAR = re.compile(r"^\s*\.\. zuul:jobvar:: (\S+)\s*$", re.M)
ROLE_ACTIONS = {
    "include_role",
    "import_role",
    "ansible.builtin.include_role",
    "ansible.builtin.import_role",
    "ansible.legacy.include_role",
    "ansible.legacy.import_role",
}


def run_checker(python: Path, repo: Path) -> dict:
    cmd = [str(python), str(CHECKER), "--project", PROJECT]
    for name in TENANT_PROJECTS:
        cmd += ["--tenant-project", name]
    proc = subprocess.run([*cmd, str(repo)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"{CHECKER.name} failed (rc {proc.returncode}):\n{proc.stderr}", pytrace=False)
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def zuul_python() -> Path:
    try:
        return zuul_venv.ensure()
    except zuul_venv.VenvError as exc:
        pytest.fail(str(exc), pytrace=False)


def zuul_d_files() -> list[Path]:
    if not ZUUL_D.is_dir():
        return []
    return [p for p in ZUUL_D.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml")]


@pytest.fixture(scope="session")
def layout(zuul_python) -> dict:
    if not zuul_d_files():
        pytest.skip("zuul.d/ not written yet: no zuul.d/*.yaml to load")
    return run_checker(zuul_python, REPO)


def variants(layout):
    for name, jobs in sorted(layout["jobs"].items()):
        for job in jobs:
            yield name, job


def where(job: dict) -> str:
    return f"{job['path']}:{job['line']}"


def format_errors(errors: list[dict]) -> str:
    return "\n".join(f"{e['path']}:{e['line']}: [{e['name']}] {e['short_error']}" for e in errors)


def test_no_loading_errors(layout):
    if layout["errors"]:
        pytest.fail(
            f"Zuul {layout['zuul_version']} reports {len(layout['errors'])} configuration "
            f"error(s):\n{format_errors(layout['errors'])}\n\nin full:\n"
            + "\n---\n".join(e["error"] for e in layout["errors"]),
            pytrace=False,
        )


def test_zuul_d_defines_jobs(layout):
    if not layout["jobs"]:
        pytest.fail("zuul.d/ defines no job", pytrace=False)


def test_jobs_have_descriptions(layout):
    bad = [
        f"{where(job)}: job {name} has no description"
        for name, job in variants(layout)
        if not (job["description"] or "").strip()
    ]
    if bad:
        pytest.fail("\n".join(bad), pytrace=False)


def test_playbooks_exist(layout):
    missing = []
    for name, job in variants(layout):
        for phase in ("pre_run", "run", "post_run", "cleanup_run"):
            for playbook in job[phase]:
                candidates = [playbook]
                if not Path(playbook).suffix:
                    candidates += [f"{playbook}.yaml", f"{playbook}.yml"]
                if not any((REPO / c).is_file() for c in candidates):
                    missing.append(f"{where(job)}: job {name} {phase}: {playbook} does not exist")
    if missing:
        pytest.fail("\n".join(missing), pytrace=False)


def _ancestors(layout: dict, name: str):
    """The job's variants and its ancestors' within this repository, nearest first."""
    seen = set()
    while name and name in layout["jobs"] and name not in seen:
        seen.add(name)
        jobs = layout["jobs"][name]
        yield from jobs
        name = jobs[0]["parent"]


def test_job_vars_documented(layout):
    problems = []
    for name, job in variants(layout):
        documented = set()
        for ancestor in _ancestors(layout, name):
            documented |= set(JOBVAR.findall(ancestor["description"] or ""))
        for var in job["vars"]:
            if var not in documented:
                problems.append(
                    f"{where(job)}: job {name} var {var} is not documented as "
                    f"'.. zuul:jobvar:: {var}' in its description or an ancestor's"
                )
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_role_repositories_known(layout):
    known = {PROJECT, *TENANT_PROJECTS}
    problems = []
    for name, job in variants(layout):
        for role in job["roles"]:
            short = role["project"].split("/", 1)[1]  # without the canonical hostname
            if short not in known:
                problems.append(
                    f"{where(job)}: job {name} takes roles from {role['project']}, "
                    "not a project of the tenant (see TENANT_PROJECTS)"
                )
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def _load(path: Path):
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _role_refs(node, out: set) -> set:
    """Role names referenced in a playbook or task list (templated names skipped)."""
    if isinstance(node, list):
        for item in node:
            _role_refs(item, out)
    elif isinstance(node, dict):
        if isinstance(node.get("hosts"), (str, list)) and isinstance(node.get("roles"), list):
            for role in node["roles"]:
                ref = role.get("role") or role.get("name") if isinstance(role, dict) else role
                if isinstance(ref, str):
                    out.add(ref)
        for key, value in node.items():
            if key in ROLE_ACTIONS:
                ref = value.get("name") if isinstance(value, dict) else value
                if isinstance(ref, str):
                    out.add(ref)
            elif isinstance(value, (list, dict)):
                _role_refs(value, out)
    return out


def _missing_roles(playbook: Path) -> list[str]:
    """Roles a playbook uses, directly or through roles, that roles/ lacks."""
    pending = sorted(_role_refs(_load(playbook), set()))
    seen, missing = set(), []
    while pending:
        ref = pending.pop()
        if ref in seen or "{{" in ref or ref.count(".") >= 2:
            continue  # templated, or a collection's role (namespace.collection.role)
        seen.add(ref)
        role_dir = REPO / "roles" / ref
        if not role_dir.is_dir():
            missing.append(ref)
            continue
        for sub in ("tasks", "handlers", "meta"):
            for path in (
                sorted((role_dir / sub).rglob("*.y*ml")) if (role_dir / sub).is_dir() else []
            ):
                data = _load(path)
                refs = _role_refs(data, set())
                if sub == "meta" and isinstance(data, dict):
                    for dep in data.get("dependencies") or []:
                        dep = dep.get("role") or dep.get("name") if isinstance(dep, dict) else dep
                        if isinstance(dep, str):
                            refs.add(dep)
                pending.extend(sorted(refs - seen))
    return missing


def test_playbook_roles_exist(layout):
    problems = []
    checked = set()
    for name, job in variants(layout):
        for phase in ("pre_run", "run", "post_run", "cleanup_run"):
            for playbook in job[phase]:
                path = REPO / playbook
                if playbook in checked or not path.is_file():
                    continue
                checked.add(playbook)
                problems += [
                    f"{playbook} (job {name}): role {role} is not under roles/"
                    for role in _missing_roles(path)
                ]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


BROKEN = """
- job:
    name: shard-broken-attribute
    description: carries an attribute Zuul does not know
    no-such-attribute: true
- job:
    name: shard-orphan
    parent: shard-no-such-parent
    description: its parent is not defined anywhere
"""


def test_broken_configuration_is_reported(zuul_python, tmp_path):
    repo = tmp_path / PROJECT
    (repo / "zuul.d").mkdir(parents=True)
    (repo / "zuul.d" / "broken.yaml").write_text(BROKEN)
    result = run_checker(zuul_python, repo)
    text = format_errors(result["errors"])
    assert len(result["errors"]) == 2, f"expected two errors, got:\n{text}"
    assert "no-such-attribute" in text, f"unknown attribute not reported:\n{text}"
    assert "shard-no-such-parent" in text, f"undefined parent not reported:\n{text}"
    lines = sorted(e["line"] for e in result["errors"])
    assert lines == [2, 6], f"errors not located at their stanzas:\n{text}"


def test_shard_jobs_skip_changes_they_cannot_test(layout):
    """docs, release notes, API reference, translations and the project's own unit and
    functional tests never reach a shard: Zuul's matchers skip such changes."""
    (base,) = layout["jobs"]["shard-base"]
    skipped = {"docs only", "release note", "api reference", "translations"}
    skipped |= {"unit tests only", "functional tests only"}
    for change, runs in base["runs_for"].items():
        assert runs == (change not in skipped), f"shard-base runs for {change}: {runs}"


def test_post_run_has_time_for_teardown_s_worst_case(layout):
    """Per shard of the job (one cleanup playbook tears them all down): two waits of
    shard_wait_timeout (the APIs, the servers' deletion) and the stop; then a minute."""
    for name, _job in variants(layout):
        if not name.startswith("shard-") or name == "shard-janitor":
            continue
        chain = [j for _, j in ancestry(layout, name)]
        values = {}
        for ancestor in reversed(chain):  # a child's value wins
            values.update(ancestor["wait_vars"])
        post_timeout = next((j["post_timeout"] for j in chain if j["post_timeout"]), 0)
        shards = int(values.get("shard_upgrade_shards", 1))
        wait = int(values.get("shard_wait_timeout", 300))
        worst = shards * (2 * wait + 30) + 60
        assert post_timeout >= worst, (name, post_timeout, shards, wait)


def test_the_janitor_never_takes_a_run_that_may_still_run(layout):
    """The janitor's minimum age (module_utils/shard_janitor_rules.py) is at least every
    job's timeout plus its post-run time, post-timeout for each post-run playbook of the
    job and its ancestors (Zuul bounds each one on its own): a run younger than that may
    still be running."""
    from shard_jobs.rules import janitor

    for name, job in variants(layout):
        if not name.startswith("shard-") or not job["timeout"]:
            continue
        chain = [job for _, job in ancestry(layout, name)]
        post_timeout = next((j["post_timeout"] for j in chain if j["post_timeout"]), 0)
        playbooks = sum(len(j["post_run"]) + len(j["cleanup_run"]) for j in chain)
        longest = job["timeout"] + playbooks * post_timeout
        assert longest <= janitor.MINIMUM_AGE, (name, job["timeout"], playbooks, post_timeout)


def ancestry(layout, name):
    """(name, job) of the job and its ancestors in zuul.d/, the job first (up to the
    tenant's base job, which is the site's)."""
    while name in layout["jobs"]:
        (job,) = layout["jobs"][name]
        yield name, job
        name = job["parent"]


def held(layout, name):
    """What a job holds: its semaphores and every ancestor's (Zuul adds a parent's)."""
    semaphores, variables = set(), {}
    for owner, job in ancestry(layout, name):
        semaphores |= set(job["semaphores"])
        for var in job["vars"]:
            variables.setdefault(var, owner)
    return semaphores, variables


def test_the_upgrade_job_has_a_lane_of_its_own(layout):
    """The check jobs share shard-cloud; the nightly upgrade holds only shard-cloud-upgrade
    and reads credentials of its own (a site may give it another cloud)."""
    for name in ("shard-nova-compute", "shard-glance-api"):
        assert held(layout, name)[0] == {"shard-cloud"}, name
    semaphores, variables = held(layout, "shard-nova-compute-upgrade")
    assert semaphores == {"shard-cloud-upgrade"}
    assert variables.get("shard_cloud_file") == "shard-nova-compute-upgrade"
    text = (ZUUL_D / "jobs.yaml").read_text()
    upgrade = yaml.safe_load(text)
    (job,) = [j["job"] for j in upgrade if j["job"]["name"] == "shard-nova-compute-upgrade"]
    assert job["vars"]["shard_cloud_file"].endswith("/shard-cloud-upgrade.yaml")
