"""shard_guard: the guard step in one module process (the phase, the migrations, the
service version), and the shard_guard role's tasks around it (main.yaml, skew.yaml) as
a play runs them. The migration rule itself: test_shard_migrations.py."""

import json
import sys

import pytest
import shard_guard as module
import yaml
from test_shard_migrations import RELEASE, VERSIONS, git, write
from unit_helpers import playbook

from shard_jobs import paths

PATTERN = r"^SERVICE_VERSION = (\d+)$"
FILE = "nova/objects/service.py"
DATABASE = {"name": "glance", "migrations": [VERSIONS], "instead": "a devstack job"}
NEW = f"{VERSIONS}/2026_2_expand01_add_column.py"
MIGRATION_REFUSAL = (
    "this change alters the glance database schema; a shard cannot test it: a devstack job"
)


def skew_line(minimum, what, version, service="nova-compute"):
    return (
        f"this cloud refuses {service} older than v{minimum} (minimum_service_versions in its "
        f"credentials): {what} has service version {version}; it needs a cloud that still "
        "accepts that version (one at the change's release, not upgraded past it)"
    )


def newer_line(maximum, what, version, project, service="nova-compute"):
    return (
        f"this cloud accepts {service} up to v{maximum} (maximum_service_versions in its "
        f"credentials): {what} has service version {version}; it needs a cloud whose {project} "
        "is at least that new (one that follows the branch, upgraded)"
    )


def lacks_line(package, commit):
    return (
        f"this cloud runs {package} at commit {commit}, which the change's repository lacks "
        f"(commits.{package} in its credentials): the change must be rebased onto (or past) "
        "the commit the cloud runs"
    )


@pytest.fixture
def repo(tmp_path):
    """glance with release 33.0.0 tagged, and a service version of 73 in its tree; the
    working tree is the change under test."""
    tree = tmp_path / "glance"
    tree.mkdir()
    git(tree, "init", "-q", "-b", "master")
    write(tree, dict(RELEASE, **{FILE: "SERVICE_VERSION = 73\n"}))
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "glance 33.0.0")
    git(tree, "tag", "33.0.0")
    return tree


def phase_events(workspace):
    path = workspace / "phases.jsonl"
    if not path.exists():
        return []
    return [(e["phase"], e["event"]) for e in map(json.loads, path.read_text().splitlines())]


def args(tmp_path, repo, **extra):
    out = {
        "phase": {"workspace": str(tmp_path / "ws"), "name": "guard", "start": True, "end": True},
        "src": str(repo),
        "database": DATABASE,
        "version": "33.0.0",
        "package": "glance",
    }
    out.update(extra)
    return out


def test_a_change_that_the_cloud_can_take_finishes_the_phase(run_module, tmp_path, repo):
    result = run_module(module, args(tmp_path, repo))
    assert result["changed"] is False
    assert result["refusal"] == ""
    assert result["differs"] is False and result["compared"] == 3
    assert result["reference"] == {"version": "33.0.0", "source": "tag", "where": "33.0.0"}
    assert result["service_version"] is None
    assert phase_events(tmp_path / "ws") == [("guard", "start"), ("guard", "end")]


def test_a_new_migration_is_refused_and_the_phase_left_unfinished(run_module, tmp_path, repo):
    write(repo, {NEW: "def upgrade():\n    add_column()\n"})
    result = run_module(module, args(tmp_path, repo))
    assert result.get("failed") is None, result
    assert result["refusal"] == MIGRATION_REFUSAL
    assert result["differs"] is True and result["added"] == [NEW]
    assert result["removed"] == result["modified"] == []
    assert phase_events(tmp_path / "ws") == [("guard", "start")]


def test_a_service_older_than_the_cloud_accepts_is_refused(run_module, tmp_path, repo):
    sv = {"path": FILE, "pattern": PATTERN}
    extra = dict(service_version=sv, service="nova-compute", what="the change's nova")
    result = run_module(module, args(tmp_path, repo, minimum="74", **extra))
    assert result["service_version"] == 73
    assert result["refusal"] == skew_line(74, "the change's nova", 73)
    assert phase_events(tmp_path / "ws") == [("guard", "start")]
    # The minimum itself, or no minimum stated: nothing refused.
    for minimum in ("73", ""):
        ok = run_module(module, args(tmp_path, repo, minimum=minimum, **extra))
        assert ok["refusal"] == "" and ok["service_version"] == 73


