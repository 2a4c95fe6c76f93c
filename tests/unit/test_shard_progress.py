"""The ./shard progress callback's one failure line."""

from types import SimpleNamespace

import pytest

from shard_jobs.ansible_plugins.callback import shard_progress


def failed(result: dict):
    """A task result as Ansible hands it to the callback."""
    return SimpleNamespace(
        _result=result,
        _task=SimpleNamespace(get_name=lambda: "a task"),
        _host=SimpleNamespace(get_name=lambda: "localhost"),
    )


@pytest.mark.parametrize(
    "result, line",
    [
        ({"msg": "the reason\nmore"}, "the reason"),
        ({"stderr": "\nwhat stderr said"}, "what stderr said"),
        # A loop: its first failed item says why ("One or more items failed" does not).
        (
            {
                "msg": "One or more items failed",
                "results": [
                    {"failed": False, "msg": "fine"},
                    {"failed": True, "msg": "glance 0123abcd needs more"},
                    {"failed": True, "msg": "a later one"},
                ],
            },
            "glance 0123abcd needs more",
        ),
        ({"msg": "x", "censored": "hidden"}, "details hidden (the task handles secrets)"),
        (
            {"msg": "One or more items failed", "results": [{"failed": True, "censored": "h"}]},
            "details hidden (the task handles secrets)",
        ),
    ],
)
def test_the_failure_line_says_why(result, line):
    callback = shard_progress.CallbackModule()
    callback.v2_runner_on_failed(failed(result))
    assert callback.failure == (None, "a task", line)
