"""module_utils/shard_images.py: glance's image reads, the one pager of shard_image_info
and shard_canaries."""

import pytest
from ansible.module_utils import shard_images
from openstack import exceptions
from test_shard_image_info import FakeGlance, _response


def test_every_page_is_read_with_glance_s_next_link_keeping_the_filters():
    glance = FakeGlance(page=2)
    wanted = [glance.add(f"mine-{n}", shard_label="shard-3f2a9c01b7d4") for n in range(5)]
    glance.add("other", shard_label="shard-000000000000")
    found = shard_images.list_images(glance, {"shard_label": "shard-3f2a9c01b7d4"})
    assert [i["id"] for i in found] == wanted
    lists = [params for url, params, _ in glance.requests if url == "/images"]
    assert len(lists) == 3
    assert all(p["shard_label"] == "shard-3f2a9c01b7d4" for p in lists)
    assert [p.get("marker") for p in lists] == [None, wanted[1], wanted[3]]


def test_no_filters_lists_every_image_and_values_are_sent_as_text():
    glance = FakeGlance(page=10)
    ids = [glance.add("a", min_ram=0), glance.add("b", min_ram=1)]
    assert [i["id"] for i in shard_images.list_images(glance)] == ids
    assert [i["id"] for i in shard_images.list_images(glance, {"min_ram": 1})] == ids[1:]


class _Looping:
    """A glance whose pages repeat and whose last page is empty but still links on."""

    def __init__(self):
        self.calls = 0

    def get(self, url, params=None, **kwargs):
        self.calls += 1
        image = {"id": "00000000-0000-4000-8000-000000000001"}
        body = {"images": [image] if self.calls < 3 else [], "next": "/v2/images?marker=x"}
        return _response(200, body)


def test_a_repeated_image_is_kept_once_and_an_empty_page_ends_the_list():
    glance = _Looping()
    assert len(shard_images.list_images(glance)) == 1
    assert glance.calls == 3


def test_one_image_by_id_or_none():
    glance = FakeGlance()
    image_id = glance.add("one")
    assert shard_images.get_image(glance, image_id)["name"] == "one"
    assert shard_images.get_image(glance, "00000000-0000-4000-8000-000000000099") is None


def test_an_error_raises_the_sdk_s_exception():
    glance = FakeGlance()
    with pytest.raises(exceptions.BadRequestException):
        shard_images.list_images(glance, {"bad": "1"})