def test_a_service_newer_than_the_cloud_accepts_is_refused(run_module, tmp_path, repo):
    sv = {"path": FILE, "pattern": PATTERN}
    extra = dict(service_version=sv, service="nova-compute", what="the change's nova")
    result = run_module(module, args(tmp_path, repo, maximum="72", **extra))
    assert result["service_version"] == 73
    # Which cloud it needs: one whose project (the package) is that new.
    assert result["refusal"] == newer_line(72, "the change's nova", 73, "glance")
    assert phase_events(tmp_path / "ws") == [("guard", "start")]
    # The maximum itself, or no maximum stated: nothing refused; both bounds, between them.
    for bounds in ({"maximum": "73"}, {"maximum": ""}, {"minimum": "73", "maximum": "73"}):
        ok = run_module(module, args(tmp_path, repo, **bounds, **extra))
        assert ok["refusal"] == "" and ok["service_version"] == 73, bounds


def test_a_maximum_that_is_not_a_number_fails_once_it_is_used(run_module, tmp_path, repo):
    spec = {"path": FILE, "pattern": "x"}
    result = run_module(module, args(tmp_path, repo, maximum="v75", service_version=spec))
    assert result["failed"] is True
    assert result["msg"] == "maximum is not a service version: 'v75'"
    assert phase_events(tmp_path / "ws") == [("guard", "start")]
    assert run_module(module, args(tmp_path, repo, maximum="v75"))["refusal"] == ""


def test_the_service_version_is_refused_first(run_module, tmp_path, repo):
    """As the role's tasks checked it: both refused, the service version's line."""
    write(repo, {NEW: "x = 1\n"})
    sv = {"path": FILE, "pattern": PATTERN}
    result = run_module(
        module, args(tmp_path, repo, service_version=sv, minimum="74", service="nova-compute")
    )
    assert result["differs"] is True
    assert result["refusal"].startswith("this cloud refuses nova-compute older than v74")


def test_a_version_not_found_refuses_nothing(run_module, tmp_path, repo):
    sv = {"path": "nova/no/such.py", "pattern": PATTERN}
    result = run_module(module, args(tmp_path, repo, service_version=sv, minimum="74"))
    assert result["service_version"] is None and result["refusal"] == ""


def test_without_a_database_only_the_phase(run_module, tmp_path):
    phase = {"workspace": str(tmp_path / "ws"), "name": "guard", "start": True, "end": True}
    result = run_module(module, {"phase": phase, "src": str(tmp_path / "not-read")})
    assert result["refusal"] == "" and result["differs"] is False
    assert result["compared"] == 0 and result["reference"] == {}
    assert phase_events(tmp_path / "ws") == [("guard", "start"), ("guard", "end")]


def test_the_upgrade_s_from_without_migrations_nor_phase(run_module, tmp_path):
    venv = tmp_path / "venv-from"
    write(venv / "lib/python3.12/site-packages", {FILE: "SERVICE_VERSION = 70\n"})
    result = run_module(
        module,
        {
            "root": str(venv),
            "service_version": {"path": FILE, "pattern": PATTERN},
            "minimum": "72",
            "service": "nova-compute",
            "what": 'the upgrade\'s "from" (nova 31.0.0)',
        },
    )
    assert result["refusal"] == skew_line(72, 'the upgrade\'s "from" (nova 31.0.0)', 70)
    assert not (tmp_path / "ws").exists()


def test_the_upgrade_s_from_newer_than_the_cloud_accepts(run_module, tmp_path):
    venv = tmp_path / "venv-from"
    write(venv / "lib/python3.12/site-packages", {FILE: "SERVICE_VERSION = 77\n"})
    what = 'the upgrade\'s "from" (nova 35.0.0)'
    given = {"root": str(venv), "service_version": {"path": FILE, "pattern": PATTERN}}
    given.update(service="nova-compute", what=what, minimum="72", maximum="75")
    result = run_module(module, dict(given, package="nova"))
    assert result["refusal"] == newer_line(75, what, 77, "nova")
    # Without the package, the service names the cloud it needs.
    assert run_module(module, given)["refusal"] == newer_line(75, what, 77, "nova-compute")


