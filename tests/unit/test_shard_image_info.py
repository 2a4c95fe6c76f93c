"""shard_image_info: glance's own filtering, pagination, one image by id, reading data back."""

import hashlib
import json
from urllib.parse import urlencode, urlsplit

import pytest
import requests
import shard_image_info as module
from ansible.module_utils import shard_openstack

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
