"""./shard run interrupted: the cleanup is not given up at the first Ctrl-C."""

import signal
import subprocess

from unit_helpers import run_settings

from shard_jobs import runner

BUILD = "0123456789abcdef" * 2


def _run(in_cleanup):
    run = runner.LocalRun(run_settings(build=BUILD))
    run.in_cleanup = in_cleanup
    run.current = subprocess.Popen(["sleep", "30"], start_new_session=True)
    return run


def test_an_interrupt_stops_a_run_playbook():
    run = _run(in_cleanup=False)
    run.cancel(signal.SIGINT, None)
    assert run.cancelled is True
    assert run.current.wait(10) == -signal.SIGTERM


def test_the_first_interrupt_lets_the_cleanup_finish_the_second_stops_it(capsys):
    run = _run(in_cleanup=True)
    try:
        run.cancel(signal.SIGINT, None)
        assert run.cancelled is False and run.current.poll() is None
        first = capsys.readouterr().err
        assert first.startswith("run: cleaning up the run's resources; interrupt again to stop")

        run.cancel(signal.SIGINT, None)
        assert run.cancelled is True
        assert run.current.wait(10) == -signal.SIGTERM
        second = capsys.readouterr().err
        assert second.strip() == (
            "run: cleanup stopped; the run's resources may remain: finish with "
            f"./shard run shard-nova-compute --cleanup --build {BUILD}"
        )
    finally:
        if run.current.poll() is None:
            run.current.kill()