# ------------------------------------------------- a cloud that follows a branch


@pytest.fixture
def follows(tmp_path):
    """glance's master: A (tagged 33.0.0, the release), then B adding a migration, the
    commit a cloud that follows master runs; the working tree (the change) on top of B.
    Returns (tree, A, B)."""
    tree = tmp_path / "glance-master"
    tree.mkdir()
    git(tree, "init", "-q", "-b", "master")
    write(tree, dict(RELEASE, **{FILE: "SERVICE_VERSION = 73\n"}))
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "glance 33.0.0")
    git(tree, "tag", "33.0.0")
    a = git(tree, "rev-parse", "HEAD")
    write(tree, {NEW: "def upgrade():\n    add_column()\n"})
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "a migration of master")
    return tree, a, git(tree, "rev-parse", "HEAD")


def test_the_commit_the_cloud_runs_is_the_reference(run_module, tmp_path, follows):
    """A change on top of the cloud's commit, without migrations of its own, is taken;
    compared with the release (no commits in the credentials), master's migration
    refuses it, as before."""
    tree, _, b = follows
    write(tree, {"glance/api/v2/images.py": "def index():\n    return ['changed']\n"})
    git(tree, "commit", "-qam", "the change")
    result = run_module(module, args(tmp_path, tree, ref=b))
    assert result["refusal"] == "" and result["differs"] is False, result
    assert result["reference"] == {"version": "33.0.0", "source": "commit", "where": b}
    assert phase_events(tmp_path / "ws") == [("guard", "start"), ("guard", "end")]
    # The tag alone, as a cloud at its release: master's migration is the change's.
    release = run_module(module, args(tmp_path, tree))
    assert release["refusal"] == MIGRATION_REFUSAL and release["added"] == [NEW]
    assert release["reference"] == {"version": "33.0.0", "source": "tag", "where": "33.0.0"}


def test_a_change_with_a_migration_of_its_own_is_refused_on_that_commit(
    run_module, tmp_path, follows
):
    tree, _, b = follows
    own = f"{VERSIONS}/2026_2_expand02_add_index.py"
    write(tree, {own: "def upgrade():\n    add_index()\n"})
    result = run_module(module, args(tmp_path, tree, ref=b.upper()))
    assert result["refusal"] == MIGRATION_REFUSAL and result["added"] == [own]
    assert result["reference"]["source"] == "commit"


def test_a_change_that_lacks_the_cloud_s_commit_is_refused(run_module, tmp_path, follows):
    """Based on A while the cloud runs B: B is in the repository (master) but not in the
    change's history, so the change lacks B's migration. Refused in one line, which
    says to rebase, not that the change alters the schema; the phase left unfinished."""
    tree, a, b = follows
    git(tree, "checkout", "-q", "-b", "change", a)
    write(tree, {"glance/api/v2/images.py": "def index():\n    return ['changed']\n"})
    git(tree, "commit", "-qam", "the change, on the release")
    result = run_module(module, args(tmp_path, tree, ref=b))
    assert result.get("failed") is None, result
    assert result["refusal"] == lacks_line("glance", b)
    assert result["differs"] is False and result["reference"] == {}
    assert phase_events(tmp_path / "ws") == [("guard", "start")]
    # A commit the repository does not hold at all; a tree that is no repository: the
    # same line, never the source release instead.
    unknown = "0123456789abcdef0123456789abcdef01234567"
    assert run_module(module, args(tmp_path, tree, ref=unknown))["refusal"] == lacks_line(
        "glance", unknown
    )
    plain = tmp_path / "plain"
    write(plain, RELEASE)
    assert run_module(module, args(tmp_path, plain, ref=b))["refusal"] == lacks_line("glance", b)


