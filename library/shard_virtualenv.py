# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: a cached, locked virtualenv, optionally layered on another one."""

DOCUMENTATION = r"""
---
module: shard_virtualenv
short_description: Build a virtualenv once per set of inputs, shareable between concurrent jobs
description:
  - Creates a virtualenv and installs packages, requirement files and
    editable source trees into it, under pip constraints.
  - The inputs (interpreter version, packages, the content of the
    requirement and constraint files, the layering) are hashed into a stamp
    kept in the virtualenv; with the same stamp nothing is done. A C({key})
    in I(path) is replaced by that hash, so that a cache holds one virtualenv
    per input set.
  - Creation holds an exclusive lock (C(flock) on I(path).lock), and reading
    the stamp a shared one, so that concurrent builds on one node share a
    cache safely; a rebuild removes the stamp before anything else.
  - With I(layered_on), the new virtualenv sees the site-packages of another
    one (a C(.pth) file) and installs only I(editable) trees itself; the
    dependencies of a project under test are installed once and a build of
    a changed project then takes seconds.
options:
  path:
    description: Directory of the virtualenv; C({key}) is replaced by the inputs' hash.
    type: path
    required: true
  state:
    description: C(present) builds it, C(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  python:
    description: Interpreter that creates the virtualenv.
    type: str
    default: python3
  packages:
    description: Requirement specifiers to install.
    type: list
    elements: str
    default: []
  requirements:
    description: Requirement files to install.
    type: list
    elements: path
    default: []
  constraints:
    description:
      - Constraints file for every install (editable trees are installed without
        their dependencies, so constraints do not apply to them).
    type: path
  unconstrained:
    description:
      - Distributions whose pins are dropped from I(constraints), such as the
        project under test when another release of it is installed (what
        devstack's edit-constraints does).
    type: list
    elements: str
    default: []
  layered_on:
    description:
      - Another virtualenv whose packages this one uses. A layered virtualenv
        installs its own I(packages) without their dependencies.
    type: path
  editable:
    description: Source trees installed in editable mode, without their dependencies.
    type: list
    elements: path
    default: []
  siblings:
    description:
      - Source trees installed in editable mode only if their distribution is
        already installed in I(layered_on) (it is a dependency), as
        tox-siblings does for Depends-On and required projects.
    type: list
    elements: path
    default: []
  environment:
    description: Extra environment for pip (for instance pbr's SKIP_* switches).
    type: dict
    default: {}
  update:
    description:
      - Install into an existing virtualenv instead of building it anew when
        the inputs change (for a virtualenv that running services use).
    type: bool
    default: false
  timeout:
    description: Seconds to wait for the lock.
    type: int
    default: 1800
  freeze:
    description:
      - A file to write what the virtualenv holds into, one distribution a
        line in C(pip freeze)'s form (an editable tree as C(-e URL), its
        name and version in a comment), its own layer and the one below.
      - Read with C(importlib.metadata) in the virtualenv's interpreter;
        C(pip freeze) says the same and costs the node several times the CPU.
    type: path
  source_record:
    description:
      - A file to write the commit of the first I(editable) tree into
        (C(git log -1 --format='%H %s')).
    type: path
extends_documentation_fragment:
  - shard.phase
author:
  - shard-jobs contributors
"""

EXAMPLES = r"""
- name: Dependencies of nova, shared by builds
  shard_virtualenv:
    path: "{{ cache }}/deps/nova-{key}"
    requirements: ["{{ nova_src }}/requirements.txt"]
    constraints: "{{ workspace }}/constraints.txt"
  register: deps

- name: The build, nova from its source, on top
  shard_virtualenv:
    path: "{{ workspace }}/venv"
    layered_on: "{{ deps.path }}"
    editable: ["{{ nova_src }}"]
    siblings: ["{{ os_vif_src }}"]
"""

RETURN = r"""
path:
  description: The virtualenv's directory (with C({key}) replaced).
  returned: always
  type: str
python:
  description: The virtualenv's interpreter.
  returned: always
  type: str
key:
  description: Hash of the inputs.
  returned: always
  type: str
installed_siblings:
  description: Sibling trees that were installed.
  returned: always
  type: list
  elements: str
recorded:
  description: The record files (I(freeze), I(source_record)) written or rewritten.
  returned: always
  type: list
  elements: str
"""

import configparser
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time

from ansible.module_utils import shard_phases
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.shard_waits import WaitTimeout, wait_until

# Not shard_jobs.tool_venv.build_once, the controller's builder: this runs on a
# job's node under Ansible, where only module_utils travel with a module, and
# jobs share its virtualenvs (readers take a shared lock; the stamp, JSON,
# also names the installed siblings).
STAMP = ".shard-stamp"


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _python_version(module, python):
    rc, out, err = module.run_command([python, "-c", "import sys; print(sys.version)"])
    if rc != 0:
        module.fail_json(msg=f"interpreter {python} does not run: {err.strip()}")
    return out.strip()


