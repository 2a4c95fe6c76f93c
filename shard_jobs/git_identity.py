"""The git identity of every commit shard-jobs makes: the merger emulation's
(a source release, a tree's uncommitted changes) and the tests' throw-away
repositories. Set in the environment, so the machine's git configuration (which
may have no identity at all) is neither needed nor changed."""

import os

IDENTITY = {
    "GIT_AUTHOR_NAME": "shard-jobs",
    "GIT_AUTHOR_EMAIL": "shard@localhost",
    "GIT_COMMITTER_NAME": "shard-jobs",
    "GIT_COMMITTER_EMAIL": "shard@localhost",
}


def environment(**extra: str) -> dict:
    """This process's environment with the identity (and EXTRA) set, for git."""
    return {**os.environ, **IDENTITY, **extra}
