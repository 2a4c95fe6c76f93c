"""The shard jobs under a real Zuul (14.3.0): a consumer's ref is enqueued and built here.

The tenant: a config project (tests/zuul/config-project: a check pipeline fed by pushes,
the base job that leaves the target cloud's credentials on the node, this machine as a
static node), this library as an untrusted project (its working tree), openstack/nova (the
release the embedded cloud runs, its .zuul.yaml adding the shard-jobs template) and
openstack/unauthorized (only the template). Tests run in file order and share the site;
the last ones switch the tenant to the layout for a cloud with real tenants (the secret on
a site job only, tests/zuul/post-review/site-jobs.yaml, in a post-review gate pipeline).
"""

import json
import subprocess
import uuid
from pathlib import Path

import yaml
from job_runs import leftovers, run_job
from zuul_site import POST_REVIEW_JOB as SITE_JOB
from zuul_site import TENANT

from shard_jobs import replay, sources, task_list
from shard_jobs.rules import labels, secrets

JOB = "shard-nova-compute"
# The cleanup playbook's step that deletes what carries the label (shard_teardown).
TEARDOWN_TASK = "Delete what carries the build's label and check that nothing is left"
NOVA = "openstack/nova"
UNAUTHORIZED = "openstack/unauthorized"
# The build of a nova change that passed, its revision and marker: replayed locally later.
PASSED = {}
# The library as the tenant names it (its playbooks in the build's job-output.json).
LIBRARY_PROJECT = "shard-jobs"
# Tasks of the job that run under one of the two only, and why: what the test site's base
# job does before the library's playbooks.
NOT_COMPARED = {
    # Its pre-run gathered the node's facts: the library's first play finds them cached.
    "Gathering Facts",
    # It left the credentials on the node (shard_cloud_file); ./shard run hands them to the
    # playbooks as the secret shard_cloud instead.
    "Read the credentials the site's base job left on the node",
}


def label_of(build: dict) -> str:
    return labels.label_for(build["uuid"])


def reasons(output: str) -> str:
    """The failure messages of a job-output.txt, for an assertion's message."""
    return "\n".join(line for line in output.splitlines() if '"msg":' in line)[-2000:]


def insert_after(path, anchor: str, line: str):
    text = path.read_text()
    assert anchor in text, f"{anchor!r} not in {path}"
    path.write_text(text.replace(anchor, anchor + line, 1))


def test_tenant_loads_without_errors(site):
    assert site.config_errors() == []


def test_the_jobs_carry_no_secret_so_a_proposed_change_runs_them(site):
    # The credentials come from the site's base job (shard_cloud_file on the node), so
    # Zuul's rule for jobs carrying an untrusted project's secret (post-review pipelines
    # only) does not apply: the tenant's pipeline is a pre-review "check".
    assert site.library_jobs_with_secrets == []
    assert site.pipeline == "check"


def test_a_nova_change_passes_as_a_shard_and_leaves_nothing(site, admin_conn):
    marker = f"SHARD-ZUUL-MARKER-{uuid.uuid4().hex}"

    def log_marker(tree):
        insert_after(
            tree / "nova" / "cmd" / "compute.py",
            "    logging.setup(CONF, 'nova')\n",
            f"    logging.getLogger(__name__).warning({marker!r})\n",
        )

    rev = site.push(NOVA, "Log a marker when nova-compute starts", log_marker)
    build = site.wait_build(NOVA, rev, JOB)
    logs = site.build_logs(build)
    output = (logs / "job-output.txt").read_text()
    assert build["result"] == "SUCCESS", (
        f"{build['result']}; see {logs}/job-output.txt:\n{reasons(output)}"
    )
    # The change under test is what ran: its marker is in the shard's log, which the
    # job's teardown collected into the build's logs.
    assert marker in (logs / "shard" / "nova-compute.log").read_text()
    # The cleanup playbook's teardown ran and found nothing left; the cloud agrees.
    assert TEARDOWN_TASK in output
    assert leftovers(admin_conn, label_of(build)) == {}
    PASSED.update(build=build, rev=rev, marker=marker)


