"""Unit tests of the modules in library/: import paths, running a module, a fake clock.

The modules import their shared code as ``ansible.module_utils.shard_openstack``,
as Ansible ships it to them; here module_utils/ is added to that package's path
and library/ to sys.path, so ``import shard_server`` works.
"""

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "library"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ansible.module_utils  # noqa: E402

if str(REPO / "module_utils") not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(REPO / "module_utils"))

from ansible.module_utils import shard_openstack  # noqa: E402
from ansible.module_utils.testing import patch_module_args  # noqa: E402


@pytest.fixture
def run_module(capsys):
    """run_module(module, args, check_mode=False) -> the module's JSON result.

    Runs module.main() with the arguments (``cloud`` of a cloud module defaults to "fake"), catches
    its exit and returns what it printed, decoded.
    """

    def run(module, args, check_mode=False):
        args = dict(args)
        if hasattr(module, "ShardModule"):  # the cloud modules, not shard_process
            args.setdefault("cloud", "fake")
        if check_mode:
            args["_ansible_check_mode"] = True
        capsys.readouterr()
        with patch_module_args(args), pytest.raises(SystemExit):
            module.main()
        out = capsys.readouterr().out
        try:
            return json.loads(out)
        except ValueError:
            pytest.fail(f"module printed no JSON: {out!r}")

    return run


class FakeClock:
    """time.monotonic/time.sleep stand-ins: sleeping advances the clock at once."""

    def __init__(self):
        self.now = 1000.0
        self.slept = []
        self.on_sleep = []

    def monotonic(self):
        return self.now

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds
        for hook in self.on_sleep:
            hook(self.now)

    def __getattr__(self, name):  # strftime, gmtime, ... as the real module has them
        import time

        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch):
    """Replace the ``time`` module seen by module_utils and the cloud modules."""
    fake = FakeClock()
    monkeypatch.setattr(shard_openstack, "time", fake)
    from ansible.module_utils import shard_resources, shard_waits
    from openstack import utils as sdk_utils

    monkeypatch.setattr(shard_resources, "time", fake)
    from ansible.module_utils import shard_compute_label

    monkeypatch.setattr(shard_compute_label, "time", fake)
    # The shared wait (shard_waits) paces every module's; openstacksdk's own
    # (wait_for_server, wait_for_delete) sleep through its utils.
    monkeypatch.setattr(shard_waits, "time", fake)
    monkeypatch.setattr(sdk_utils, "time", fake)
    for name in (
        "shard_compute_service",
        "shard_server",
        "shard_labelled_resources",
        "shard_teardown_cloud",
    ):
        module = __import__(name)
        if hasattr(module, "time"):
            monkeypatch.setattr(module, "time", fake)
    return fake


@pytest.fixture
def cloud(monkeypatch, clock):
    """A fake cloud, returned by openstack.connect for every module."""
    from fake_cloud import FakeCloud

    fake = FakeCloud(clock)
    monkeypatch.setattr(shard_openstack.openstack, "connect", fake.connect)
    return fake
