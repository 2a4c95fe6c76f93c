"""No secret in anything the tier's runs wrote: logs, reports, outputs.

Runs last: every run of the tier (killed, cleaned up, concurrent, refused,
against a broken cloud) has left its files by then. What is scanned: every
file of every run directory created during the session (logs/, and work/
but for the prepared source trees), and everything the tier's ./shard
commands printed. private/ is not: it holds the job's secrets by design
(inventory and extra vars, 0600 in a 0700 directory), as Zuul's executor does.
What is looked for: every password the embedded cloud generated, the
credentials it hands to jobs (the account's password, the message bus's and
the glance database's passwords), the secrets the tier made up, and keystone
(fernet) tokens; each secret raw, percent-encoded and base64-encoded
(module_utils/shard_secrets.py, written_forms).
"""

import os
import re
from pathlib import Path

import yaml
from faults_helpers import OUTPUTS, SECRETS

from shard_jobs import cloud, paths, rules

FERNET = re.compile(rb"gAAAAA[A-Za-z0-9_=-]{40,}")
SKIP = ("private", os.path.join("work", "src"))


def _strings(value, where=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")
    elif isinstance(value, str):
        yield where, value


def secrets() -> dict[str, str]:
    """What must never be written: name -> value."""
    manifest = cloud.load_manifest()
    found = {}
    generated = yaml.safe_load((paths.CLOUD_DIR / "secrets.yaml").read_text())
    for where, value in _strings(generated):
        found[f"the embedded cloud's {where}"] = value
    handout = yaml.safe_load(Path(manifest["secret_file"]).read_text())
    # Every secret the rules know of: the account's password or application
    # credential secret, the message bus's and the glance database's passwords.
    for where, value in rules.secrets.secret_values(handout).items():
        found[f"the handout's {where}"] = value
    found.update(SECRETS)
    # Short values would match by chance; generated passwords are long.
    return {k: v for k, v in found.items() if isinstance(v, str) and len(v) >= 8}


def files_written(since: set[str]):
    for build in sorted(set(os.listdir(paths.RUNS_DIR)) - since):
        root = paths.RUNS_DIR / build
        for dirpath, dirnames, filenames in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            dirnames[:] = [d for d in dirnames if os.path.join(rel, d).lstrip("./") not in SKIP]
            for name in filenames:
                yield Path(dirpath) / name


def test_no_secret_in_what_the_runs_wrote(session_start):
    before, _ = session_start
    wanted = secrets()
    assert wanted, "no secret to look for"
    hits = []
    material = [(f"output #{i}", text.encode()) for i, text in enumerate(OUTPUTS)]
    files = 0
    for path in files_written(before):
        try:
            material.append((str(path), path.read_bytes()))
        except OSError:
            continue  # a file of a run still going (someone else's)
        files += 1
    for where, data in material:
        for name, form in rules.secrets.secrets_found(data, wanted):
            hits.append(f"{where}: {name} ({form})")  # never the value itself
        if FERNET.search(data):
            hits.append(f"{where}: a keystone token")
    # The tier's runs wrote logs: a scan of printed outputs alone proves nothing.
    assert files > 0, "no file of the tier's runs to scan"
    assert hits == [], "secrets written:\n" + "\n".join(hits)