def test_a_build_is_replayed_locally_from_its_logs(site, admin_conn, tmp_path):
    """`./shard run --from-zuul LOGS --src ...`: the build's job, variables and change, read
    from the inventory the site's base job logged (as zuul-jobs' log-inventory does), run
    here against the same cloud."""
    build = PASSED["build"]
    logs = site.build_logs(build)
    logged = (logs / replay.INVENTORY).read_text()
    # Zuul's executor keeps the site's secret out of the inventory it logs.
    assert not [v for v in secrets.secret_values(site.handout).values() if v in logged]
    tree = tmp_path / "nova"
    subprocess.run(["git", "clone", "-q", str(site.bare(NOVA)), str(tree)], check=True)
    subprocess.run(["git", "checkout", "-q", PASSED["rev"]], cwd=tree, check=True)

    status, summary, stderr = run_job(None, "--from-zuul", str(logs), "--src", f"{NOVA}={tree}")
    assert summary, stderr
    assert (status, summary["result"], summary["job"]) == (0, "SUCCESS", JOB), stderr
    replayed = Path(summary["logs"])
    # The change's code ran (its marker), in the build's change: Zuul's item as the build had.
    assert PASSED["marker"] in (replayed / "shard" / "nova-compute.log").read_text()
    original = yaml.safe_load(logged)["all"]["vars"]["zuul"]
    local = yaml.safe_load((replayed / replay.INVENTORY).read_text())["all"]["vars"]["zuul"]
    item = {k: original[k] for k in replay.ITEM_KEYS if original.get(k) is not None}
    assert item and {k: local[k] for k in item} == item, (item, local)
    assert local["build"] == summary["build"] != build["uuid"]
    assert leftovers(admin_conn, labels.label_for(summary["build"])) == {}
    # The executor's Ansible and ./shard run's: the same tasks, in the same order, on the
    # same hosts (but for what the site's base job does).
    under_zuul = task_list.from_zuul(logs / "job-output.json", LIBRARY_PROJECT)
    here = task_list.from_local(replayed / "job-output.txt")
    assert len(under_zuul) > 40, under_zuul
    assert [t for t in under_zuul if t[0] not in NOT_COMPARED] == [
        t for t in here if t[0] not in NOT_COMPARED
    ]


def test_a_nova_change_that_breaks_nova_compute_fails_and_leaves_nothing(site, admin_conn):
    def break_start(tree):
        compute = tree / "nova" / "cmd" / "compute.py"
        insert_after(compute, "def main():\n", "    raise SystemExit(3)\n")

    rev = site.push(NOVA, "Break nova-compute's start", break_start)
    build = site.wait_build(NOVA, rev, JOB)
    logs = site.build_logs(build)
    output = (logs / "job-output.txt").read_text()
    assert build["result"] == "FAILURE", (
        f"{build['result']}; see {logs}/job-output.txt:\n{reasons(output)}"
    )
    # The log says why: the compute died after its start, before the cloud saw it.
    assert "nova-compute exited after it was started" in output, f"see {logs}/job-output.txt"
    # Teardown ran, and nothing carries the build's label.
    assert TEARDOWN_TASK in output
    assert leftovers(admin_conn, label_of(build)) == {}


UPGRADE = "shard-nova-compute-upgrade"


def test_the_upgrade_job_starts_from_the_last_good_build_zuul_kept(site, admin_conn):
    # Two nightly runs on single-use nodes: the first returns its candidate as an
    # artifact; the second finds it through Zuul's builds API and starts from it.
    api = f"{site.web_url}/api/tenant/{TENANT}"

    def run_upgrade(source):
        def edit(tree):
            job = {UPGRADE: {"vars": {"shard_upgrade_from": source, "shard_upgrade_zuul_api": api}}}
            project = {"project": {"check": {"jobs": [job]}}}
            (tree / ".zuul.yaml").write_text("---\n" + yaml.safe_dump([project]))

        rev = site.push(NOVA, f"Run the upgrade job from {source}", edit)
        build = site.wait_build(NOVA, rev, UPGRADE)
        logs = site.build_logs(build)
        output = (logs / "job-output.txt").read_text()
        assert build["result"] == "SUCCESS", (
            f"{build['result']}; see {logs}/job-output.txt:\n{reasons(output)}"
        )
        assert leftovers(admin_conn, label_of(build)) == {}
        return rev, build, json.loads((logs / "shard" / "upgrade.json").read_text())

    # The first: from the release the cloud runs (it takes no older compute).
    first_rev, first, report = run_upgrade(sources.pinned_version("nova"))
    assert report["to"]["commit"] == first_rev
    (artifact,) = [a for a in first["artifacts"] if a["name"] == "shard-upgrade-last-good"]
    assert artifact["metadata"]["commit"] == first_rev

    _, second, report = run_upgrade("last-good")
    chosen = report["from"]
    assert (chosen["kind"], chosen["ref"]) == ("ref", first_rev), chosen
    assert f"build {first['uuid']} of {UPGRADE}" in chosen["reason"], chosen


# -- the layout for a cloud with real tenants (docs/source/trust.rst) --------------

# A job of nova's own, not a shard job: it fails when it finds the target cloud's
# credentials on its node or among its variables.
PROBE = "nova-credentials-probe"
PROBE_PLAYBOOK = """\
---
- name: Look for the target cloud's credentials
  hosts: all
  gather_facts: false
  tasks:
    - name: Look for the credentials file the CI-only layout's base job writes
      ansible.builtin.stat:
        path: ~/.config/shard-jobs/shard-cloud.yaml
      register: credentials_file
    - name: Fail when there is a credentials file or a credentials variable
      ansible.builtin.assert:
        that:
          - not credentials_file.stat.exists
          - shard_cloud is not defined
          - shard_site_cloud is not defined
"""


