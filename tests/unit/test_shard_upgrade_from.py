"""shard_upgrade_from: choosing the "from" of an upgrade in real git repositories."""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import shard_upgrade_from as module
from unit_helpers import GIT_ENV

NOT_A_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def git(repo, *args):
    out = subprocess.run(
        ["git", "-C", str(repo), "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
        env=GIT_ENV,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


class Repo:
    """A git repository: commit(tag=...) adds a commit, tagged if asked."""

    def __init__(self, path):
        self.path = path
        path.mkdir()
        git(path, "init", "-q", "-b", "master")
        self.count = 0

    def commit(self, tag=None):
        self.count += 1
        (self.path / "version.txt").write_text(f"{self.count}\n")
        git(self.path, "add", "version.txt")
        git(self.path, "commit", "-q", "-m", f"change {self.count}")
        if tag:
            git(self.path, "tag", "-a", tag, "-m", tag)
        return git(self.path, "rev-parse", "HEAD")

    def __str__(self):
        return str(self.path)


@pytest.fixture
def repo(tmp_path):
    """nova with releases 32.0.0, 33.0.1, 33.0.2, 33.0.10, 34.0.0 and a change after 34.0.0."""
    nova = Repo(tmp_path / "nova")
    nova.tagged = {}
    for tag in ("32.0.0", "33.0.1", "33.0.2", "33.0.10", "34.0.0"):
        nova.tagged[tag] = nova.commit(tag=tag)
    nova.head = nova.commit()
    return nova


@pytest.fixture
def index(monkeypatch):
    """The package index: index.versions is what it lists; index.calls what was asked."""

    class Index:
        versions = []
        calls = []

    def index_versions(python, package):
        Index.calls.append((python, package))
        return list(Index.versions)

    monkeypatch.setattr(module, "index_versions", index_versions)
    return Index


def args(repo, **kwargs):
    base = dict(src=str(repo), package="nova")
    base.update(kwargs)
    return base


# -- previous-release ---------------------------------------------------------


def test_previous_release_from_the_tags(repo, index, run_module):
    result = run_module(module, args(repo))

    assert result["changed"] is False
    assert result["kind"] == "release"
    assert result["version"] == "33.0.10"  # numeric order, not 33.0.2
    assert result["ref"] is None
    assert result["candidate"] == {"version": "34.0.0", "commit": repo.head}
    assert result["reason"] == (
        "previous release of nova: 33.0.10, the newest tag of the series before the "
        f"candidate's 34.0.0 (git tags of {repo})"
    )
    assert index.calls == []


def test_previous_release_from_the_index_when_the_tags_lack_the_series(tmp_path, index, run_module):
    repo = Repo(tmp_path / "shallow")  # as a shallow clone: only the newest tags
    repo.commit(tag="34.0.0")
    head = repo.commit(tag="34.0.1")
    index.versions = ["35.0.0", "34.0.1", "34.0.0", "33.1.0", "33.0.2", "32.0.0"]

    result = run_module(module, args(repo, python="/opt/venv/bin/python"))

    assert result["changed"] is False
    assert (result["kind"], result["version"], result["ref"]) == ("release", "33.1.0", None)
    assert result["candidate"] == {"version": "34.0.1", "commit": head}
    assert result["reason"] == (
        "previous release of nova: 33.1.0, the newest release of the series before the "
        "candidate's 34.0.1 (package index; the repository has no tags of earlier series)"
    )
    assert index.calls == [("/opt/venv/bin/python", "nova")]


def test_no_earlier_release_anywhere(tmp_path, index, run_module):
    repo = Repo(tmp_path / "new")
    repo.commit(tag="1.0.0")
    index.versions = ["1.0.0"]

    result = run_module(module, args(repo))

    assert result["failed"] is True
    assert result["msg"] == (
        "cannot find a release of nova before series 1 in the repository's tags "
        "or on the package index"
    )


def test_a_candidate_without_a_release_tag(tmp_path, index, run_module):
    repo = Repo(tmp_path / "untagged")
    repo.commit()

    result = run_module(module, args(repo))

    assert result["failed"] is True
    assert result["msg"] == (
        f"cannot find the previous release: {repo} has no release tag to tell the "
        "candidate's series (use from: <version>)"
    )
    assert index.calls == []


def test_missing_source_tree(tmp_path, run_module):
    result = run_module(module, args(tmp_path / "nowhere"))

    assert result["failed"] is True
    assert result["msg"] == f"missing source tree: {tmp_path / 'nowhere'} is not a git repository"


def test_index_versions_reads_pips_answer(tmp_path):
    # An interpreter whose "pip index versions" answers as pip does.
    python = tmp_path / "python"
    python.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "assert sys.argv[1:] == ['-m', 'pip', 'index', 'versions', 'nova',"
        " '--disable-pip-version-check'], sys.argv\n"
        "print('nova (34.0.0)')\n"
        "print('Available versions: 34.0.0, 34.0.0rc1, 33.0.2, 2014.2.4')\n"
    )
    python.chmod(0o755)

    assert module.index_versions(str(python), "nova") == ["34.0.0", "33.0.2", "2014.2.4"]


def test_index_versions_without_an_answer(tmp_path):
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\necho 'ERROR: No matching distribution found' >&2\nexit 1\n")
    python.chmod(0o755)

    assert module.index_versions(str(python), "nova") == []


# -- last-good ----------------------------------------------------------------


def write_store(path, **record):
    path.write_text(json.dumps(record))
    return str(path)


def test_last_good_commit_in_the_repository_is_a_ref(repo, tmp_path, index, run_module):
    commit = repo.tagged["34.0.0"]
    store = write_store(
        tmp_path / "last-good.json",
        commit=commit,
        version="34.0.0",
        build="b1234",
        recorded="2026-11-25T13:20:01Z",
    )

    result = run_module(module, args(repo, source="last-good", store=store))

    assert result["changed"] is False
    assert (result["kind"], result["version"], result["ref"]) == ("ref", None, commit)
    assert result["reason"] == (
        f"last good: commit {commit[:12]} recorded by build b1234 at 2026-11-25T13:20:01Z "
        f"in {store}"
    )
    assert index.calls == []


def test_last_good_release_when_its_commit_is_unknown_here(repo, tmp_path, index, run_module):
    store = write_store(
        tmp_path / "last-good.json",
        commit=NOT_A_COMMIT,
        version="33.0.2",
        build="b1",
        recorded="2026-11-25T13:20:01Z",
    )

    result = run_module(module, args(repo, source="last-good", store=store))

    assert (result["kind"], result["version"], result["ref"]) == ("release", "33.0.2", None)
    assert result["reason"] == (
        f"last good: release 33.0.2 recorded at 2026-11-25T13:20:01Z in {store} "
        "(its commit is not in the prepared repository)"
    )


def test_last_good_with_only_a_version(repo, tmp_path, index, run_module):
    store = write_store(tmp_path / "last-good.json", version="33.0.1", recorded="t")

    result = run_module(module, args(repo, source="last-good", store=store))

    assert (result["kind"], result["version"]) == ("release", "33.0.1")


def test_last_good_commit_unknown_and_no_version(repo, tmp_path, index, run_module):
    store = write_store(tmp_path / "last-good.json", commit=NOT_A_COMMIT, version=None)

    result = run_module(module, args(repo, source="last-good", store=store))

    assert result["failed"] is True
    assert result["msg"] == (
        f"the last good commit {NOT_A_COMMIT} recorded in {store} is not in {repo} "
        "and the record has no version"
    )


@pytest.mark.parametrize("content", [None, "", "  \n", "{}", '{"commit": null, "version": null}'])
def test_last_good_falls_back_when_nothing_is_recorded(repo, tmp_path, index, run_module, content):
    store = tmp_path / "store" / "last-good.json"
    if content is not None:
        store.parent.mkdir()
        store.write_text(content)

    result = run_module(module, args(repo, source="last-good", store=str(store)))

    assert result["changed"] is False
    assert (result["kind"], result["version"], result["ref"]) == ("release", "33.0.10", None)
    assert result["reason"] == (
        f"no last good recorded in {store}: falling back to the previous release of nova: "
        f"33.0.10, the newest tag of the series before the candidate's 34.0.0 "
        f"(git tags of {repo})"
    )


def test_last_good_falls_back_to_the_index(tmp_path, index, run_module):
    repo = Repo(tmp_path / "shallow")
    repo.commit(tag="34.0.0")
    index.versions = ["33.0.2"]

    result = run_module(
        module, args(repo, source="last-good", store=str(tmp_path / "missing.json"))
    )

    assert result["version"] == "33.0.2"
    assert result["reason"].startswith(
        f"no last good recorded in {tmp_path / 'missing.json'}: falling back to the "
        "previous release of nova: 33.0.2, the newest release of the series before"
    )
    assert index.calls == [("python3", "nova")]


def test_last_good_needs_a_store(repo, run_module):
    result = run_module(module, args(repo, source="last-good"))

    assert result["failed"] is True
    assert result["msg"] == (
        "from: last-good needs Zuul's API (shard_upgrade_zuul_api) or a store "
        "(shard_upgrade_last_good_store)"
    )


def test_an_unreadable_store_fails_clearly(repo, tmp_path, run_module):
    store = tmp_path / "last-good.json"
    store.write_text("{not json")

    result = run_module(module, args(repo, source="last-good", store=str(store)))

    assert result["failed"] is True
    assert result["msg"].startswith(f"cannot read the last-good store {store}: ")


@pytest.fixture
def http_store():
    """An http server: http_store.records maps a path to the JSON it serves (else 404)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            server.requests.append(self.path)
            status, body = server.records.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.records = {}
    server.requests = []
    server.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_last_good_from_an_http_store(repo, http_store, index, run_module):
    commit = repo.tagged["33.0.2"]
    record = dict(commit=commit, version="33.0.2", build="b9", recorded="2026-11-25T13:20:01Z")
    http_store.records["/artifacts/last-good.json"] = (200, json.dumps(record).encode())
    store = http_store.url + "/artifacts/last-good.json"

    result = run_module(module, args(repo, source="last-good", store=store))

    assert (result["kind"], result["ref"]) == ("ref", commit)
    assert http_store.requests == ["/artifacts/last-good.json"]


def test_an_http_store_without_a_record_falls_back(repo, http_store, index, run_module):
    store = http_store.url + "/artifacts/last-good.json"

    result = run_module(module, args(repo, source="last-good", store=store))

    assert result["version"] == "33.0.10"
    assert result["reason"].startswith(f"no last good recorded in {store}: falling back")


def test_an_http_store_answering_an_error_fails_clearly(repo, http_store, run_module):
    http_store.records["/last-good.json"] = (500, b"oops")
    store = http_store.url + "/last-good.json"

    result = run_module(module, args(repo, source="last-good", store=store))

    assert result["failed"] is True
    assert result["msg"] == f"cannot read the last-good store {store}: HTTP 500"


# -- explicit -------------------------------------------------------------------


def test_an_explicit_release(repo, index, run_module):
    result = run_module(module, args(repo, source="33.0.1"))

    assert result["changed"] is False
    assert (result["kind"], result["version"], result["ref"]) == ("release", "33.0.1", None)
    assert result["reason"] == "explicit upgrade source 33.0.1"
    assert index.calls == []


def test_an_explicit_release_need_not_be_tagged_here(repo, run_module):
    result = run_module(module, args(repo, source="31.2.0"))

    assert (result["kind"], result["version"]) == ("release", "31.2.0")


def test_an_explicit_branch_is_its_commit(repo, run_module):
    git(repo.path, "branch", "stable/2025.2", repo.tagged["33.0.2"])

    result = run_module(module, args(repo, source="stable/2025.2"))

    assert (result["kind"], result["version"]) == ("ref", None)
    assert result["ref"] == repo.tagged["33.0.2"]
    assert result["reason"] == "explicit upgrade source stable/2025.2"


def test_an_explicit_commit_is_resolved_in_full(repo, run_module):
    commit = repo.tagged["33.0.1"]

    result = run_module(module, args(repo, source=commit[:10]))

    assert (result["kind"], result["ref"]) == ("ref", commit)


def test_an_unknown_ref_fails_clearly(repo, run_module):
    result = run_module(module, args(repo, source="no-such-branch"))

    assert result["failed"] is True
    assert result["msg"] == (
        f"unknown upgrade source 'no-such-branch': neither a release version nor a git ref "
        f"of {repo}"
    )


def test_check_mode_resolves_all_the_same(repo, index, run_module):
    result = run_module(module, args(repo), check_mode=True)

    assert result["changed"] is False
    assert result["version"] == "33.0.10"


# -- recorded ---------------------------------------------------------------------


def read(path):
    with open(path) as f:
        return json.load(f)


def test_recording_writes_the_candidate(repo, tmp_path, run_module):
    store = tmp_path / "state" / "last-good.json"  # its directory does not exist yet

    result = run_module(module, args(repo, state="recorded", store=str(store), build="build-42"))

    assert result["changed"] is True
    assert result["candidate"] == {"version": "34.0.0", "commit": repo.head}
    assert result["reason"] == f"recorded {repo.head[:12]} as the last good in {store}"
    record = read(store)
    assert {k: record[k] for k in ("commit", "version", "build")} == {
        "commit": repo.head,
        "version": "34.0.0",
        "build": "build-42",
    }
    assert record["recorded"].endswith("Z")
    assert os.listdir(store.parent) == ["last-good.json"]  # no temporary file left


def test_recording_the_same_commit_again_is_a_no_op(repo, tmp_path, run_module):
    store = tmp_path / "last-good.json"
    run_module(module, args(repo, state="recorded", store=str(store), build="first"))
    before = store.read_text()

    again = run_module(module, args(repo, state="recorded", store=str(store), build="second"))

    assert again["changed"] is False
    assert store.read_text() == before


def test_recording_a_new_commit_replaces_the_record(repo, tmp_path, run_module):
    store = tmp_path / "last-good.json"
    run_module(module, args(repo, state="recorded", store=str(store)))
    head = repo.commit()

    result = run_module(module, args(repo, state="recorded", store=str(store)))

    assert result["changed"] is True
    assert read(store)["commit"] == head


def test_recording_in_check_mode_writes_nothing(repo, tmp_path, run_module):
    store = tmp_path / "last-good.json"

    result = run_module(module, args(repo, state="recorded", store=str(store)), check_mode=True)

    assert result["changed"] is True
    assert not store.exists()


def test_an_http_store_is_read_only(repo, run_module):
    store = "https://logs.example.org/last-good.json"

    result = run_module(module, args(repo, state="recorded", store=store))

    assert result["changed"] is False
    assert result["reason"] == (
        f"last-good store {store} is read-only here (recorded as an artifact only)"
    )
    assert result["artifact"]["metadata"]["commit"] == repo.head


def test_recording_without_a_store_does_nothing(repo, run_module):
    result = run_module(module, args(repo, state="recorded"))

    assert result["changed"] is False
    assert result["reason"] == "recorded as an artifact only (no last-good store set)"
    artifact = result["artifact"]
    assert (artifact["name"], artifact["url"]) == ("shard-upgrade-last-good", "shard/upgrade.json")
    assert {k: artifact["metadata"][k] for k in ("commit", "version")} == {
        "commit": repo.head,
        "version": "34.0.0",
    }


def test_what_is_recorded_is_the_next_last_good(repo, tmp_path, run_module):
    store = str(tmp_path / "last-good.json")
    run_module(module, args(repo, state="recorded", store=store, build="b7"))

    result = run_module(module, args(repo, source="last-good", store=store))

    assert (result["kind"], result["ref"]) == ("ref", repo.head)
    assert result["reason"].startswith(f"last good: commit {repo.head[:12]} recorded by build b7")


# -- last-good through Zuul's builds API -----------------------------------------


ZUUL = dict(
    job="shard-nova-compute-upgrade", project="openstack/nova", branch="master", pipeline="periodic"
)


def builds_query(limit=20):
    return (
        "/api/tenant/t/builds?job_name=shard-nova-compute-upgrade&project=openstack%2Fnova"
        f"&branch=master&pipeline=periodic&result=SUCCESS&complete=true&limit={limit}"
    )


def build(uuid, record=None, name="shard-upgrade-last-good"):
    artifacts = [{"name": "logs", "url": "https://logs.example.org/x/"}]
    if record is not None:
        artifacts.append(
            {"name": name, "url": "https://logs/shard/upgrade.json", "metadata": record}
        )
    return {"uuid": uuid, "job_name": ZUUL["job"], "result": "SUCCESS", "artifacts": artifacts}


def test_last_good_from_zuul_s_newest_build_with_the_record(repo, http_store, index, run_module):
    # Newest first, as Zuul answers: the newest build returned no record (an
    # older job definition), a wrongly named artifact is not the record.
    old = repo.tagged["33.0.1"]
    builds = [
        build("b3"),
        build("b2", {"commit": "ffff"}, name="something-else"),
        build("b1", {"commit": repo.tagged["33.0.2"], "version": "33.0.2", "build": "b1"}),
        build("b0", {"commit": old, "version": "33.0.1", "build": "b0"}),
    ]
    http_store.records[builds_query()] = (200, json.dumps(builds).encode())
    api = http_store.url + "/api/tenant/t"

    result = run_module(module, args(repo, source="last-good", zuul_api=api + "/", **ZUUL))

    assert (result["kind"], result["ref"]) == ("ref", repo.tagged["33.0.2"])
    assert result["reason"].startswith(
        f"last good: commit {repo.tagged['33.0.2'][:12]} recorded by build b1 at None in "
        f"build b1 of shard-nova-compute-upgrade ({api}/)"
    )
    assert http_store.requests == [builds_query()]


def test_last_good_from_zuul_takes_precedence_over_the_store(repo, http_store, index, run_module):
    http_store.records[builds_query()] = (200, b"[]")
    api = http_store.url + "/api/tenant/t"

    result = run_module(
        module, args(repo, source="last-good", zuul_api=api, store="/nonexistent/x", **ZUUL)
    )

    assert result["version"] == "33.0.10"
    assert result["reason"].startswith(
        f"no last good recorded in the successful builds of shard-nova-compute-upgrade ({api}): "
        "falling back to the previous release"
    )


def test_zuul_s_api_failing_fails_clearly(repo, http_store, run_module):
    http_store.records[builds_query()] = (503, b"down")
    api = http_store.url + "/api/tenant/t"

    result = run_module(module, args(repo, source="last-good", zuul_api=api, **ZUUL))

    assert result["failed"] is True
    url = http_store.url + builds_query()
    assert result["msg"] == f"cannot read the last good builds from {url}: HTTP 503"


def test_zuul_s_api_needs_the_job_project_and_branch(repo, run_module):
    result = run_module(
        module, args(repo, source="last-good", zuul_api="https://zuul.example.org/api/tenant/t")
    )

    assert result["failed"] is True
    assert result["msg"] == (
        "zuul_api needs job, project, branch, pipeline to find the last good build"
    )


def test_what_is_returned_as_an_artifact_is_the_next_last_good(repo, http_store, index, run_module):
    recorded = run_module(module, args(repo, state="recorded", build="b7"))
    builds = [{"uuid": "b7", "artifacts": [recorded["artifact"]]}]
    http_store.records[builds_query()] = (200, json.dumps(builds).encode())

    result = run_module(
        module,
        args(repo, source="last-good", zuul_api=http_store.url + "/api/tenant/t", **ZUUL),
    )

    assert (result["kind"], result["ref"]) == ("ref", repo.head)


def test_a_zuul_record_this_run_cannot_use_is_passed_over(repo, http_store, index, run_module):
    # The newest record's commit is nowhere here and it names no release (a
    # speculative merge): the one before it is taken, not a failure.
    builds = [
        build("b2", {"commit": NOT_A_COMMIT, "version": None, "build": "b2"}),
        build("b1", {"commit": repo.tagged["33.0.2"], "version": "33.0.2", "build": "b1"}),
    ]
    http_store.records[builds_query()] = (200, json.dumps(builds).encode())
    api = http_store.url + "/api/tenant/t"

    result = run_module(module, args(repo, source="last-good", zuul_api=api, **ZUUL))

    assert (result["kind"], result["ref"]) == ("ref", repo.tagged["33.0.2"])
    assert "build b1 of" in result["reason"]
