"""shard_build: the build's virtualenv holds the code under test, from its prepared source."""

import json

import pytest


@pytest.fixture(scope="module")
def venv(workspace):
    return workspace / "venv"


def _python(host, venv, code: str) -> str:
    return host.check_output(f"{venv}/bin/python -c {json.dumps(code)}")


def test_nova_is_the_prepared_source_tree(host, venv, src_dir):
    path = _python(host, venv, "import nova, os; print(os.path.realpath(nova.__file__))")
    assert path == str(src_dir / "nova" / "__init__.py")


def test_the_change_under_test_is_importable(host, venv, build):
    marker = _python(host, venv, "from nova import molecule_marker; print(molecule_marker.BUILD)")
    assert marker == build


def test_nova_compute_entry_point(host, venv, src_dir):
    script = host.file(f"{venv}/bin/nova-compute")
    assert script.is_file and script.mode & 0o111
    out = _python(
        host,
        venv,
        "from importlib.metadata import distribution as d; print(d('nova').version)",
    )
    assert out.startswith("34.0.")


def test_dependencies_come_from_the_cached_layer(host, venv, cache_dir):
    path = _python(
        host, venv, "import oslo_config, os; print(os.path.realpath(oslo_config.__file__))"
    )
    assert path.startswith(f"{cache_dir}/deps/nova-"), path


def test_build_recorded(host, workspace, state, build):
    freeze = host.file(str(workspace / "pip-freeze-venv.txt"))
    assert freeze.is_file
    assert "nova" in freeze.content_string
    source = host.file(str(workspace / "source-venv.txt")).content_string.strip()
    assert source == f"{state['molecule_shard_commit']} Molecule change of build {build}"


def test_phase_recorded(host, workspace):
    events = [
        json.loads(line)
        for line in host.file(str(workspace / "phases.jsonl")).content_string.splitlines()
    ]
    assert {"start", "end"} <= {e["event"] for e in events if e["phase"] == "build"}
