"""shard_image_info: glance's own filtering, pagination, one image by id, reading data back,
and the wait for a glance-api shard that starts."""

import hashlib
import http.server
import json
import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode, urlsplit

import pytest
import requests
import shard_image_info as module
from ansible.module_utils import shard_openstack
from ansible.module_utils import shard_processes as processes

ENDPOINT = "http://127.0.0.1:21234/v2/"


def _response(status, body=None, content=None, url=ENDPOINT):
    resp = requests.Response()
    resp.status_code = status
    resp.url = url
    resp.reason = "OK" if status < 400 else "Error"
    if content is not None:
        resp.headers["content-type"] = "application/octet-stream"
        resp._content = content
    else:
        resp.headers["content-type"] = "application/json"
        resp._content = json.dumps(body).encode() if body is not None else b""
    resp._content_consumed = True
    return resp


class FakeGlance:
    """glance's v2 images API as conn.image.get reaches it: filters, pages of `page` images."""

    def __init__(self, page=2):
        self.images = {}
        self.data = {}
        self.page = page
        self.requests = []
        self.image = self

    def connect(self, **kwargs):
        return self

    def add(self, name, data=b"", corrupt=False, **properties):
        image_id = f"00000000-0000-4000-8000-{len(self.images) + 1:012d}"
        self.images[image_id] = dict(
            id=image_id,
            name=name,
            status="active",
            size=len(data),
            visibility="private",
            owner="project-own",
            os_hash_algo="sha512",
            os_hash_value=hashlib.sha512(data).hexdigest(),
            checksum=hashlib.md5(data).hexdigest(),  # noqa: S324 - glance's own field
            tags=[],
            created_at="2026-11-25T13:00:00Z",
            file=f"/v2/images/{image_id}/file",
            schema="/v2/schemas/image",
            **properties,
        )
        self.data[image_id] = data + (b"!" if corrupt else b"")
        return image_id

    def get_endpoint(self):
        return ENDPOINT

    def get(self, url, params=None, stream=False, **kwargs):
        self.requests.append((url, dict(params or {}), stream))
        path = urlsplit(url).path
        if path == "/images":
            return self._list(dict(params or {}))
        parts = path.strip("/").split("/")
        if parts[0] == "images" and parts[1] in self.images:
            if len(parts) == 3 and parts[2] == "file":
                return _response(200, content=self.data[parts[1]])
            return _response(200, self.images[parts[1]])
        return _response(404, {"message": "not found"})

    def _list(self, params):
        if params.get("bad"):
            return _response(400, {"message": "Invalid filter"})
        marker = params.pop("marker", None)
        matching = [
            i for i in self.images.values() if all(str(i.get(k)) == v for k, v in params.items())
        ]
        if marker:
            ids = [i["id"] for i in matching]
            matching = matching[ids.index(marker) + 1 :]
        body = {"images": matching[: self.page], "first": "/v2/images"}
        if len(matching) > self.page:
            query = dict(params, marker=matching[self.page - 1]["id"])
            body["next"] = "/v2/images?" + urlencode(query)
        return _response(200, body)


@pytest.fixture
def glance(monkeypatch):
    fake = FakeGlance()
    monkeypatch.setattr(shard_openstack.openstack, "connect", fake.connect)
    return fake


def test_filters_are_glances_and_every_page_is_read(run_module, glance):
    label = "shard-3f2a9c01b7d4"
    wanted = [glance.add(f"{label}-{n}", shard_label=label) for n in range(5)]
    glance.add("someone-elses", shard_label="shard-000000000000")
    glance.add("unlabelled")
    result = run_module(module, {"filters": {"shard_label": label}})
    assert result["changed"] is False
    assert [i["id"] for i in result["images"]] == wanted
    # glance filtered: every request carried the filter, pages followed by marker.
    lists = [r for r in glance.requests if r[0] == "/images"]
    assert len(lists) == 3
    assert all(params["shard_label"] == label for _, params, _ in lists)
    assert "marker" in lists[1][1]
    assert result["images"][0]["properties"] == {"shard_label": label}
    assert result["endpoint"] == ENDPOINT


def test_several_filters(run_module, glance):
    a = glance.add("a", shard_label="shard-3f2a9c01b7d4", shard_exercise="updated")
    glance.add("b", shard_label="shard-3f2a9c01b7d4")
    result = run_module(
        module, {"filters": {"shard_label": "shard-3f2a9c01b7d4", "shard_exercise": "updated"}}
    )
    assert [i["id"] for i in result["images"]] == [a]


def test_one_image_by_id(run_module, glance):
    image_id = glance.add("one", data=b"x" * 10)
    result = run_module(module, {"id": image_id})
    assert [i["id"] for i in result["images"]] == [image_id]
    image = result["images"][0]
    assert image["size"] == 10 and image["status"] == "active"
    assert "data" not in image
    assert "schema" not in image and "file" not in image


def test_an_unknown_or_deleted_image_is_none_found(run_module, glance):
    result = run_module(module, {"id": "00000000-0000-4000-8000-999999999999"})
    assert result["images"] == []
    assert "failed" not in result


def test_read_data_matches_what_glance_recorded(run_module, glance):
    data = bytes(range(256)) * 300
    image_id = glance.add("data", data=data)
    result = run_module(module, {"id": image_id, "read_data": True})
    read = result["images"][0]["data"]
    assert read == {
        "size": len(data),
        "hash": hashlib.sha512(data).hexdigest(),
        "algo": "sha512",
        "matches": True,
    }
    assert (f"/images/{image_id}/file", {}, True) in glance.requests


