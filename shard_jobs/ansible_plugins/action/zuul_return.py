# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""zuul_return for ./shard run: what Zuul's own action plugin does with `data`.

Zuul's executor provides zuul_return; a local run has none. This stand-in
merges the task's `data` into the run's result data file
(zuul.executor.result_data_file, as {"data": ..., "secret_data": ...}), from
which the runner reads what Zuul would (zuul.retry: false after a failed
pre-run makes the result FAILURE instead of a retry). Only the runner's
ansible.cfg loads it: under Zuul, Zuul's plugin is the one used.
"""

import json
import os
import tempfile

from ansible.plugins.action import ActionBase


def merge(new, old):
    """Merge dict new into old, recursively; other values of new replace old's."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            merge(value, old[key])
        else:
            old[key] = value
    return old


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        zuul = self._templar.template(task_vars.get("zuul", {}))
        path = self._task.args.get("path") or zuul.get("executor", {}).get("result_data_file")
        if not path:
            return dict(result, failed=True, msg="zuul_return: no zuul.executor.result_data_file")
        stored = {"data": {}, "secret_data": {}}
        if os.path.exists(path):
            with open(path) as f:
                stored.update(json.load(f) or {})
        merge(self._task.args.get("data") or {}, stored["data"])
        merge(self._task.args.get("secret_data") or {}, stored["secret_data"])
        fd, tmp_path = tempfile.mkstemp(dir=os.path.dirname(path))
        with os.fdopen(fd, "w") as f:
            json.dump(stored, f)
        os.rename(tmp_path, path)
        return result