def test_a_cloud_behind_its_branch_is_told_to_move_not_the_change(run_module, tmp_path, follows):
    """The cloud still runs A while master gained B's migration: a change on B without a
    migration of its own is refused with the line that says the cloud must be upgraded;
    one that adds its own still gets the schema line."""
    tree, a, b = follows
    write(tree, {"glance/api/v2/images.py": "def index():\n    return ['changed']\n"})
    git(tree, "commit", "-qam", "the change")
    result = run_module(module, args(tmp_path, tree, commit=a))
    assert result["cloud_behind"] is True and result["added"] == [NEW], result
    assert result["refusal"] == (
        f"this cloud runs glance at commit {a}, and the change's branch has glance database "
        "migrations since, which the cloud lacks (the change itself adds none): the cloud "
        "must be upgraded past them before changes of this branch meet it"
    )
    assert phase_events(tmp_path / "ws") == [("guard", "start")]
    own = f"{VERSIONS}/2026_2_expand02_add_index.py"
    write(tree, {own: "def upgrade():\n    add_index()\n"})  # uncommitted, still the change's
    result = run_module(module, args(tmp_path, tree, commit=a))
    assert result["cloud_behind"] is False and result["refusal"] == MIGRATION_REFUSAL


def test_a_commit_that_is_not_a_full_id_fails_in_one_line(run_module, tmp_path, follows):
    tree, a, _ = follows
    result = run_module(module, args(tmp_path, tree, commit=a[:12]))
    assert result["failed"] is True
    assert result["msg"] == f"commit is not a full commit id (40 hexadecimal digits): {a[:12]!r}"


def test_a_service_version_refusal_comes_before_the_missing_commit(run_module, tmp_path, follows):
    tree, a, b = follows
    git(tree, "checkout", "-q", a)
    sv = {"path": FILE, "pattern": PATTERN}
    extra = dict(service_version=sv, service="nova-compute", what="the change's nova")
    result = run_module(module, args(tmp_path, tree, ref=b, minimum="74", **extra))
    assert result["refusal"] == skew_line(74, "the change's nova", 73)


def test_check_mode_gives_the_same_answer_and_records_nothing(run_module, tmp_path, repo):
    write(repo, {NEW: "x = 1\n"})
    result = run_module(module, args(tmp_path, repo), check_mode=True)
    assert result["changed"] is False and result["refusal"] == MIGRATION_REFUSAL
    assert phase_events(tmp_path / "ws") == []


def test_a_comparison_that_cannot_be_made_fails_without_the_end(run_module, tmp_path, repo):
    database = dict(DATABASE, migrations=["glance/no/such/dir"])
    result = run_module(module, args(tmp_path, repo, database=database))
    assert result["failed"] is True and "are the paths right" in result["msg"]
    assert phase_events(tmp_path / "ws") == [("guard", "start")]


def test_credentials_without_the_release_are_refused_with_the_phase_started(
    run_module, tmp_path, repo
):
    result = run_module(module, args(tmp_path, repo, version=""))
    assert result.get("failed") is not True
    assert result["refusal"].startswith(
        "the target cloud's credentials do not say which glance release it runs (versions.glance)"
    )
    assert phase_events(tmp_path / "ws") == [("guard", "start")]


def test_a_minimum_that_is_not_a_number_fails_once_it_is_used(run_module, tmp_path, repo):
    spec = {"path": FILE, "pattern": "x"}
    result = run_module(module, args(tmp_path, repo, minimum="seventy", service_version=spec))
    assert result["failed"] is True and "minimum is not a service version" in result["msg"]
    assert phase_events(tmp_path / "ws") == [("guard", "start")]
    # Without a service version to compare, the minimum is not read.
    assert run_module(module, args(tmp_path, repo, minimum="seventy"))["refusal"] == ""


def test_a_service_version_without_a_tree_fails_before_the_phase(run_module, tmp_path, repo):
    extra = {"src": None, "database": None, "service_version": {"path": FILE, "pattern": "x"}}
    given = {k: v for k, v in args(tmp_path, repo, **extra).items() if v is not None}
    result = run_module(module, given)
    assert result["failed"] is True and "root" in result["msg"], result
    assert phase_events(tmp_path / "ws") == []


