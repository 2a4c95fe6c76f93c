"""shard_canaries: the rule (module_utils/shard_canaries.py) and the module's record and check."""

import json
import re
from pathlib import Path

import pytest
import shard_canaries as module
import yaml
from ansible.module_utils import shard_canaries as rule
from ansible.module_utils import shard_image_stores as stores_rule
from ansible.module_utils import shard_openstack
from test_shard_image_info import FakeGlance
from unit_helpers import jinja

from shard_jobs import paths

OWN = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"
_WHAT = "images the job did not create: "


def line(method, path, status=204):
    return (
        f'127.0.0.1 - - [03/Dec/2026:02:30:00 +0000] "{method} {path} HTTP/1.1" {status} 0 '
        '"-" "openstacksdk/4.0.0"\n'
    )


# -- the rule ------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("DELETE", f"/v2/images/{OTHER}"),
        ("PATCH", f"/v2/images/{OTHER}"),
        ("PUT", f"/v2/images/{OTHER}/file"),
        ("PUT", f"/v2/images/{OTHER}/stage"),
        ("POST", f"/v2/images/{OTHER}/import"),
        ("PUT", f"/v2/images/{OTHER}/tags/x"),
        ("DELETE", f"/v2/images/{OTHER}/tags/x"),
        ("POST", f"/v2/images/{OTHER}/members"),
        ("PUT", f"/v2/images/{OTHER}/members/p"),
        ("POST", f"/v2/images/{OTHER}/actions/deactivate"),
        ("DELETE", f"/v2/stores/file/{OTHER}"),
        ("PUT", f"/v2/cache/{OTHER}"),
        ("DELETE", f"/v2/images/{OTHER}?x=1"),
    ],
)
def test_a_write_to_another_image_is_found(method, path):
    found = rule.foreign_writes([line(method, path)], [OWN])
    assert list(found) == [OTHER]
    assert rule.foreign_writes_error(found).startswith(
        f"the shard served writes to {_WHAT}{OTHER} ("
    )


@pytest.mark.parametrize(
    "text",
    [
        line("GET", f"/v2/images/{OTHER}/file", 200),
        line("HEAD", f"/v2/images/{OTHER}", 200),
        line("DELETE", f"/v2/images/{OWN}"),
        line("DELETE", f"/v2/images/{OWN.upper()}"),
        line("POST", "/v2/images", 201),
        line("GET", "/v2/images?name=x", 200),
        # glance's own log lines are not access lines.
        f"2026-12-03 02:30:00.000 1 INFO glance.api DELETE /v2/images/{OTHER}\n",
        f'"DELETE /v2/images/{OTHER} HTTP/1.1" 204\n',
    ],
)
def test_reads_own_images_and_other_lines_are_not(text):
    assert rule.foreign_writes([text], [OWN]) == {}
    assert rule.foreign_writes_error({}) is None


def test_a_canary_changed_or_deleted_is_named():
    before = {"id": OTHER, "name": "canary", "checksum": "a", "updated_at": "t1", "p": "1"}
    same = dict(before, self=f"/v2/images/{OTHER}")
    assert rule.canary_error({OTHER: before}, {OTHER: rule.snapshot(same)}, "now") is None
    changed = dict(before, updated_at="t2", p="2")
    msg = rule.canary_error({OTHER: before}, {OTHER: changed}, "after teardown")
    assert msg == f"canary images changed after teardown: canary ({OTHER}): p, updated_at"
    msg = rule.canary_error({OTHER: before}, {OTHER: None}, "after the exercise")
    assert msg == f"canary images changed after the exercise: canary ({OTHER}): deleted"
    added = dict(before, shard_label="shard-000000000000")
    assert "shard_label" in rule.canary_error({OTHER: before}, {OTHER: added}, "now")


# -- the module ---------------------------------------------------------------


class Glance(FakeGlance):
    current_project_id = "project-own"

    def add(self, name, owner="project-own", **kwargs):
        image_id = super().add(name, **kwargs)
        self.images[image_id]["owner"] = owner
        return image_id

    def delete(self, image_id):
        del self.images[image_id]


@pytest.fixture
def glance(monkeypatch):
    fake = Glance()
    monkeypatch.setattr(shard_openstack.openstack, "connect", fake.connect)
    return fake


def test_record_then_check_unchanged(run_module, glance, tmp_path):
    canary = glance.add("canary", owner="project-other")
    by_id = glance.add("by-id")
    snap = tmp_path / "canaries.json"
    args = {"command": "record", "images": ["canary", by_id], "snapshot": str(snap)}
    result = run_module(module, args)
    assert result["changed"] is True
    assert {c["id"] for c in result["canaries"]} == {canary, by_id}
    assert oct(snap.stat().st_mode & 0o777) == "0o600"
    assert run_module(module, args)["changed"] is False
    result = run_module(module, {"command": "check", "snapshot": str(snap)})
    assert "failed" not in result and len(result["canaries"]) == 2