def test_read_data_that_differs_does_not_match(run_module, glance):
    image_id = glance.add("corrupt", data=b"abc", corrupt=True)
    read = run_module(module, {"id": image_id, "read_data": True})["images"][0]["data"]
    assert read["matches"] is False
    assert read["size"] == 4


def test_read_data_of_every_image_listed(run_module, glance):
    for n in range(3):
        glance.add(f"i{n}", data=bytes([n]) * 7, shard_label="shard-3f2a9c01b7d4")
    result = run_module(
        module, {"filters": {"shard_label": "shard-3f2a9c01b7d4"}, "read_data": True}
    )
    assert [i["data"]["matches"] for i in result["images"]] == [True, True, True]


def test_check_mode_reads_as_well(run_module, glance):
    image_id = glance.add("data", data=b"123")
    result = run_module(module, {"id": image_id, "read_data": True}, check_mode=True)
    assert result["changed"] is False and result["images"][0]["data"]["matches"]


def test_no_filters_lists_everything(run_module, glance):
    ids = [glance.add(f"i{n}") for n in range(3)]
    assert [i["id"] for i in run_module(module, {})["images"]] == ids


def test_filters_and_id_are_exclusive(run_module, glance):
    result = run_module(module, {"filters": {"name": "x"}, "id": "y"})
    assert result["failed"] is True
    assert "mutually exclusive" in result["msg"]


def test_an_api_error_says_what_glance_said(run_module, glance):
    result = run_module(module, {"filters": {"bad": "1"}})
    assert result["failed"] is True
    assert "Invalid filter" in result["msg"] or "400" in result["msg"]


# -- wait: a glance-api shard that starts (the profile's registered step)


class _Shard(http.server.BaseHTTPRequestHandler):
    """What the shard answers without a token: its versions, and /v2/images."""

    versions = [{"id": "v2.17", "status": "CURRENT"}]
    images_status = 401

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/versions":
            self._answer(200, {"versions": self.versions})
        else:
            self._answer(self.images_status, {"images": []})

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def shard(tmp_path):
    """A recorded process (shard_processes.start), its log, and an endpoint answering for it."""
    handler = type("Handler", (_Shard,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    pidfile, logfile = str(tmp_path / "glance-api.pid"), str(tmp_path / "glance-api.log")
    # Recorded as shard_process records it (without start()'s half-second look).
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    record = {"pid": proc.pid, "start_time": processes.start_time(proc.pid)}
    record["boot_id"] = processes.boot_id()
    processes.write_record(pidfile, record)
    Path(logfile).touch()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    wait = {"url": url, "pidfile": pidfile, "logfile": logfile, "timeout": 2}
    yield SimpleNamespace(handler=handler, record=record, url=url, wait=wait, log=Path(logfile))
    processes.stop(record, timeout=5)
    proc.wait()
    server.shutdown()
    server.server_close()


def _listening(shard, pid=None):
    line = f"[INFO] Listening at: {shard.url} ({pid or shard.record['pid']})\n"
    with shard.log.open("a") as f:
        f.write("[INFO] Starting gunicorn 23.0.0\n" + line)


def test_wait_until_the_shard_answers_as_glance_then_list(run_module, glance, shard):
    _listening(shard)
    image_id = glance.add("cirros")
    result = run_module(module, {"wait": shard.wait, "filters": {"name": "cirros"}})
    assert "failed" not in result, result
    assert [i["id"] for i in result["images"]] == [image_id]


def test_another_program_s_answer_is_not_the_shard_s(run_module, glance, shard):
    # The endpoint answers, but the log says another pid listens there.
    _listening(shard, pid=1)
    result = run_module(module, {"wait": shard.wait})
    assert result["failed"] is True
    assert result["msg"].startswith(
        f"glance-api runs but did not answer on {shard.url} within 2s; the end of its log: "
    )
    assert "Listening at" in result["msg"]


@pytest.mark.parametrize("record", ["stopped", "missing"])
def test_a_shard_that_exits_fails_at_once_with_its_log(run_module, glance, shard, record):
    if record == "stopped":
        processes.stop(shard.record, timeout=5)
    else:
        processes.remove_record(shard.wait["pidfile"])
    shard.log.write_text("ImportError: no module named glance\n")
    result = run_module(module, {"wait": dict(shard.wait, timeout=60)})
    assert result["msg"] == (
        f"glance-api exited after it was started, before it answered on {shard.url}; "
        "the end of its log: ImportError: no module named glance"
    )
    assert not [r for r in glance.requests if r[0] == "/images"]


@pytest.mark.parametrize(
    ("versions", "status", "message"),
    [
        ([{"id": "v2.17", "status": "SUPPORTED"}], 401, "offers no CURRENT image API v2"),
        ([{"id": "v2.17", "status": "CURRENT"}], 200, "the shard served a request without a token"),
        ([{"id": "v2.17", "status": "CURRENT"}], 403, "the shard answered 403 to a request"),
    ],
)
def test_what_the_shard_offers_is_checked(run_module, glance, shard, versions, status, message):
    shard.handler.versions, shard.handler.images_status = versions, status
    _listening(shard)
    result = run_module(module, {"wait": shard.wait})
    assert result["failed"] is True and message in result["msg"]