def test_a_database_needs_the_tree_and_the_release(run_module, tmp_path, repo):
    given = args(tmp_path, repo)
    del given["package"]
    result = run_module(module, given)
    assert result["failed"] is True and "package" in result["msg"]


# ------------------------------------------------------------------ the role's tasks

ROLE = paths.ROLES / "shard_guard"
# The actions that run on the executor, with no process on the node.
EXECUTOR_SIDE = {
    "ansible.builtin.assert",
    "ansible.builtin.debug",
    "ansible.builtin.fail",
    "zuul_return",
}
# The test's play around the role's tasks.
THE_PLAY = {"gather_facts", "ansible.builtin.include_tasks"}


def guard_play(tmp_path):
    """The shard_guard role's main tasks, with its vars, on every host of the inventory."""
    return {
        "hosts": "all",
        "gather_facts": True,
        "gather_subset": ["!all", "!min", "user"],
        "vars_files": [str(ROLE / "vars" / "main.yaml")],
        "vars": {
            "shard_cache_dir": str(tmp_path / "cache"),
            "_shard_openstack_python": sys.executable,
            "zuul": {"executor": {"result_data_file": "{{ result_file }}"}},
        },
        "tasks": [{"ansible.builtin.include_tasks": str(ROLE / "tasks" / "main.yaml")}],
    }


def _profile(name):
    """The parts of a real profile the guard reads (the rest holds Jinja of other roles)."""
    profile = yaml.safe_load((paths.ROLES / f"shard/profiles/{name}/profile.yaml").read_text())
    keys = ("name", "package", "database", "service_version")
    return dict({k: profile[k] for k in keys if k in profile}, service=profile["service"])


def _nova_tree(root, version, migration=None):
    """nova with release 32.0.0 tagged and a service version of 74; the working tree
    (the change) with service version `version`, and a new migration when given."""
    root.mkdir()
    git(root, "init", "-q", "-b", "master")
    write(root, {FILE: "SERVICE_VERSION = 74\n", "nova/db/main/migrations/versions/a.py": "x\n"})
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "nova 32.0.0")
    git(root, "tag", "32.0.0")
    write(root, {FILE: f"SERVICE_VERSION = {version}\n"})
    if migration:
        write(root, {migration: "def upgrade():\n    pass\n"})
    return str(root)


def _results(proc, host):
    """[(task name, action, what happened)] of one host, in order."""
    out = []
    for task in json.loads(proc.stdout)["plays"][0]["tasks"]:
        result = task["hosts"].get(host)
        if result is None:
            continue
        state = "skipped" if result.get("skipped") else "failed" if result.get("failed") else "ok"
        out.append((task["task"]["name"], result.get("action"), state))
    return out