def test_record_in_check_mode_writes_nothing(run_module, glance, tmp_path):
    glance.add("canary")
    snap = tmp_path / "canaries.json"
    args = {"command": "record", "images": ["canary"], "snapshot": str(snap)}
    assert run_module(module, args, check_mode=True)["changed"] is True
    assert not snap.exists()


@pytest.mark.parametrize("names, why", [(["missing"], "not found"), (["twin"], "ambiguous")])
def test_record_refuses_a_canary_it_cannot_name(run_module, glance, tmp_path, names, why):
    glance.add("twin")
    glance.add("twin")
    args = {"command": "record", "images": names, "snapshot": str(tmp_path / "c.json")}
    result = run_module(module, args)
    assert result["failed"] and why in result["msg"] and names[0] in result["msg"]


def test_check_names_a_deleted_or_changed_canary(run_module, glance, tmp_path):
    gone = glance.add("gone")
    touched = glance.add("touched")
    snap = str(tmp_path / "canaries.json")
    run_module(module, {"command": "record", "images": ["gone", "touched"], "snapshot": snap})
    glance.delete(gone)
    glance.images[touched]["updated_at"] = "2026-12-03T02:31:00Z"
    result = run_module(module, {"command": "check", "snapshot": snap, "when": "after teardown"})
    assert result["failed"]
    assert result["msg"].startswith("canary images changed after teardown: ")
    assert f"gone ({gone}): deleted" in result["msg"]
    assert f"touched ({touched}): updated_at" in result["msg"]


def test_check_without_a_snapshot_compares_nothing(run_module, glance, tmp_path):
    result = run_module(module, {"command": "check", "snapshot": str(tmp_path / "none.json")})
    assert "failed" not in result and result["canaries"] == []


def test_check_names_a_write_to_an_image_the_job_did_not_create(run_module, glance, tmp_path):
    label = "shard-3f2a9c01b7d4"
    labelled = glance.add(f"{label}-left", shard_label=label)
    # Another project's image with the label is not the job's.
    decoy = glance.add("decoy", shard_label=label, owner="project-other")
    log = tmp_path / "glance-api.log"
    log.write_text(
        "glance starting\n"
        + line("PUT", f"/v2/images/{OWN}/file")
        + line("DELETE", f"/v2/images/{OWN}")
        + line("PATCH", f"/v2/images/{labelled}", 200)
        + line("DELETE", f"/v2/images/{decoy}")
    )
    args = {
        "command": "check",
        "snapshot": str(tmp_path / "none.json"),
        "access_log": str(log),
        "own_images": [OWN],
        "label": label,
    }
    result = run_module(module, args)
    assert result["failed"]
    assert list(result["foreign_writes"]) == [decoy]
    assert decoy in result["msg"] and OWN not in result["msg"] and labelled not in result["msg"]
    # Without the decoy's write, nothing to say.
    log.write_text(line("DELETE", f"/v2/images/{OWN}") + line("PATCH", f"/v2/images/{labelled}"))
    assert "failed" not in run_module(module, args)


def test_check_refuses_a_missing_access_log(run_module, glance, tmp_path):
    args = {"command": "check", "snapshot": str(tmp_path / "n.json"), "access_log": "/nonexistent"}
    result = run_module(module, args)
    assert result["failed"] and "access log" in result["msg"]


def test_snapshot_file_is_json_of_glances_record(run_module, glance, tmp_path):
    canary = glance.add("canary", shard_canary="yes")
    snap = tmp_path / "c.json"
    run_module(module, {"command": "record", "images": ["canary"], "snapshot": str(snap)})
    recorded = json.loads(snap.read_text())["images"][canary]
    assert recorded["shard_canary"] == "yes" and "self" not in recorded and "file" not in recorded


# -- canary servers (nova shards) -----------------------------------------------


class Nova:
    """nova's servers API as conn.compute.get reaches it (all_tenants, name a regex)."""

    def __init__(self):
        self.servers = {}

    def add(self, name, project="project-other", **fields):
        server_id = f"33333333-3333-4333-8333-{len(self.servers) + 1:012d}"
        self.servers[server_id] = dict(
            id=server_id,
            name=name,
            status="ACTIVE",
            tenant_id=project,
            metadata={},
            updated="2026-12-03T02:30:00Z",
            links=[{"rel": "self", "href": f"http://nova/servers/{server_id}"}],
            **fields,
        )
        return server_id

    def get(self, url, params=None, **kwargs):
        from test_shard_image_info import _response

        if url == "/servers/detail":
            assert params["all_tenants"] == "1"
            pattern = re.compile(params["name"])
            found = [s for s in self.servers.values() if pattern.search(s["name"])]
            return _response(200, {"servers": found})
        server_id = url.rsplit("/", 1)[1]
        if server_id in self.servers:
            return _response(200, {"server": self.servers[server_id]})
        return _response(404, {"itemNotFound": {"message": "not found"}})