def nova_jobs(*jobs, extra=()):
    """An edit of nova's tree: its .zuul.yaml runs JOBS in gate (no template), with the
    probe's job and playbook, and EXTRA job definitions."""

    def edit(tree):
        (tree / "playbooks").mkdir(exist_ok=True)
        (tree / "playbooks" / "probe.yaml").write_text(PROBE_PLAYBOOK)
        config = [
            {"job": {"name": PROBE, "parent": "base", "run": "playbooks/probe.yaml"}},
            *({"job": job} for job in extra),
            {"project": {"gate": {"jobs": list(jobs)}}},
        ]
        (tree / ".zuul.yaml").write_text("---\n" + yaml.safe_dump(config, sort_keys=False))

    return edit


def secrets_in(directory, wanted) -> list:
    """(where, secret's name, form) of every secret of WANTED written under DIRECTORY: in
    its files, and in every object of its git repositories (history included, which the
    files, compressed, would hide)."""
    assert (directory / "work" / "logs" / "job-output.txt").is_file(), directory
    found = [
        (str(path), *hit)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not path.is_symlink()
        for hit in secrets.secrets_found(path.read_bytes(), wanted)
    ]
    for git_dir in sorted(p for p in directory.rglob(".git") if p.is_dir()):
        objects = subprocess.run(
            ["git", f"--git-dir={git_dir}", "cat-file", "--batch-all-objects", "--batch"],
            capture_output=True,
            check=True,
        ).stdout
        assert objects, git_dir
        found += [(f"{git_dir} (objects)", *hit) for hit in secrets.secrets_found(objects, wanted)]
    return found


def test_with_a_site_job_only_the_shard_job_gets_the_credentials(site, admin_conn):
    """The site's secret on its child of the shard job (pass-to-parent), none on base:
    the shard job passes in the post-review gate; nova's own job in the same buildset
    finds no credentials on its node or in its variables, and no form of any secret of
    the handout is in its build directory."""
    site.use_post_review_layout()
    assert site.pipeline == "gate"
    assert site.config_errors() == []
    rev = site.push(NOVA, "Run a job of nova's own beside the site's", nova_jobs(PROBE))
    buildset = site.wait_buildset(NOVA, rev)
    builds = {b["job_name"]: b for b in buildset["builds"]}
    assert set(builds) == {SITE_JOB, PROBE}, buildset.get("message")

    shard = builds[SITE_JOB]
    logs = site.build_logs(shard)
    assert shard["result"] == "SUCCESS", (
        f"{shard['result']}; see {logs}/job-output.txt:\n"
        f"{reasons((logs / 'job-output.txt').read_text())}"
    )
    assert leftovers(admin_conn, label_of(shard)) == {}

    probe = builds[PROBE]
    assert probe["result"] == "SUCCESS", f"see {site.build_logs(probe)}/job-output.txt"
    # Nothing of the secret in the probe's build directory on the executor (its
    # playbooks, inventory, variables, logs and the repositories it got, the config
    # project's among them, whose secret is encrypted as a site keeps it).
    wanted = secrets.secret_values(site.handout)
    assert wanted
    assert secrets_in(site.p("j", probe["uuid"]), wanted) == []


def test_a_proposed_child_of_the_site_job_never_runs(site):
    """The site job is final: a job of nova's that names it as parent is refused, so
    the secret never reaches a playbook a change brings."""
    child = {"name": "nova-child-of-site-job", "parent": SITE_JOB, "run": "playbooks/probe.yaml"}
    rev = site.push(NOVA, "Inherit the site's job", nova_jobs(child["name"], extra=[child]))
    buildset = site.wait_buildset(NOVA, rev, timeout=600)
    assert child["name"] not in {b["job_name"] for b in buildset.get("builds") or []}
    said = json.dumps(buildset.get("message")) + json.dumps(site.config_errors())
    assert f'\\"{SITE_JOB}\\" is final and can not act as a parent' in said, said


def test_another_project_that_adds_the_site_job_is_refused(site):
    """allowed-projects: only openstack/nova may add the site's job to its pipelines."""

    def edit(tree):
        project = {"project": {"gate": {"jobs": [SITE_JOB]}}}
        (tree / ".zuul.yaml").write_text("---\n" + yaml.safe_dump([project]))

    rev = site.push(UNAUTHORIZED, "Run the site's job with its secret", edit)
    buildset = site.wait_buildset(UNAUTHORIZED, rev, timeout=600)
    assert not buildset.get("builds"), buildset
    said = json.dumps(buildset.get("message"))
    assert f"is not allowed to run job {SITE_JOB}" in said, buildset
