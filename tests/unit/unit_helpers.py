"""What several unit test modules share: a git identity, ./shard run's settings, Jinja
evaluated as a play would with the shard role's filters, a play run on local hosts."""

import json
import os
import subprocess
import sys

import yaml

from shard_jobs import git_identity, paths
from shard_jobs.settings import RunSettings

# Commits in throw-away repositories, whatever the machine's git configuration
# (the system one too: it may sign commits or run hooks).
GIT_ENV = git_identity.environment(GIT_CONFIG_NOSYSTEM="1")


def run_settings(**kw) -> RunSettings:
    """`./shard run shard-nova-compute --build <fixed id>`'s settings, with KW changed."""
    return RunSettings(**{"job": "shard-nova-compute", "build": "0123456789abcdef" * 2, **kw})


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


def playbook(tmp_path, play, **hosts):
    """ansible-playbook of one play on local hosts (name=host vars), as the roles find the
    modules, with zuul_return as ./shard run provides it; the JSON callback's output."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"all": {"hosts": {name: dict(local, **v) for name, v in hosts.items()}}}
    (tmp_path / "play.yaml").write_text(yaml.safe_dump([play]))
    (tmp_path / "hosts.yaml").write_text(yaml.safe_dump(inventory))
    env = dict(
        os.environ,
        ANSIBLE_LIBRARY=str(paths.LIBRARY),
        ANSIBLE_MODULE_UTILS=str(paths.REPO / "module_utils"),
        ANSIBLE_ACTION_PLUGINS=str(paths.REPO / "shard_jobs" / "ansible_plugins" / "action"),
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="true",
    )
    command = [paths.bin_path("ansible-playbook"), "-i", str(tmp_path / "hosts.yaml")]
    return subprocess.run(
        [*command, str(tmp_path / "play.yaml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