def test_the_role_runs_one_module_and_stops_a_refused_change(tmp_path):
    """main.yaml with the real profiles' data and the role's vars: a change the cloud can
    take goes through with one module process (the rest on the executor) and the
    guard's start and end recorded; a new migration, a service too old, and credentials
    without the release are each refused in one line, not retried, the phase left
    unfinished; a profile without a database only records the phase."""
    nova, glance = _profile("nova-compute"), _profile("glance-api")
    nodb = {k: v for k, v in glance.items() if k != "database"}
    migration = "nova/db/main/migrations/versions/0123456789ab_new.py"
    plain = tmp_path / "plain"
    plain.mkdir()

    def host(name, profile, src, versions, minimum=None):
        cloud = {"versions": versions}
        if minimum:
            cloud["minimum_service_versions"] = {"nova-compute": minimum}
        return dict(
            _shard_profile=profile,
            _shard_cloud=cloud,
            _shard_project={"src_dir": src},
            _shard_workspace=str(tmp_path / name / "ws"),
            result_file=str(tmp_path / f"{name}.json"),
        )

    hosts = {
        "clean": host("clean", nova, _nova_tree(tmp_path / "n1", 74), {"nova": "32.0.0"}, 74),
        "migration": host(
            "migration", nova, _nova_tree(tmp_path / "n2", 74, migration), {"nova": "32.0.0"}, 74
        ),
        "older": host("older", nova, _nova_tree(tmp_path / "n3", 73), {"nova": "32.0.0"}, 74),
        "nodb": host("nodb", nodb, str(plain), {}),
        "unstated": host("unstated", glance, str(plain), {}),
    }
    proc = playbook(tmp_path, guard_play(tmp_path), **hosts)
    assert proc.stdout, proc.stderr
    stats = json.loads(proc.stdout)["stats"]
    assert {name: stats[name]["failures"] for name in hosts} == {
        "clean": 0,
        "migration": 1,
        "older": 1,
        "nodb": 0,
        "unstated": 1,
    }, proc.stdout

    def failed(name):
        return [(t, a) for t, a, state in _results(proc, name) if state == "failed"]

    stop = ("Stop before anything touches the cloud", "ansible.builtin.fail")
    assert failed("migration") == failed("older") == failed("unstated") == [stop]

    # One module process on the node, whatever the guard decides.
    for name in hosts:
        ran = [(t, a) for t, a, state in _results(proc, name) if state != "skipped"]
        on_node = [a for _, a in ran if a not in EXECUTOR_SIDE | THE_PLAY]
        assert on_node == ["shard_guard"], (name, ran)

    def events(name):
        return phase_events(tmp_path / name / "ws")

    def retry(name):
        path = tmp_path / f"{name}.json"
        return json.loads(path.read_text())["data"] if path.exists() else None

    for name in ("clean", "nodb"):
        assert events(name) == [("guard", "start"), ("guard", "end")], name
        assert retry(name) is None
    for name in ("migration", "older"):
        assert events(name) == [("guard", "start")], name
        assert retry(name) == {"zuul": {"retry": False}}, name
    assert events("unstated") == [("guard", "start")]
    assert retry("unstated") == {"zuul": {"retry": False}}

    output = proc.stdout
    instead = " ".join(nova["database"]["instead"].split())
    assert (
        f"this change alters the nova database schema; a shard cannot test it: {instead}"
    ) in output
    assert (
        f"the nova migrations differ from those of nova 32.0.0 (tag 32.0.0): added {migration}"
    ) in output
    assert skew_line(74, "the change's nova", 73) in output
    assert "the target cloud's credentials do not say which glance release it runs" in output


def test_skew_yaml_refuses_the_upgrade_s_from(tmp_path):
    """skew.yaml, as the upgrade's pre-run includes it: the "from" virtualenv read by the
    nova-compute profile's rule; older than the minimum or newer than the maximum:
    refused in one line and not retried; the minimum itself, the maximum itself, or no
    version found: no refusal."""
    profile = _profile("nova-compute")

    def venv(name, version):
        root = tmp_path / name
        write(root / "lib/python3.12/site-packages", {FILE: f"SERVICE_VERSION = {version}\n"})
        return str(root)

    play = {
        "hosts": "all",
        "gather_facts": False,
        "vars": {
            "_shard_profile": profile,
            "_shard_guard_minimum": "{{ minimum }}",
            "_shard_guard_maximum": "{{ maximum }}",
            "zuul": {"executor": {"result_data_file": "{{ result_file }}"}},
        },
        "tasks": [
            {
                "ansible.builtin.include_tasks": str(ROLE / "tasks" / "skew.yaml"),
                "vars": {
                    "shard_guard_skew_root": "{{ root }}",
                    "shard_guard_skew_what": 'the upgrade\'s "from" (nova 31.0.0)',
                },
            }
        ],
    }
    hosts = {
        name: dict(
            root=root, minimum="74", maximum=maximum, result_file=str(tmp_path / f"{name}.json")
        )
        for name, root, maximum in (
            ("older", venv("older", 73), ""),
            ("same", venv("same", 74), ""),
            ("newer", venv("newer", 76), "75"),
            ("top", venv("top", 75), "75"),
            ("unknown", str(tmp_path / "no-venv"), "75"),
        )
    }
    # Only a maximum stated: checked all the same.
    hosts["newer-only"] = dict(hosts["newer"], minimum="", result_file=str(tmp_path / "n.json"))
    proc = playbook(tmp_path, play, **hosts)
    stats = json.loads(proc.stdout)["stats"]
    assert {name: stats[name]["failures"] for name in hosts} == {
        "older": 1,
        "same": 0,
        "newer": 1,
        "top": 0,
        "unknown": 0,
        "newer-only": 1,
    }
    what = 'the upgrade\'s \\"from\\" (nova 31.0.0)'
    assert skew_line(74, what, 73) in proc.stdout
    assert newer_line(75, what, 76, "nova") in proc.stdout
    for name in ("older", "newer"):
        data = json.loads((tmp_path / f"{name}.json").read_text())["data"]
        assert data == {"zuul": {"retry": False}}, name
    assert not (tmp_path / "same.json").exists() and not (tmp_path / "top.json").exists()
    for name in hosts:
        ran = [a for _, a, state in _results(proc, name) if state != "skipped"]
        assert [a for a in ran if a not in EXECUTOR_SIDE | THE_PLAY] == ["shard_guard"], name


