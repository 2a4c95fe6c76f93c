"""What several unit test modules share: a git identity, ./shard run's arguments, Jinja
evaluated as a play would with the shard role's filters."""

import argparse
import json
import os
import subprocess

from shard_jobs import paths

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


def jinja(expression: str, **variables) -> dict:
    """Evaluate an expression as a play would, with the shard role's filters."""
    env = dict(
        os.environ,
        ANSIBLE_FILTER_PLUGINS=str(paths.ROLES / "shard" / "filter_plugins"),
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="true",
    )
    proc = subprocess.run(
        [
            paths.bin_path("ansible"),
            "localhost",
            "-m",
            "ansible.builtin.debug",
            "-a",
            f"msg={{{{ {expression} }}}}",
            "-e",
            json.dumps(variables),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
