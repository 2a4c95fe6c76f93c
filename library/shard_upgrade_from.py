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
  - C(last-good) reads what the last successful run recorded, through Zuul's
    REST API when I(zuul_api) is set (the newest successful build of the same
    job, project and branch that returned the record as an artifact), else in
    I(store); it falls back to C(previous-release) when nothing is recorded.
  - Anything else is an explicit release version (C(33.0.2)) or a git ref of
    the prepared repository (a tag, branch or commit).
  - With I(state=recorded), returns the candidate (its commit and version) as
    the artifact a successful run hands to C(zuul_return), and writes it to
    I(store) when that is a file.
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
  zuul_api:
    description:
      - The tenant's Zuul REST API (C(https://zuul.example.org/api/tenant/openstack)).
        C(last-good) asks its C(builds) endpoint for the newest successful build of
        I(job) for I(project) and I(branch) that carries the record as an artifact.
        Takes precedence over I(store) for reading.
    type: str
  job:
    description: The job whose builds hold the record (C(zuul.job)); for I(zuul_api).
    type: str
  project:
    description: The project of those builds (C(zuul.project.name)); for I(zuul_api).
    type: str
  branch:
    description: Their branch (C(zuul.branch)); for I(zuul_api).
    type: str
  pipeline:
    description:
      - Their pipeline (C(zuul.pipeline)); for I(zuul_api). Only builds of the same
        pipeline count, so that an on-demand run of a proposed change (whose
        candidate is a speculative merge no later run has) is never the last good.
    type: str
  state:
    description:
      - C(resolved) chooses; C(recorded) returns the candidate's record (and
        writes I(store)).
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
    zuul_api: https://zuul.example.org/api/tenant/openstack
    job: shard-nova-compute-upgrade
    project: openstack/nova
    branch: master
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
artifact:
  description:
    - The record as a Zuul artifact (C(name), C(url) relative to the build's
      logs, C(metadata) the record), for C(zuul_return) to return; the next
      run finds it through I(zuul_api).
  returned: state=recorded
  type: dict
"""

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from ansible.module_utils.basic import AnsibleModule

RELEASE_RE = re.compile(r"^\d+(\.\d+){1,3}$")

# The artifact a successful upgrade run returns to Zuul: its metadata is the
# record; its url (relative to the build's logs) the upgrade report.
LAST_GOOD_ARTIFACT = "shard-upgrade-last-good"
LAST_GOOD_REPORT = "shard/upgrade.json"
# Successful builds looked at, newest first (one without the artifact, e.g. a
# run that returned none, is passed over).
ZUUL_BUILDS_LIMIT = 20


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


def zuul_record(module, params, usable):
    """The newest usable record returned as an artifact by a successful build, and where."""
    missing = [k for k in ("job", "project", "branch", "pipeline") if not params[k]]
    if missing:
        module.fail_json(msg=f"zuul_api needs {', '.join(missing)} to find the last good build")
    query = urllib.parse.urlencode(
        dict(
            job_name=params["job"],
            project=params["project"],
            branch=params["branch"],
            pipeline=params["pipeline"],
            result="SUCCESS",
            complete="true",
            limit=ZUUL_BUILDS_LIMIT,
        )
    )
    url = params["zuul_api"].rstrip("/") + "/builds?" + query
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            builds = json.loads(resp.read().decode())
    except urllib.error.HTTPError as exc:
        module.fail_json(msg=f"cannot read the last good builds from {url}: HTTP {exc.code}")
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"cannot read the last good builds from {url}: {exc}")
    if not isinstance(builds, list):
        module.fail_json(msg=f"cannot read the last good builds from {url}: not a list of builds")
    # Newest first; a record this run cannot use (its commit is not here and it
    # names no release) is passed over for the one before.
    for build in builds:
        for artifact in build.get("artifacts") or []:
            record = artifact.get("metadata")
            named = artifact.get("name") == LAST_GOOD_ARTIFACT
            if named and isinstance(record, dict) and usable(record):
                return (
                    record,
                    f"build {build.get('uuid')} of {params['job']} ({params['zuul_api']})",
                )
    return None, f"the successful builds of {params['job']} ({params['zuul_api']})"


def usable_record(params, record):
    """Whether a run can start from a record: its commit is in the repository, or it
    names a release."""
    commit = record.get("commit")
    if commit and git(params["src"], "cat-file", "-e", commit + "^{commit}") is not None:
        return True
    return bool(record.get("version"))


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
            zuul_api=dict(type="str"),
            job=dict(type="str"),
            project=dict(type="str"),
            branch=dict(type="str"),
            pipeline=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not os.path.isdir(os.path.join(params["src"], ".git")):
        module.fail_json(msg=f"missing source tree: {params['src']} is not a git repository")
    candidate = candidate_of(params["src"])

    if params["state"] == "recorded":
        store = params["store"]
        record = {
            "commit": candidate["commit"],
            "version": candidate["version"],
            "build": params["build"],
            "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        artifact = dict(name=LAST_GOOD_ARTIFACT, url=LAST_GOOD_REPORT, metadata=record)
        if not store:
            module.exit_json(
                changed=False,
                candidate=candidate,
                artifact=artifact,
                reason="recorded as an artifact only (no last-good store set)",
            )
        if re.match(r"^https?://", store):
            module.exit_json(
                changed=False,
                candidate=candidate,
                artifact=artifact,
                reason=f"last-good store {store} is read-only here (recorded as an artifact only)",
            )
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
            artifact=artifact,
            reason=f"recorded {candidate['commit'][:12]} as the last good in {store}",
        )

    source = params["source"]
    if source == "last-good":
        if params["zuul_api"]:
            record, where = zuul_record(module, params, lambda r: usable_record(params, r))
        elif params["store"]:
            record, where = read_store(module, params["store"]), params["store"]
        else:
            module.fail_json(
                msg="from: last-good needs Zuul's API (shard_upgrade_zuul_api) or a store "
                "(shard_upgrade_last_good_store)"
            )
        if record and (record.get("commit") or record.get("version")):
            commit = record.get("commit")
            if commit and git(params["src"], "cat-file", "-e", commit + "^{commit}") is not None:
                result = release_or_ref(
                    module,
                    params,
                    commit,
                    f"last good: commit {commit[:12]} recorded by build {record.get('build')} "
                    f"at {record.get('recorded')} in {where}",
                )
            elif record.get("version"):
                result = release_or_ref(
                    module,
                    params,
                    record["version"],
                    f"last good: release {record['version']} recorded at "
                    f"{record.get('recorded')} in {where} (its commit is not in the "
                    "prepared repository)",
                )
            else:
                module.fail_json(
                    msg=f"the last good commit {commit} recorded in {where} is not in "
                    f"{params['src']} and the record has no version"
                )
        else:
            version, why = previous_release(module, params, candidate)
            result = dict(
                kind="release",
                version=version,
                ref=None,
                reason=f"no last good recorded in {where}: falling back to the {why}",
            )
    elif source == "previous-release":
        version, why = previous_release(module, params, candidate)
        result = dict(kind="release", version=version, ref=None, reason=why)
    else:
        result = release_or_ref(module, params, source, f"explicit upgrade source {source}")
    module.exit_json(changed=False, candidate=candidate, **result)


if __name__ == "__main__":
    main()
