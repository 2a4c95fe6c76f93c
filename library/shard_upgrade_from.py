# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: choose the version an upgrade job starts from, and say why."""

DOCUMENTATION = r"""
---
module: shard_upgrade_from
short_description: Resolve the "from" of an upgrade test (previous release, last good, or explicit)
description:
  - C(previous-release) takes the newest release of the series before the
    candidate's, from the git tags of the prepared repository, or from the
    package index when the repository has no such tags. Nothing is
    hard-coded per release cycle.
  - C(last-good) reads what the last successful run recorded in I(store),
    and falls back to C(previous-release) when nothing is recorded.
  - Anything else is an explicit release version (C(33.0.2)) or a git ref of
    the prepared repository (a tag, branch or commit).
  - With I(state=recorded), writes the candidate (its commit and version) to
    I(store) as the new last good, after a successful run.
  - Returns a sentence saying what was chosen and why, for the job's log.
options:
  source:
    description: C(previous-release), C(last-good), a release version or a git ref.
    type: str
    default: previous-release
  src:
    description: The prepared git repository of the project under test (the candidate).
    type: path
    required: true
  package:
    description: Its distribution on the package index.
    type: str
    required: true
  store:
    description:
      - Where the last good run is remembered between runs, a file path (read
        and written) or an http(s) URL (read only, for example a Zuul
        artifact). Required for C(last-good) and I(state=recorded).
    type: str
  state:
    description: C(resolved) chooses; C(recorded) writes the candidate to I(store).
    type: str
    choices: [resolved, recorded]
    default: resolved
  python:
    description: Interpreter whose pip queries the package index.
    type: str
    default: python3
  build:
    description: Build id written with a record.
    type: str
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Choose where the upgrade starts
  shard_upgrade_from:
    source: "{{ shard_upgrade_from }}"
    src: "{{ nova_src }}"
    package: nova
    store: /var/lib/shard-jobs/last-good-nova.json
  register: from_

- name: Say it
  ansible.builtin.debug:
    msg: "{{ from_.reason }}"
"""

RETURN = r"""
kind:
  description:
    - C(release) (install I(version) from the package index) or C(ref)
      (build I(ref) of I(src)).
  returned: state=resolved
  type: str
version:
  description: The release version, for C(release).
  returned: state=resolved
  type: str
ref:
  description: The commit, for C(ref).
  returned: state=resolved
  type: str
candidate:
  description: The candidate's version (nearest tag) and commit.
  returned: always
  type: dict
reason:
  description: What was chosen and why.
  returned: always
  type: str
"""

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

from ansible.module_utils.basic import AnsibleModule

RELEASE_RE = re.compile(r"^\d+(\.\d+){1,3}$")


def _key(version):
    return tuple(int(p) for p in version.split("."))


