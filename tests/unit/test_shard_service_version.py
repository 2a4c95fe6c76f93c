"""shard_service_version (and module_utils/shard_versions): a service version from a
source tree or an installed virtualenv."""

import shard_service_version as module

PATTERN = r"^SERVICE_VERSION = (\d+)$"
FILE = "nova/objects/service.py"
SOURCE = "# the history\nSERVICE_VERSION_HISTORY = ()\nSERVICE_VERSION = 72\nOTHER = 1\n"


def test_a_source_tree(tmp_path, run_module):
    (tmp_path / "nova/objects").mkdir(parents=True)
    (tmp_path / FILE).write_text(SOURCE)

    result = run_module(module, dict(root=str(tmp_path), file=FILE, pattern=PATTERN))

    assert result["service_version"] == 72 and result["changed"] is False


def test_a_virtualenv(tmp_path, run_module):
    site = tmp_path / "lib/python3.11/site-packages"
    (site / "nova/objects").mkdir(parents=True)
    (site / FILE).write_text(SOURCE.replace("72", "74"))

    result = run_module(module, dict(root=str(tmp_path), file=FILE, pattern=PATTERN))

    assert result["service_version"] == 74


def test_nothing_found_is_none(tmp_path, run_module):
    (tmp_path / "nova/objects").mkdir(parents=True)
    (tmp_path / FILE).write_text("SERVICE_VERSION = 'unknown'\n")

    assert (
        run_module(module, dict(root=str(tmp_path), file=FILE, pattern=PATTERN))["service_version"]
        is None
    )
    assert (
        run_module(module, dict(root=str(tmp_path / "none"), file=FILE, pattern=PATTERN))[
            "service_version"
        ]
        is None
    )