def test_the_role_follows_the_cloud_s_commit_and_its_maximum(tmp_path):
    """main.yaml with the nova-compute profile and the role's vars, against a cloud that
    follows master (commits.nova in the credentials): a change on top of the cloud's
    commit goes through; one based on an older commit is refused for lacking it; one
    adding a migration is refused, the line before it naming the commit; one whose
    service version is above maximum_service_versions is refused, naming the cloud it
    needs. Each refusal in one line, not retried."""
    nova = _profile("nova-compute")
    migration = "nova/db/main/migrations/versions/0123456789ab_new.py"

    def master(name, version=75):
        """nova: A (32.0.0, tagged), B (a migration of master); the change on top of B."""
        root = tmp_path / name
        _nova_tree(root, 74)
        a = git(root, "rev-parse", "HEAD")
        write(root, {"nova/db/main/migrations/versions/b.py": "x\n"})
        git(root, "add", "-A")
        git(root, "commit", "-qm", "a migration of master")
        write(root, {FILE: f"SERVICE_VERSION = {version}\n"})
        return root, a, git(root, "rev-parse", "HEAD")

    def host(name, src, commit, maximum="75"):
        cloud = {
            "versions": {"nova": "32.0.0"},
            "commits": {"nova": commit},
            "minimum_service_versions": {"nova-compute": 74},
            "maximum_service_versions": {"nova-compute": maximum},
        }
        return dict(
            _shard_profile=nova,
            _shard_cloud=cloud,
            _shard_project={"src_dir": str(src)},
            _shard_workspace=str(tmp_path / name / "ws"),
            result_file=str(tmp_path / f"{name}.json"),
        )

    follows, _, b1 = master("n1")
    behind, a2, b2 = master("n2")
    git(behind, "stash", "-q")
    git(behind, "checkout", "-q", a2)
    own, _, b3 = master("n3")
    write(own, {migration: "def upgrade():\n    pass\n"})
    newer, _, b4 = master("n4", version=77)
    hosts = {
        "follows": host("follows", follows, b1),
        "behind": host("behind", behind, b2),
        "own": host("own", own, b3),
        "newer": host("newer", newer, b4),
    }
    proc = playbook(tmp_path, guard_play(tmp_path), **hosts)
    assert proc.stdout, proc.stderr
    stats = json.loads(proc.stdout)["stats"]
    assert {name: stats[name]["failures"] for name in hosts} == {
        "follows": 0,
        "behind": 1,
        "own": 1,
        "newer": 1,
    }, proc.stdout
    assert phase_events(tmp_path / "follows" / "ws") == [("guard", "start"), ("guard", "end")]
    assert not (tmp_path / "follows.json").exists()
    for name in ("behind", "own", "newer"):
        data = json.loads((tmp_path / f"{name}.json").read_text())["data"]
        assert data == {"zuul": {"retry": False}}, name
    output = proc.stdout
    assert lacks_line("nova", b2) in output
    assert (
        f"the nova migrations differ from those of nova 32.0.0 at commit {b3}, which the cloud "
        f"runs: added {migration}"
    ) in output
    assert newer_line(75, "the change's nova", 77, "nova") in output
