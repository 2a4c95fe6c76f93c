"""Each molecule scenario (one per role) passes `molecule test`, and leaves nothing behind."""

import pytest
from conftest import RUNS, SCENARIOS, TIMEOUT, _temp_dirs


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario, molecule_runs, request, record_property):
    run = molecule_runs["futures"][scenario].result(timeout=2 * TIMEOUT + 1800)
    request.config.stash.setdefault(RUNS, []).append(run)
    record_property("seconds", round(run.seconds, 1))
    assert run.rc == 0, (
        f"molecule test -s {scenario}: rc {run.rc} {run.note} after {run.seconds:.0f}s; "
        f"full log {run.log}; its end:\n{run.tail()}"
    )
    left = _temp_dirs(scenario) - molecule_runs["temp_dirs_before"][scenario]
    assert not left, f"molecule test -s {scenario} left {sorted(map(str, left))}"