def git(src, *args):
    out = subprocess.run(["git", "-C", src, *args], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def candidate_of(src):
    tag = git(src, "describe", "--tags", "--abbrev=0")
    commit = git(src, "rev-parse", "HEAD")
    return {"version": tag if tag and RELEASE_RE.match(tag) else None, "commit": commit}


def index_versions(python, package):
    out = subprocess.run(
        [python, "-m", "pip", "index", "versions", package, "--disable-pip-version-check"],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Available versions:\s*(.+)", out.stdout)
    if not match:
        return []
    return [v.strip() for v in match.group(1).split(",") if RELEASE_RE.match(v.strip())]


def previous_release(module, params, candidate):
    if not candidate["version"]:
        module.fail_json(
            msg=f"cannot find the previous release: {params['src']} has no release tag "
            "to tell the candidate's series (use from: <version>)"
        )
    series = _key(candidate["version"])[0]
    tags = [t for t in (git(params["src"], "tag", "--list") or "").split() if RELEASE_RE.match(t)]
    older = sorted((t for t in tags if _key(t)[0] < series), key=_key)
    if older:
        return older[-1], (
            f"previous release of {params['package']}: {older[-1]}, the newest tag of the "
            f"series before the candidate's {candidate['version']} (git tags of {params['src']})"
        )
    versions = index_versions(params["python"], params["package"])
    older = sorted((v for v in versions if _key(v)[0] < series), key=_key)
    if not older:
        module.fail_json(
            msg=f"cannot find a release of {params['package']} before series {series} "
            "in the repository's tags or on the package index"
        )
    return older[-1], (
        f"previous release of {params['package']}: {older[-1]}, the newest release of the "
        f"series before the candidate's {candidate['version']} (package index; the repository "
        "has no tags of earlier series)"
    )


def read_store(module, store):
    try:
        if re.match(r"^https?://", store):
            with urllib.request.urlopen(store, timeout=30) as resp:
                text = resp.read().decode()
        else:
            with open(store) as f:
                text = f.read()
        # An empty store (created ahead, never written) records nothing.
        return json.loads(text) if text.strip() else None
    except FileNotFoundError:
        return None
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        module.fail_json(msg=f"cannot read the last-good store {store}: HTTP {exc.code}")
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"cannot read the last-good store {store}: {exc}")


def release_or_ref(module, params, value, why):
    if RELEASE_RE.match(value):
        return dict(kind="release", version=value, ref=None, reason=why)
    commit = git(params["src"], "rev-parse", "--verify", "--quiet", value + "^{commit}")
    if not commit:
        module.fail_json(
            msg=f"unknown upgrade source {value!r}: neither a release version nor a git ref "
            f"of {params['src']}"
        )
    return dict(kind="ref", version=None, ref=commit, reason=why)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=dict(type="str", default="previous-release"),
            src=dict(type="path", required=True),
            package=dict(type="str", required=True),
            store=dict(type="str"),
            state=dict(type="str", default="resolved", choices=["resolved", "recorded"]),
            python=dict(type="str", default="python3"),
            build=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not os.path.isdir(os.path.join(params["src"], ".git")):
        module.fail_json(msg=f"missing source tree: {params['src']} is not a git repository")
    candidate = candidate_of(params["src"])

    if params["state"] == "recorded":
        store = params["store"]
        if not store:
            module.exit_json(changed=False, candidate=candidate, reason="no last-good store set")
        if re.match(r"^https?://", store):
            module.exit_json(
                changed=False,
                candidate=candidate,
                reason=f"last-good store {store} is read-only here (publish it as an artifact)",
            )
        record = {
            "commit": candidate["commit"],
            "version": candidate["version"],
            "build": params["build"],
            "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        old = read_store(module, store) or {}
        changed = old.get("commit") != record["commit"]
        if changed and not module.check_mode:
            os.makedirs(os.path.dirname(os.path.abspath(store)), exist_ok=True)
            tmp = store + ".tmp"
            with open(tmp, "w") as f:
                json.dump(record, f, indent=2)
            os.replace(tmp, store)
        module.exit_json(
            changed=changed,
            candidate=candidate,
            reason=f"recorded {candidate['commit'][:12]} as the last good in {store}",
        )

    source = params["source"]
    if source == "last-good":
        if not params["store"]:
            module.fail_json(msg="from: last-good needs a store (shard_upgrade_last_good_store)")
        record = read_store(module, params["store"])
        if record and (record.get("commit") or record.get("version")):
            commit = record.get("commit")
            if commit and git(params["src"], "cat-file", "-e", commit + "^{commit}") is not None:
                result = release_or_ref(
                    module,
                    params,
                    commit,
                    f"last good: commit {commit[:12]} recorded by build {record.get('build')} "
                    f"at {record.get('recorded')} in {params['store']}",
                )
            elif record.get("version"):
                result = release_or_ref(
                    module,
                    params,
                    record["version"],
                    f"last good: release {record['version']} recorded at "
                    f"{record.get('recorded')} in {params['store']} (its commit is not in the "
                    "prepared repository)",
                )
            else:
                module.fail_json(
                    msg=f"the last good commit {commit} recorded in {params['store']} is not in "
                    f"{params['src']} and the record has no version"
                )
        else:
            version, why = previous_release(module, params, candidate)
            result = dict(
                kind="release",
                version=version,
                ref=None,
                reason=f"no last good recorded in {params['store']}: falling back to the {why}",
            )
    elif source == "previous-release":
        version, why = previous_release(module, params, candidate)
        result = dict(kind="release", version=version, ref=None, reason=why)
    else:
        result = release_or_ref(module, params, source, f"explicit upgrade source {source}")
    module.exit_json(changed=False, candidate=candidate, **result)


if __name__ == "__main__":
    main()