@pytest.fixture
def nova(glance):
    glance.compute = Nova()
    return glance.compute


def test_canary_servers_are_recorded_and_a_changed_or_deleted_one_named(run_module, nova, tmp_path):
    by_name = nova.add("tenant-canary")
    # nova's name filter is a regular expression: neither this one nor the
    # brackets of the next get in the way.
    nova.add("tenant-canary-2")
    brackets = nova.add("db[1]")
    by_id = nova.add("another")
    snap = str(tmp_path / "canaries.json")
    args = {"command": "record", "servers": ["tenant-canary", by_id, "db[1]"], "snapshot": snap}
    result = run_module(module, args)
    assert {(c["kind"], c["id"]) for c in result["canaries"]} == {
        ("servers", by_name),
        ("servers", by_id),
        ("servers", brackets),
    }
    recorded = json.loads(Path(snap).read_text())
    assert recorded["images"] == {} and "links" not in recorded["servers"][by_name]
    check = {"command": "check", "snapshot": snap, "when": "after the exercise"}
    assert "failed" not in run_module(module, check)

    nova.servers[by_name]["metadata"] = {"touched": "yes"}
    nova.servers[by_name]["updated"] = "2026-12-03T02:31:00Z"
    del nova.servers[by_id]
    result = run_module(module, check)
    assert result["failed"]
    assert result["msg"].startswith("canary servers changed after the exercise: ")
    assert f"tenant-canary ({by_name}): metadata, updated" in result["msg"]
    assert f"another ({by_id}): deleted" in result["msg"]


@pytest.mark.parametrize(
    "names, why", [(["missing"], "not found"), (["twin"], "is ambiguous: 2 servers")]
)
def test_record_refuses_a_canary_server_it_cannot_name(run_module, nova, tmp_path, names, why):
    nova.add("twin")
    nova.add("twin", project="project-own")
    args = {"command": "record", "servers": names, "snapshot": str(tmp_path / "c.json")}
    result = run_module(module, args)
    assert result["failed"] and f"canary server {names[0]!r} {why}" in result["msg"]


def test_a_canary_image_and_server_changed_are_both_named(run_module, nova, glance, tmp_path):
    server = nova.add("canary")
    image = glance.add("canary")
    snap = str(tmp_path / "canaries.json")
    run_module(
        module, {"command": "record", "images": ["canary"], "servers": ["canary"], "snapshot": snap}
    )
    glance.delete(image)
    nova.servers[server]["status"] = "SHUTOFF"
    result = run_module(module, {"command": "check", "snapshot": snap, "when": "after teardown"})
    assert result["msg"] == (
        f"canary images changed after teardown: canary ({image}): deleted; "
        f"canary servers changed after teardown: canary ({server}): status"
    )


def test_the_canaries_a_profile_is_checked_against():
    credentials = {"canary_images": ["img"], "canary_servers": None}
    assert rule.canaries_for(credentials, {"canaries": ["servers"]}) == {"servers": []}
    assert rule.canaries_for(credentials, {"canaries": ["images", "servers"]}) == {
        "images": ["img"],
        "servers": [],
    }
    assert rule.canaries_for(credentials, {}) == {}
    # One name is a list of one, never a list of its letters.
    assert rule.canaries_for({"canary_servers": "db-1"}, {"canaries": ["servers"]}) == {
        "servers": ["db-1"]
    }


@pytest.mark.parametrize(
    "credentials, profile, why",
    [
        ({}, {"canaries": ["volumes"]}, "unknown canary kinds ['volumes']"),
        ({}, {"canary_images": True}, "is now 'canaries: [images]'"),
        ({"canary_servers": {"a": 1}}, {"canaries": ["servers"]}, "canary_servers in the"),
        ({"canary_images": ["ok", 3]}, {"canaries": ["images"]}, "canary_images in the"),
    ],
)
def test_canaries_that_cannot_be_checked_are_refused(credentials, profile, why):
    with pytest.raises(ValueError, match=re.escape(why)):
        rule.canaries_for(credentials, profile)


