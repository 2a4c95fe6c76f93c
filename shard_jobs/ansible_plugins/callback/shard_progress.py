# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible stdout callback for ./shard: one line per step, one line per failure.

A step is a task file of a role (embedded_cloud's preflight.yaml, packages.yaml,
...) or a role (the shard life cycle). The full output goes to ANSIBLE_LOG_PATH.
A task still running after ANNOUNCE_AFTER seconds (a first run's installs,
a build) is announced with its name, so a long silence says what it waits for.
"""

import os
import sys
import threading
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: shard_progress
type: stdout
short_description: one line per step for ./shard
description:
  - Prints one line per role task file (or per role) with its outcome and time,
    and one line naming the problem when a task fails.
options: {}
"""


def _first_line(text):
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


# No progress lines (the failure line on standard error stays): ./shard ... --json.
QUIET = os.environ.get("SHARD_PROGRESS_QUIET") == "1"
# Seconds a task may run before its name is printed.
ANNOUNCE_AFTER = float(os.environ.get("SHARD_PROGRESS_ANNOUNCE_AFTER", "5"))


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "shard_progress"

    def __init__(self):
        super().__init__()
        self.prefix = os.environ.get("SHARD_PROGRESS_PREFIX", "")
        self.group_by = os.environ.get("SHARD_PROGRESS_GROUP", "file")
        self.quiet_roles = set(
            filter(None, os.environ.get("SHARD_PROGRESS_QUIET_ROLES", "").split(","))
        )
        self.step = None
        self.step_start = 0.0
        self.step_changed = 0
        self.failure = None
        self.task_start = time.monotonic()
        self.timer = None
        self.out = threading.Lock()
        log_path = os.environ.get("SHARD_PROGRESS_LOG")
        # Open for the playbook's whole run; closed when the process ends.
        self.log = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115

    def _log(self, status, result):
        """Full result, as censored as Ansible makes it for no_log tasks."""
        if self.log:
            host = result._host.get_name()
            dump = self._dump_results(result._result, indent=2)
            took = time.monotonic() - self.task_start
            self.log.write(f"{status}: [{host}] {result._task.get_name()} ({took:.1f}s)\n{dump}\n")

    def _step_of(self, task):
        path = (task.get_path() or "").rsplit(":", 1)[0]
        role = task._role.get_name() if task._role else None
        if self.group_by == "role" and role:
            # Tasks of a helper role included from a step belong to that step.
            if role in self.quiet_roles and self.step:
                return self.step
            return role
        name = os.path.splitext(os.path.basename(path))[0]
        if name == "main" and role:
            return role
        return name or task.get_name()

    def _write(self, line):
        if QUIET:  # --json: standard output is the result alone
            return
        with self.out:
            sys.stdout.write(line)
            sys.stdout.flush()

    def _announce(self, step, task_name):
        self._write(f"{self.prefix}{step:<24} ... {task_name}\n")

    def _task_done(self):
        if self.timer:
            self.timer.cancel()
            self.timer = None

    def _close_step(self):
        self._task_done()
        if self.step is None:
            return
        outcome = f"changed ({self.step_changed})" if self.step_changed else "ok"
        elapsed = time.monotonic() - self.step_start
        self._write(f"{self.prefix}{self.step:<24} {outcome:<14} {elapsed:6.1f}s\n")
        self.step = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        step = self._step_of(task)
        if step != self.step:
            self._close_step()
            self.step = step
            self.step_start = time.monotonic()
            self.step_changed = 0
        self.task_name = task.get_name()
        self.task_start = time.monotonic()
        self._task_done()
        self.timer = threading.Timer(ANNOUNCE_AFTER, self._announce, (step, self.task_name))
        self.timer.daemon = True
        self.timer.start()

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start

    def v2_runner_on_ok(self, result):
        self._task_done()
        self._log("changed" if result._result.get("changed") else "ok", result)
        if result._result.get("changed"):
            self.step_changed += 1

    def v2_runner_item_on_ok(self, result):
        pass

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._task_done()
        self._log("failed (ignored)" if ignore_errors else "failed", result)
        # The last failure is the one that ended the play: an earlier one was
        # rescued by a block that then failed with its own, clearer reason.
        if ignore_errors:
            return
        res = result._result
        # A loop's failure is its first failed item's ("One or more items failed" says
        # nothing).
        failed_item = next(
            (i for i in res.get("results") or [] if isinstance(i, dict) and i.get("failed")), None
        )
        if failed_item is not None:
            res = failed_item
        msg = res.get("msg") or res.get("stderr") or res.get("module_stderr") or ""
        if res.get("censored") or result._result.get("censored") or "no_log" in str(msg):
            msg = "details hidden (the task handles secrets)"
        self.failure = (self.step, result._task.get_name(), _first_line(msg))

    def v2_runner_on_unreachable(self, result):
        self._task_done()
        self._log("unreachable", result)
        if not self.failure:
            msg = _first_line(result._result.get("msg", "unreachable"))
            self.failure = (self.step, result._task.get_name(), msg)

    def v2_runner_on_skipped(self, result):
        self._task_done()

    def v2_playbook_on_stats(self, stats):
        self._task_done()
        if self.failure:
            step, task, msg = self.failure
            self.step = None
            sys.stdout.write(f"{self.prefix}{step:<24} FAILED\n")
            where = f" (log: {self.log.name})" if self.log else ""
            sys.stderr.write(f"{self.prefix}{msg or 'failed'} [task: {task}]{where}\n")
        else:
            self._close_step()
        sys.stdout.flush()
        sys.stderr.flush()
