"""The shard jobs under a real Zuul (14.3.0): a consumer's ref is enqueued and built here.

The tenant: a config project (tests/zuul/config-project: a check pipeline fed by pushes,
the base job that leaves the target cloud's credentials on the node, this machine as a
static node), this library as an untrusted project (its working tree), openstack/nova (the
release the embedded cloud runs, its .zuul.yaml adding the shard-jobs template) and
openstack/unauthorized (only the template). Tests run in file order and share the site.
"""

import json
import uuid

import yaml
from job_runs import leftovers
from zuul_site import TENANT

from shard_jobs import sources
from shard_jobs.rules import labels

JOB = "shard-nova-compute"
# The cleanup playbook's step that deletes what carries the label (shard_teardown).
TEARDOWN_TASK = "Delete what carries the build's label and check that nothing is left"
NOVA = "openstack/nova"


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
    # job's collect-logs role pulled into the build's logs.
    assert marker in (logs / "shard" / "nova-compute.log").read_text()
    # The cleanup playbook's teardown ran and found nothing left; the cloud agrees.
    assert TEARDOWN_TASK in output
    assert leftovers(admin_conn, label_of(build)) == {}


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
