"""./shard run -e: one rule, ansible-playbook's, for every value."""

import pytest

from shard_jobs import settings


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("shard_build_id=0123", {"shard_build_id": "0123"}),  # not the number 83
        ("p=a[b]", {"p": "a[b]"}),
        ("flag=false", {"flag": "false"}),  # roles read it with | bool
        ("empty=", {"empty": ""}),
        ("msg=a=b", {"msg": "a=b"}),
        (
            "shard_profile_options={compute_driver: libvirt.LibvirtDriver}",
            {"shard_profile_options": {"compute_driver": "libvirt.LibvirtDriver"}},
        ),
        ("items=[1, two]", {"items": [1, "two"]}),
    ],
)
def test_values(item, expected):
    assert settings.parse_extra_var(item) == expected


def test_a_file_of_variables(tmp_path):
    path = tmp_path / "vars.yaml"
    path.write_text("a: 1\nb: [x]\n")
    assert settings.parse_extra_var(f"@{path}") == {"a": 1, "b": ["x"]}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("novalue", "bad -e 'novalue': expected KEY=VALUE, KEY={yaml} or @FILE"),
        ("=x", "bad -e '=x': expected KEY=VALUE"),
        ("bad key=x", "bad -e 'bad key=x': expected KEY=VALUE"),
        ("k={a: [}", "bad -e k: its value is not valid YAML"),
        ("@/nonexistent/vars.yaml", "bad -e '@/nonexistent/vars.yaml': cannot read"),
    ],
)
def test_bad_input_is_one_line(item, message):
    with pytest.raises(settings.RunError) as err:
        settings.parse_extra_var(item)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_a_file_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n")
    with pytest.raises(settings.RunError, match="must hold a mapping"):
        settings.parse_extra_var(f"@{path}")
