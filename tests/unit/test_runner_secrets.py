"""./shard run keeps the target cloud's credentials on disk only while a playbook runs.

The run directory stays after the run (its logs), and private/ with it: what
holds a secret there must be gone at the end of every playbook, whether it
succeeded, failed or was interrupted (--cleanup --build reads the credentials
again from where the run got them).
"""

from pathlib import Path

import pytest
from unit_helpers import run_settings

from shard_jobs import runner

SECRET = "s3cret-p@ss:w/rd"


class FakePlaybook:
    def __init__(self, seen, rc=0, raises=None):
        self.seen, self.rc, self.raises = seen, rc, raises
        self.pid = 0

    def __call__(self, cmd, **kw):
        # What ansible-playbook would read: the secret is there while it runs.
        files = [a[1:] for a in cmd if a.startswith("@")]
        self.seen.append(any(SECRET in Path(f).read_text() for f in files))
        if self.raises:
            raise self.raises
        return self

    def wait(self):
        return self.rc


def _run(tmp_path):
    run = runner.LocalRun(run_settings())
    run.dir = tmp_path
    run.work, run.log_root, run.private = (tmp_path / d for d in ("work", "logs", "private"))
    for d in (run.work, run.log_root, run.private):
        d.mkdir()
    run.secret_values = {"shard_cloud": {"cloud": {"auth": {"password": SECRET}}}}
    (run.private / "zuul-vars.yaml").write_text("zuul: {}\n")
    return run


def _holding_the_secret(run):
    return [p.name for p in run.private.rglob("*") if p.is_file() and SECRET in p.read_text()]


@pytest.mark.parametrize(("rc", "raises"), [(0, None), (2, None), (None, KeyboardInterrupt())])
def test_no_copy_of_the_secret_outlives_a_playbook(tmp_path, monkeypatch, rc, raises):
    run = _run(tmp_path)
    seen = []
    monkeypatch.setattr(runner.subprocess, "Popen", FakePlaybook(seen, rc, raises))
    playbook = run.job.post_run[-1]
    if raises:
        with pytest.raises(type(raises)):
            run.run_playbook("post-run", 0, playbook, {"zuul_success": False})
    else:
        assert run.run_playbook("post-run", 0, playbook, {"zuul_success": False}) == rc
    assert seen == [True]  # the playbook had it
    assert _holding_the_secret(run) == []
