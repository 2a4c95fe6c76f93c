"""Fixtures of the zuul tier: one real Zuul for the whole session (see zuul_site.py)."""

import time

import job_runs
import pytest
import zuul_site

# The operator's view of the embedded cloud (a fixture).
admin_conn = job_runs.admin_conn


@pytest.fixture(scope="session")
def site():
    """Zuul with ZooKeeper, sshd, MariaDB and local git repositories; stopped at the end."""
    started = time.monotonic()
    s = zuul_site.Site()
    try:
        s.prepare()
        zuul_site.say(f"prepared in {time.monotonic() - started:.0f}s: {s.work}")
        s.start()
        zuul_site.say(f"Zuul is up after {time.monotonic() - started:.0f}s: {s.web_url}")
        yield s
    finally:
        s.stop()
        left = s.listeners()
        assert not left, f"ports still listening after the Zuul site stopped: {left}"
        zuul_site.say(f"stopped; logs and job dirs kept in {s.work}")