def dist_name(src):
    """Distribution name of a source tree (setup.cfg or pyproject.toml), or None."""
    cfg = os.path.join(src, "setup.cfg")
    if os.path.exists(cfg):
        parser = configparser.ConfigParser()
        try:
            parser.read(cfg)
            name = parser.get("metadata", "name", fallback=None)
        except configparser.Error:
            name = None
        if name:
            return name
    pyproject = os.path.join(src, "pyproject.toml")
    if os.path.exists(pyproject):
        with open(pyproject) as f:
            text = f.read()
        match = re.search(r'^\[project\][^\[]*?^name\s*=\s*["\']([^"\']+)', text, re.M | re.S)
        if match:
            return match.group(1)
    return None


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _site_packages(python):
    out = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def _installed(python):
    code = (
        "import importlib.metadata as m, json;"
        "print(json.dumps(sorted({d.metadata['Name'] for d in m.distributions()"
        " if d.metadata['Name']})))"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return {_canonical(n) for n in json.loads(out.stdout)}


# Runs in the virtualenv's interpreter: its distributions (the layer below
# included, through the .pth file), editable ones with their URL.
FREEZE_CODE = r"""
import importlib.metadata as m, json
seen = {}
for d in m.distributions():
    name = d.metadata["Name"]
    if not name or name.lower() in seen:
        continue
    try:
        direct = json.loads(d.read_text("direct_url.json") or "null") or {}
    except ValueError:
        direct = {}
    url = direct.get("url") if (direct.get("dir_info") or {}).get("editable") else None
    seen[name.lower()] = [name, d.version, url]
print(json.dumps(sorted(seen.values(), key=lambda v: v[0].lower())))
"""


def freeze_text(distributions):
    """pip freeze's form of [name, version, editable URL or None] entries."""
    lines = []
    for name, version, url in distributions:
        lines.append(f"-e {url}  # {name}=={version}" if url else f"{name}=={version}")
    return "\n".join(lines) + "\n"


def _write_if_changed(path, text):
    try:
        with open(path) as f:
            if f.read() == text:
                return False
    except OSError:
        pass
    tmp = path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return True


def write_records(module, params, venv):
    """Write the freeze and source records; the paths written (changed)."""
    written = []
    if params["freeze"]:
        python = os.path.join(venv, "bin", "python")
        rc, out, err = module.run_command([python, "-c", FREEZE_CODE])
        if rc != 0:
            module.fail_json(msg=f"cannot list what {venv} holds: {err.strip()[-300:]}")
        if _write_if_changed(params["freeze"], freeze_text(json.loads(out))):
            written.append(params["freeze"])
    if params["source_record"] and params["editable"]:
        src = params["editable"][0]
        rc, out, err = module.run_command(["git", "-C", src, "log", "-1", "--format=%H %s"])
        text = out if rc == 0 else f"no git commit in {src}: {err.strip()[-200:]}\n"
        if _write_if_changed(params["source_record"], text):
            written.append(params["source_record"])
    return written


def inputs_key(params, python_version):
    digest = hashlib.sha256()
    digest.update(python_version.encode())
    for item in params["packages"]:
        digest.update(b"pkg:" + item.encode())
    for path in params["requirements"] + ([params["constraints"]] if params["constraints"] else []):
        digest.update(b"file:" + _read(path))
    for item in params["unconstrained"]:
        digest.update(b"free:" + item.encode())
    for item in [params["layered_on"] or ""] + params["editable"] + params["siblings"]:
        digest.update(b"tree:" + item.encode())
    return digest.hexdigest()[:16]


class Builder:
    def __init__(self, module, path, key):
        self.module = module
        self.path = path
        self.key = key
        self.python = os.path.join(path, "bin", "python")
        self.env = dict(os.environ)
        self.env.update({k: str(v) for k, v in module.params["environment"].items()})
        self.env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    def run(self, cmd, what):
        rc, out, err = self.module.run_command(cmd, environ_update=self.env)
        if rc != 0:
            tail = "\n".join((err or out).strip().splitlines()[-15:])
            self.module.fail_json(msg=f"{what} failed in {self.path}", stderr=tail, cmd=cmd)
        return out

    def constraints(self, path, unconstrained):
        """The constraints file, without the pins of the unconstrained distributions."""
        if not unconstrained:
            return path
        free = {_canonical(n) for n in unconstrained}
        kept = []
        with open(path) as f:
            for line in f:
                name = re.split(r"[=<>!~;\[ ]", line.strip(), maxsplit=1)[0]
                if not name or _canonical(name) not in free:
                    kept.append(line)
        edited = os.path.join(self.path, "constraints.txt")
        with open(edited, "w") as f:
            f.writelines(kept)
        return edited

    def build(self):
        params = self.module.params
        reuse = params["update"] and os.path.exists(self.python)
        # The stamp goes first: a virtualenv half removed or half updated is never
        # taken for a complete one (rmtree removes in no particular order).
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.path, STAMP))
        if os.path.exists(self.path) and not reuse:
            shutil.rmtree(self.path)
        layered = params["layered_on"]
        venv = [params["python"], "-m", "venv"]
        # A layered virtualenv borrows pip from the one below it.
        if not reuse:
            self.run(
                venv + (["--without-pip"] if layered else []) + [self.path],
                "creating the virtualenv",
            )
        if layered:
            below = _site_packages(os.path.join(layered, "bin", "python"))
            with open(os.path.join(_site_packages(self.python), "_shard_layer.pth"), "w") as f:
                f.write(below + "\n")
        pip = [self.python, "-m", "pip", "install", "-q"]
        constraints = []
        if params["constraints"]:
            constraints = ["-c", self.constraints(params["constraints"], params["unconstrained"])]
        if not layered:
            # The pip a Python ships can be years old; a current resolver is
            # orders of magnitude faster on large constraint sets.
            self.run(pip + constraints + ["pip"], "upgrading pip")
        if params["packages"] or params["requirements"]:
            # A layered virtualenv installs its own copy even when the layer
            # below has the same version (console scripts live in bin/).
            own = ["--no-deps", "--ignore-installed"] if layered else []
            args = own + list(params["packages"])
            for req in params["requirements"]:
                args += ["-r", req]
            self.run(pip + constraints + args, "installing packages")
        siblings = []
        if params["siblings"]:
            present = _installed(self.python)
            for src in params["siblings"]:
                name = dist_name(src)
                if name and _canonical(name) in present:
                    siblings.append(src)
        for src in params["editable"] + siblings:
            self.run(
                pip + ["--no-deps", "--no-build-isolation", "-e", src],
                f"installing {src} (editable)",
            )
        with open(os.path.join(self.path, STAMP), "w") as f:  # last: marks it complete
            json.dump({"key": self.key, "siblings": siblings, "built": time.time()}, f)
        return siblings


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            python=dict(type="str", default="python3"),
            packages=dict(type="list", elements="str", default=[]),
            requirements=dict(type="list", elements="path", default=[]),
            constraints=dict(type="path"),
            layered_on=dict(type="path"),
            editable=dict(type="list", elements="path", default=[]),
            siblings=dict(type="list", elements="path", default=[]),
            unconstrained=dict(type="list", elements="str", default=[]),
            environment=dict(type="dict", default={}),
            update=dict(type="bool", default=False),
            timeout=dict(type="int", default=1800),
            freeze=dict(type="path"),
            source_record=dict(type="path"),
            phase=shard_phases.PHASE_OPTION,
        ),
        supports_check_mode=True,
    )
    shard_phases.module_event(module, "start")
    params = module.params
    for path in params["requirements"] + params["editable"] + params["siblings"]:
        if not os.path.exists(path):
            module.fail_json(msg=f"missing source: {path} does not exist")
    if params["constraints"] and not os.path.exists(params["constraints"]):
        module.fail_json(msg=f"missing constraints file: {params['constraints']}")

    if params["state"] == "absent":
        path = params["path"]
        exists = os.path.exists(path)
        if exists and not module.check_mode:
            shutil.rmtree(path)
        shard_phases.exit_json(
            module,
            changed=exists,
            path=path,
            python=None,
            key=None,
            installed_siblings=[],
            recorded=[],
        )

    key = inputs_key(params, _python_version(module, params["python"]))
    path = params["path"].replace("{key}", key)
    result = dict(path=path, python=os.path.join(path, "bin", "python"), key=key)

    def current():
        try:
            with open(os.path.join(path, STAMP)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    deadline = time.monotonic() + params["timeout"]

    def take(lock, kind):
        def taken():
            try:
                fcntl.flock(lock, kind | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        # Polled, not a blocking flock: a blocking one has no timeout. Once a
        # second: the holder builds a virtualenv, minutes.
        try:
            wait_until(taken, deadline=deadline, interval=1)
        except WaitTimeout:
            module.fail_json(msg=f"timed out waiting for the lock on {path}")

    # Read under the lock too (shared): while another job rebuilds the
    # virtualenv, what it holds is neither the old one nor the new one.
    if os.path.exists(path + ".lock"):
        with open(path + ".lock", "a") as lock:
            take(lock, fcntl.LOCK_SH)
            stamp = current()
    else:
        stamp = current()
    if stamp and stamp.get("key") == key:
        recorded = [] if module.check_mode else write_records(module, params, path)
        shard_phases.exit_json(
            module,
            changed=bool(recorded),
            installed_siblings=stamp.get("siblings", []),
            recorded=recorded,
            **result,
        )
    if module.check_mode:
        shard_phases.exit_json(module, changed=True, installed_siblings=[], recorded=[], **result)

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".lock", "w") as lock:
        take(lock, fcntl.LOCK_EX)
        # Another job may have built it while we waited.
        stamp = current()
        if stamp and stamp.get("key") == key:
            siblings, changed = stamp.get("siblings", []), False
        else:
            siblings, changed = Builder(module, path, key).build(), True
    recorded = write_records(module, params, path)
    shard_phases.exit_json(
        module,
        changed=changed or bool(recorded),
        installed_siblings=siblings,
        recorded=recorded,
        **result,
    )


if __name__ == "__main__":
    main()
