"""Bad input: one clear line naming the problem, a non-zero exit, nothing left behind.

What the runner can judge (build id, profile, source tree, cloud name) it
refuses before anything is written (exit 2). What needs the target cloud
(credentials, image, quota) fails the job's pre-run (exit 1, result RETRY:
the cloud's problem, not the change's), and the cleanup playbook adds no
line of its own: it has nothing to tear down, and collects the logs and the
report (with teardown's verdict) quietly.
These runs start together: each spends its time in ansible, not in the cloud.
"""

import copy
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import job_runs
import pytest
from faults_helpers import (
    JOB,
    SECRETS,
    assert_clean,
    new_build,
    run_dir,
    shard,
    summary_of,
)

WRONG_PASSWORD = f"wrong-{uuid.uuid4().hex}"
SECRETS["a wrong password given to a job"] = WRONG_PASSWORD


def stderr_lines(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def handout() -> dict:
    """What the embedded cloud hands out to jobs (their secret)."""
    return job_runs.handout()


def secret_file(tmp: Path, name: str, secret: dict) -> str:
    return job_runs.secret_file(tmp / f"{name}.yaml", secret)


@pytest.fixture(scope="module")
def quota_account(admin_conn, handout):
    """A throw-away project and user (admin, as the jobs' account) whose quota
    allows no server: the cloud is full for them."""
    suffix = uuid.uuid4().hex[:8]
    password = uuid.uuid4().hex
    SECRETS["the throw-away account's password"] = password
    project = admin_conn.identity.create_project(name=f"faults-quota-{suffix}", domain_id="default")
    user = None
    try:
        user = admin_conn.identity.create_user(
            name=f"faults-quota-{suffix}",
            password=password,
            default_project_id=project.id,
            domain_id="default",
        )
        role = admin_conn.identity.find_role("admin")
        admin_conn.identity.assign_project_role_to_user(project, user, role)
        admin_conn.set_compute_quotas(project.id, instances=0)
        secret = copy.deepcopy(handout)
        secret["cloud"]["auth"].update(
            username=user.name, password=password, project_name=project.name
        )
        yield {"secret": secret, "project": project, "password": password}
    finally:
        try:
            admin_conn.delete_compute_quotas(project.id)
        finally:
            if user is not None:
                admin_conn.identity.delete_user(user, ignore_missing=True)
            admin_conn.identity.delete_project(project, ignore_missing=True)


@pytest.fixture(scope="module")
def job_failures(tmp_path_factory, handout, quota_account):
    """The bad inputs that fail the job's pre-run, run at once: name -> (build, process)."""
    tmp = tmp_path_factory.mktemp("bad-input")
    wrong = copy.deepcopy(handout)
    wrong["cloud"]["auth"]["password"] = WRONG_PASSWORD
    unreachable = copy.deepcopy(handout)
    # Port 9 (discard): nothing listens there.
    unreachable["cloud"]["auth"]["auth_url"] = "http://127.0.0.1:9/v3"
    cases = {
        "wrong password": ["--secret-file", secret_file(tmp, "wrong", wrong)],
        "unreachable auth URL": ["--secret-file", secret_file(tmp, "unreachable", unreachable)],
        "missing image": ["-e", "shard_profile_options={image: no-such-image}"],
        "quota exhausted": [
            "--secret-file",
            secret_file(tmp, "quota", quota_account["secret"]),
        ],
        # A job variable a project might set: the role refuses it.
        "illegal build id in the job": ["-e", "shard_build_id=shard/../x;y"],
    }
    builds = {name: new_build() for name in cases}

    def run(name):
        return shard("run", JOB, "--json", "--build", builds[name], *cases[name], timeout=900)

    with ThreadPoolExecutor(len(cases)) as pool:
        done = dict(zip(cases, pool.map(run, cases), strict=True))
    return {name: (builds[name], done[name]) for name in cases}


# The line each refusal gives ({project}: the throw-away project's id).
PRE_RUN_LINES = {
    "wrong password": "cannot authenticate to the target cloud at http://127.0.0.1:5000/v3: "
    "wrong user name, password or project (HTTP 401)",
    "unreachable auth URL": "target cloud unhealthy: identity at http://127.0.0.1:9/v3 unreachable",
    "missing image": "image no-such-image not found in the target cloud",
    "quota exhausted": "target cloud has no room: the quota of project {project} is exhausted: "
    "instances 0 of 0 servers used, 1 more needed",
    "illegal build id in the job": "invalid build id 'shard/../x;y'",
}


@pytest.mark.parametrize("case", list(PRE_RUN_LINES))
def test_refused_in_pre_run(case, job_failures, admin_conn, quota_account):
    build, proc = job_failures[case]
    message = PRE_RUN_LINES[case].format(project=quota_account["project"].id)
    lines = stderr_lines(proc)
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert message in lines[0], lines[0]
    assert lines[0].startswith("pre-run ")
    summary = summary_of(proc.stdout)
    assert summary["result"] == "RETRY"  # the cloud's problem: Zuul tries again
    assert summary["teardown"] == "ok"
    # Nothing was deployed: no phase past the pre-run's, nothing in the cloud.
    assert not {"deploy", "label", "exercise"} & set(summary["phases"])
    assert_clean(admin_conn, build)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cloud", "no-such-cloud"], "run: unknown cloud 'no-such-cloud' in clouds.yaml"),
        (["--build", "Shard_1!x"], "run: invalid build id 'Shard_1!x'"),
        (["--build", "../../../tmp/0123456789ab"], "run: invalid build id '../../../tmp/"),
        (
            ["-e", "shard_profile=no-such-profile"],
            "run: unknown shard profile 'no-such-profile'; known profiles: glance-api, "
            "nova-compute",
        ),
        (["-e", "shard_profile=../../etc"], "run: unknown shard profile '../../etc'"),
        (
            ["--src", "openstack/nova=/nonexistent/nova"],
            "run: missing source tree: /nonexistent/nova is not a directory",
        ),
    ],
    ids=[
        "unknown cloud",
        "illegal build id",
        "build id as a path",
        "unknown profile",
        "profile as a path",
        "missing source tree",
    ],
)
def test_refused_by_the_runner(args, message, admin_conn):
    build = new_build()
    if "--build" not in args:
        args = ["--build", build, *args]
    proc = shard("run", JOB, "--json", *args, timeout=300)
    lines = stderr_lines(proc)
    assert proc.returncode == 2, proc.stderr
    assert lines == [lines[0]] and lines[0].startswith(message), proc.stderr
    # Refused before anything was written, here or in the cloud.
    assert not run_dir(build).exists()
    assert_clean(admin_conn, build)