def test_the_shipped_profiles_name_known_kinds_and_the_filter_says_why_not():
    kinds = set()
    for path in (paths.ROLES / "shard" / "profiles").glob("*/profile.yaml"):
        kinds |= set(rule.canaries_for({}, yaml.safe_load(path.read_text())))
    assert kinds == set(rule.KINDS)
    # Jinja, as the shard role's vars use it.
    found = jinja(
        "cloud | shard_canaries(profile)",
        cloud={"canary_servers": ["a"]},
        profile={"canaries": ["servers"]},
    )
    assert found["msg"] == {"servers": ["a"]}, found
    refused = jinja("cloud | shard_canaries(profile)", cloud={}, profile={"canary_images": True})
    assert refused["failed"] and "is now 'canaries: [images]'" in refused["msg"], refused


# -- the cloud's file image store, seen from the node (module_utils/shard_image_stores.py)


def test_record_checks_that_the_node_sees_the_canary_s_data_in_the_file_store(
    run_module, glance, tmp_path
):
    canary = glance.add("canary", owner="project-other")
    elsewhere, here = tmp_path / "elsewhere", tmp_path / "images"
    elsewhere.mkdir()
    here.mkdir()
    snap = tmp_path / "canaries.json"
    args = {"command": "record", "images": ["canary"], "snapshot": str(snap)}
    # Not in the directory the credentials name: another host's store, nothing recorded.
    result = run_module(module, dict(args, file_stores={"file": str(elsewhere)}))
    assert result["failed"] and not snap.exists()
    assert result["msg"] == (
        f"the cloud's file image store is not reachable from this node: the data of its "
        f"image canary ({canary}) is not in {elsewhere} here; a glance-api shard on another "
        "host than the cloud's needs a store both reach (a filesystem both mount, or a "
        "network store of the profile's image_store.types)"
    )
    # glance's file store keeps it as DIR/ID: this node sees the store.
    (here / canary).write_bytes(b"data")
    result = run_module(module, dict(args, file_stores={"a": str(elsewhere), "b": str(here)}))
    assert "failed" not in result and result["changed"] and snap.exists()


def test_only_the_file_stores_an_image_is_in_must_hold_its_data(tmp_path):
    (tmp_path / "local").mkdir()
    stores = {"local": str(tmp_path / "local"), "other": str(tmp_path / "other")}
    image = {"id": "img-1", "status": "active"}
    # In rbd only (multi-store's stores): no file store of it to see.
    assert stores_rule.unseen_dirs(dict(image, stores="ceph"), stores) == []
    # In a file store: its directory, and only its, must hold the data.
    assert stores_rule.unseen_dirs(dict(image, stores="ceph,local"), stores) == [stores["local"]]
    (tmp_path / "local" / "img-1").write_bytes(b"x")
    assert stores_rule.unseen_dirs(dict(image, stores="ceph,local"), stores) == []
    assert stores_rule.unseen_dirs(dict(image, stores="other"), stores) == [stores["other"]]
    # No stores named (one store): any file store; no data yet (queued): nothing to see.
    assert stores_rule.unseen_dirs(image, stores) == []
    assert stores_rule.unseen_dirs({"id": "img-2", "status": "active"}, stores) == list(
        stores.values()
    )
    assert stores_rule.unseen_dirs({"id": "img-2", "status": "queued"}, stores) == []
    assert stores_rule.unseen_dirs(dict(image, id="img-2"), {}) == []


def test_the_store_rules_as_the_profile_and_the_credentials_state_them():
    stores = {
        "file": {"type": "file", "filesystem_store_datadir": "/srv/images"},
        "fast": {"type": "rbd", "rbd_store_pool": "images"},
        "old": {"type": "vmware"},
    }
    types = ["file", "rbd", "swift", "s3", "cinder"]
    assert stores_rule.unsupported(stores, types) == ["glance.stores.old.type 'vmware'"]
    assert stores_rule.file_stores(stores) == {"file": "/srv/images"}
    # Jinja, as the profile's pre-flight and the shard role's vars use them.
    found = jinja("stores | shard_unsupported_stores(types)", stores=stores, types=types)
    assert found["msg"] == ["glance.stores.old.type 'vmware'"], found
    assert jinja("stores | shard_file_stores", stores=stores)["msg"] == {"file": "/srv/images"}
    assert jinja("'/srv/images' | shard_file_store_missing")["msg"] == (
        "the cloud's file image store /srv/images is not a directory on this node; a glance-api "
        "shard on another host than the cloud's needs a store both reach (a filesystem both "
        "mount, or a network store of the profile's image_store.types)"
    )
    # The shipped glance-api profile serves file stores (the embedded cloud's).
    glance = yaml.safe_load((paths.ROLES / "shard/profiles/glance-api/profile.yaml").read_text())
    assert stores_rule.unsupported({"file": stores["file"]}, glance["image_store"]["types"]) == []
