"""What several unit test modules share: a git identity, ./shard run's arguments."""

import argparse
import os

# Commits in throw-away repositories, whatever the machine's git configuration.
GIT_ENV = dict(
    os.environ,
    GIT_AUTHOR_NAME="Shard Test",
    GIT_AUTHOR_EMAIL="shard@example.org",
    GIT_COMMITTER_NAME="Shard Test",
    GIT_COMMITTER_EMAIL="shard@example.org",
    GIT_CONFIG_NOSYSTEM="1",
)


def run_args(**kw) -> argparse.Namespace:
    """`./shard run shard-nova-compute --build <fixed id>`'s arguments, with KW changed."""
    values = dict(
        job="shard-nova-compute",
        build="0123456789abcdef" * 2,
        src=[],
        var=[],
        cloud=None,
        secret_file=None,
        json=False,
        ara=False,
    )
    values.update(kw)
    return argparse.Namespace(**values)