def test_a_glance_shard_never_listens_wider_than_allowed(admin_conn):
    """A job variable asking the unreviewed glance-api to listen on every address (or
    worse, a shell expression) is refused in pre-run, in one line, before the build."""
    build = new_build()
    proc = shard(
        "run",
        "shard-glance-api",
        "--json",
        "--build",
        build,
        "-e",
        "shard_profile_options={bind_host: '0.0.0.0$(touch /tmp/shard-injected)'}",
        timeout=900,
    )
    lines = stderr_lines(proc)
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert "bind_host 0.0.0.0$(touch /tmp/shard-injected) is not allowed" in lines[0], lines[0]
    summary = summary_of(proc.stdout)
    assert "build" not in summary["phases"]
    assert not Path("/tmp/shard-injected").exists()
    assert_clean(admin_conn, build)


def test_a_teardown_that_cannot_reach_the_cloud_fails(tmp_path, handout, admin_conn):
    """Fail closed: a cleanup without usable credentials (the handout lost its cloud
    entry) cannot know what the run left, and says so instead of reporting ok."""
    broken = copy.deepcopy(handout)
    del broken["cloud"]
    build = new_build()
    proc = shard(
        "run",
        JOB,
        "--json",
        "--cleanup",
        "--build",
        build,
        "--secret-file",
        secret_file(tmp_path, "no-cloud", broken),
        timeout=600,
    )
    summary = summary_of(proc.stdout)
    assert proc.returncode == 1, proc.stderr
    assert summary["result"] == "POST_FAILURE", proc.stderr
    assert "teardown cannot delete what the run may have created in the cloud: no usable " in (
        proc.stderr
    )
    assert_clean(admin_conn, build)
