# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""nova's fake virt driver, with instances that survive a nova-compute restart.

nova.virt.fake keeps its instances in memory: after a restart (an upgrade in
place) it no longer knows the servers it ran, and stopping one fails with
InstanceNotFound, where a real hypervisor would still run them. This keeps
the fake driver's instance table in a file under the compute's state_path.
Used by the upgrade job: compute_driver = shard_fake_driver.PersistentFakeDriver.
"""

import json
import os

from nova.conf import CONF
from nova.virt import fake

STATE_FILE = "shard-fake-instances.json"


class PersistentFakeDriver(fake.FakeDriverWithoutFakeNodes):
    """fake.FakeDriverWithoutFakeNodes whose instances persist across restarts."""

    def _path(self):
        return os.path.join(CONF.state_path, STATE_FILE)

    def _save(self):
        data = {uuid: {"name": i.name, "state": i.state} for uuid, i in self.instances.items()}
        tmp = self._path() + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, self._path())

    def init_host(self, host):
        super().init_host(host)
        try:
            with open(self._path()) as f:
                data = json.load(f)
        except (OSError, ValueError):
            data = {}
        for uuid, item in data.items():
            self.instances[uuid] = fake.FakeInstance(item["name"], item["state"], uuid)


def _persisting(name):
    base = getattr(fake.FakeDriverWithoutFakeNodes, name)

    def method(self, *args, **kwargs):
        try:
            return base(self, *args, **kwargs)
        finally:
            self._save()

    method.__name__ = name
    method.__doc__ = base.__doc__
    return method


# Every driver call that changes an instance's existence or power state.
for _name in (
    "spawn",
    "destroy",
    "reboot",
    "power_off",
    "power_on",
    "pause",
    "unpause",
    "suspend",
    "resume",
    "rescue",
    "unrescue",
    "finish_migration",
    "finish_revert_migration",
):
    if hasattr(fake.FakeDriverWithoutFakeNodes, _name):
        setattr(PersistentFakeDriver, _name, _persisting(_name))
