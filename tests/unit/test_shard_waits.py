"""The one wait loop (module_utils/shard_waits.py), on the fake clock."""

import pytest
from ansible.module_utils.shard_waits import POLL_INTERVAL, WaitTimeout, wait_until


def probe_of(*answers):
    """A probe answering each of answers in turn, counting its calls."""
    answers = list(answers)

    def probe():
        probe.calls += 1
        return answers.pop(0)

    probe.calls = 0
    return probe


def test_returns_the_probe_s_first_truthy_value_at_once_when_it_holds(clock):
    probe = probe_of({"id": 1})

    assert wait_until(probe, 10, what="it") == {"id": 1}
    assert probe.calls == 1 and clock.slept == []


def test_looks_again_every_interval_until_it_holds(clock):
    probe = probe_of(None, [], 0, "done")

    assert wait_until(probe, 10, what="it", interval=0.2) == "done"
    assert clock.slept == [0.2, 0.2, 0.2]
    assert clock.now == pytest.approx(1000.6)


def test_polls_at_half_a_second_unless_told(clock):
    wait_until(probe_of(False, True), 10, what="it")

    assert clock.slept == [POLL_INTERVAL] == [0.5]


def test_times_out_after_timeout_seconds_saying_what_was_awaited(clock):
    probe = probe_of(*[False] * 100)

    with pytest.raises(WaitTimeout, match=r"^timed out after 3s waiting for the door$"):
        wait_until(probe, 3, what="the door")

    # Looks at 0, 0.5, ... 3 s: the last one at the deadline.
    assert probe.calls == 7
    assert clock.now == 1003


def test_a_deadline_instead_of_a_timeout(clock):
    probe = probe_of(*[False] * 100)

    with pytest.raises(WaitTimeout, match=r"^timed out waiting for the door$"):
        wait_until(probe, deadline=1001, what="the door")

    assert clock.now == 1001


def test_a_deadline_already_past_still_looks_once(clock):
    assert wait_until(probe_of("here"), deadline=0) == "here"
    with pytest.raises(WaitTimeout):
        wait_until(probe_of(None), deadline=0)
    assert clock.slept == []


def test_on_timeout_says_why_with_the_last_state_and_error_picks_the_exception(clock):
    seen = []

    def probe():
        seen.append(len(seen))
        return False

    class Mine(Exception):
        pass

    with pytest.raises(Mine, match=r"^gave up after 3 looks$"):
        wait_until(probe, 1, on_timeout=lambda: f"gave up after {len(seen)} looks", error=Mine)


def test_a_probe_that_raises_ends_the_wait_at_once(clock):
    def probe():
        raise RuntimeError("the process exited")

    with pytest.raises(RuntimeError, match="exited"):
        wait_until(probe, 10, what="it")
    assert clock.slept == []


def test_needs_a_timeout_or_a_deadline():
    with pytest.raises(ValueError):
        wait_until(lambda: True)
