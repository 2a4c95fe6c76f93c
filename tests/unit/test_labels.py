"""The run's names (module_utils/shard_labels.py), and every way they are consumed.

The same functions serve the modules (ansible.module_utils.shard_labels), Jinja
(the shard role's filters) and the CLI (shard_jobs.rules.labels): these tests
check the rule once and then that Jinja, as Ansible loads the filters, gives
the same answers.
"""

import pytest
from unit_helpers import jinja

from shard_jobs.rules import labels

BUILD = "0123456789abcdef0123456789abcdef"


def test_label_and_trait_of_a_build():
    assert labels.label_for(BUILD) == "shard-0123456789ab"
    assert labels.trait_for("shard-0123456789ab") == "CUSTOM_SHARD_0123456789AB"
    assert labels.label_of_trait("CUSTOM_SHARD_0123456789AB") == "shard-0123456789ab"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "0123456789ab",  # a label's worth, not a build id
        BUILD.upper(),
        BUILD + "0",
        BUILD[:-1],
        BUILD + "\n",
        "shard/../x;y",
        "0123456789ab\nhost = evil",
        123,
        None,
    ],
)
def test_only_a_zuul_build_id_is_accepted(bad):
    error = labels.build_id_error(bad)
    assert error and error.startswith("invalid build id ") and "\n" not in error
    with pytest.raises(ValueError):
        labels.label_for(bad)


@pytest.mark.parametrize(
    "text",
    [
        "shard-0123456789ab\n",
        " shard-0123456789ab",
        "shard-0123456789a",
        "shard-0123456789abc",
        "shard-00000001",
        "shard-0123456789AB",
        "xshard-0123456789ab",
    ],
)
def test_a_label_is_exactly_what_the_jobs_generate(text):
    assert not labels.is_label(text)
    assert labels.label_error(text)
    assert labels.label_of_metadata({"shard_label": text}) is None
    assert labels.label_of_description(f"shard-jobs label={text} created=x") is None


def test_description_records_label_and_time():
    text = labels.description_for("shard-0123456789ab", created=1764633600)
    assert text == "shard-jobs label=shard-0123456789ab created=2025-12-02T00:00:00Z"
    assert labels.label_of_description(text) == "shard-0123456789ab"
    assert labels.created_of_description(text) == 1764633600
    assert labels.label_of_description("shard-jobs label=shard-0123456789ab") == (
        "shard-0123456789ab"
    )


def _value(expression: str, **variables) -> str:
    result = jinja(expression, **variables)
    assert not result.get("failed"), result
    return result["msg"]


def test_jinja_derives_the_same_names():
    label = "shard-0123456789ab"
    assert _value("build | shard_label", build=BUILD) == labels.label_for(BUILD)
    assert _value("label | shard_trait", label=label) == labels.trait_for(label)
    assert _value("build | shard_build_id_error", build=BUILD) == ""
    bad = "shard/../x"
    assert _value("build | shard_build_id_error", build=bad) == labels.build_id_error(bad)
    described = _value("label | shard_description", label=label)
    assert labels.label_of_description(described) == label


def test_jinja_refuses_a_bad_build_id_with_the_rule_s_message():
    result = jinja("build | shard_label", build="not-a-build")
    assert result.get("failed") is True
    assert "invalid build id 'not-a-build'" in result["msg"]


def test_each_shard_of_a_run_has_a_label_of_its_own():
    # Shard 0 is the build's label; the others keep its first ten digits and
    # count on in the last two (wrapping), each a label like any other.
    assert labels.label_for(BUILD, 0) == labels.label_for(BUILD)
    assert labels.label_for(BUILD, 1) == "shard-0123456789ac"
    wraps = "0123456789ff" + BUILD[12:]
    assert labels.labels_for(wraps, 3) == [
        "shard-0123456789ff",
        "shard-012345678900",
        "shard-012345678901",
    ]
    every = labels.labels_for(BUILD, labels.MAX_SHARDS)
    assert len(set(every)) == labels.MAX_SHARDS and all(map(labels.is_label, every))
    for label in every:
        assert labels.label_of_trait(labels.trait_for(label)) == label
    for bad in (-1, labels.MAX_SHARDS, "1", True):
        with pytest.raises(ValueError, match="invalid shard index"):
            labels.label_for(BUILD, bad)


@pytest.mark.parametrize("count", [0, 17, -1, "two", "", None, True])
def test_a_bad_number_of_shards_is_refused_in_one_line(count):
    error = labels.shards_error(count)
    assert error.startswith("invalid number of shards") and "\n" not in error
    assert _value("count | shard_shards_error", count=count) == error


@pytest.mark.parametrize("count", [1, 2, "2", 16])
def test_a_number_of_shards_within_the_limit_is_accepted(count):
    assert labels.shards_error(count) is None


def test_jinja_derives_a_shard_s_label():
    assert _value("build | shard_label(1)", build=BUILD) == labels.label_for(BUILD, 1)
    assert _value("build | shard_label('2')", build=BUILD) == labels.label_for(BUILD, 2)


def test_names_of_what_a_run_creates():
    label = "shard-0123456789ab"
    assert labels.flavor_name_for(label) == "shard-0123456789ab-flavor"
    assert labels.server_name_for(label) == "shard-0123456789ab-server"
    assert labels.name_for(label, "survivor") == "shard-0123456789ab-survivor"
    assert labels.trait_requirement(label) == {"trait:CUSTOM_SHARD_0123456789AB": "required"}
    assert labels.aggregate_metadata(label) == {
        "shard_label": label,
        "trait:CUSTOM_SHARD_0123456789AB": "required",
    }


def test_a_shard_s_port_is_its_label_s_and_within_the_range():
    # The label's twelve hex digits, modulo the span, above the base.
    assert labels.port_for("shard-000000000000") == 20000
    assert labels.port_for("shard-0000000003e7") == 20999
    assert labels.port_for("shard-000000002710") == 20000
    ports = {labels.port_for(label) for label in labels.labels_for(BUILD, labels.MAX_SHARDS)}
    assert len(ports) == labels.MAX_SHARDS
    assert all(20000 <= port < 30000 for port in ports)
    for bad in ("shard-0123", "0123456789ab", None):
        with pytest.raises(ValueError, match="is not a shard label"):
            labels.port_for(bad)


def test_the_pattern_of_every_label_matches_every_label_and_nothing_else():
    import re

    pattern = re.compile(labels.ALL_LABELS_PATTERN)
    assert all(pattern.search(label) for label in labels.labels_for(BUILD, labels.MAX_SHARDS))
    assert not pattern.search("xshard-0123456789ab")


def test_jinja_derives_the_same_names_and_port():
    label = "shard-0123456789ab"
    names = jinja(
        "[label | shard_flavor_name, label | shard_server_name, label | shard_name('survivor'),"
        " label | shard_port, label | shard_trait_requirement,"
        " label | shard_description(1764633600)]",
        label=label,
    )
    assert not names.get("failed"), names
    assert names["msg"] == [
        labels.flavor_name_for(label),
        labels.server_name_for(label),
        labels.name_for(label, "survivor"),
        labels.port_for(label),
        labels.trait_requirement(label),
        labels.description_for(label, 1764633600),
    ]
    refused = jinja("label | shard_port", label="shard-0123")
    assert refused.get("failed") is True and "is not a shard label" in refused["msg"]
