"""The Ansible collections this repository uses (requirements.yml) and whether they are here.

requirements.yml, at the top of the repository in ansible-galaxy's format, declares every
collection the roles, playbooks and molecule scenarios use, each with a version range.

The check is offline first. The collections normally come from the `ansible` package pinned
in constraints.txt (the tool virtualenv has it; Zuul's executor installs its own), and Galaxy
cannot be reached from every machine, CI's among them: a check that asked Galaxy first would
fail or hang where the bundle is all that is needed. So ensure() reads the MANIFEST.json of
the collections Ansible would load, and only when one is missing or out of range tries
ansible-galaxy, with a timeout; when that fails too, each problem is one line saying what to do.

used_collections() is what the lint tier (tests/lint/test_requirements_yml.py) compares with
requirements.yml: the FQCNs in task keys, lookups, filters and tests, `collections:` keywords,
plugin settings (callbacks, strategy, connection), collection roles and Python imports of
`ansible_collections.*`.
"""

import json
import os
import re
import subprocess
from pathlib import Path
from typing import NamedTuple

import yaml

REQUIREMENTS = "requirements.yml"
SCANNED_DIRS = ("roles", "playbooks", "molecule", "library", "module_utils")
NOT_COLLECTIONS = {"ansible.builtin", "ansible.legacy"}  # ansible-core's own
DEFAULT_COLLECTIONS_PATHS = ("~/.ansible/collections", "/usr/share/ansible/collections")
GALAXY_TIMEOUT = 120  # seconds for the whole ansible-galaxy install
REMEDY = (
    "bump `ansible` in constraints.txt (or pip install a newer `ansible`) "
    "or run ansible-galaxy collection install -r requirements.yml where Galaxy answers"
)

_NAME = r"[a-z][a-z0-9_]*"
_FQCN = rf"{_NAME}\.{_NAME}(?:\.[a-z_][a-z0-9_]*)+"  # namespace.collection.plugin[.more]
_Q = "['\"]"
# Plugins named inside Jinja: {{ x | ns.c.filter }}, x is ns.c.test, lookup('ns.c.x'),
# map('ns.c.filter'), select('ns.c.test'), selectattr('attr', 'ns.c.test').
JINJA_USES = re.compile(
    rf"\|\s*({_FQCN})"
    rf"|\bis\s+(?:not\s+)?({_FQCN})"
    rf"|\b(?:lookup|query|q|map|select|reject)\(\s*{_Q}({_FQCN}){_Q}"
    rf"|\b(?:selectattr|rejectattr)\(\s*{_Q}[^'\"]*{_Q}\s*,\s*{_Q}({_FQCN}){_Q}"
)
JINJA_BLOCK = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
PY_IMPORT = re.compile(rf"\bansible_collections\.({_NAME}\.{_NAME})\b")
# Keys whose whole value is Jinja without braces.
CONDITIONALS = {"when", "failed_when", "changed_when", "until", "that"}
# Settings naming plugins (ansible.cfg keys, ANSIBLE_* variables, ansible_* host vars).
PLUGIN_SETTINGS = {
    "action",
    "local_action",
    "module",
    "callbacks_enabled",
    "callback_whitelist",
    "stdout_callback",
    "strategy",
    "connection",
    "become_method",
    "cache_plugin",
    "plugin",
    "role",
}


def collection_of(fqcn: str) -> str:
    return ".".join(fqcn.split(".")[:2])


# --- requirements.yml -------------------------------------------------------------------


def load_requirements(path: Path) -> dict[str, str]:
    """The collections of a requirements.yml: {name: version range ('*' when none)}."""
    data = yaml.safe_load(path.read_text()) or {}
    entries = (data.get("collections") or []) if isinstance(data, dict) else []
    declared = {}
    for entry in entries:
        name, version = (entry, "*") if isinstance(entry, str) else (entry.get("name"), None)
        if version is None:
            version = str(entry.get("version") or "*")
        if not isinstance(name, str) or not re.fullmatch(rf"{_NAME}\.{_NAME}", name):
            raise ValueError(f"{path}: {entry!r} is not a collection name (namespace.name)")
        declared[name] = version
    return declared


# --- version ranges, as ansible-galaxy reads them -----------------------------------------


def _version_key(version: str) -> tuple:
    """Semantic-version ordering: 2.4 == 2.4.0, 1.0.0-rc1 < 1.0.0, build metadata ignored."""
    core, _, pre = version.strip().split("+")[0].partition("-")
    numbers = [int(n) for n in core.split(".")]
    numbers += [0] * (3 - len(numbers))
    if not pre:
        return (tuple(numbers), 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (tuple(numbers), 0, parts)


_OPERATORS = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "!=": lambda a, b: a != b,
    "==": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "=": lambda a, b: a == b,
}


def version_matches(version: str, spec: str) -> bool:
    """Whether version meets spec: comma-separated `>=`, `>`, `<=`, `<`, `==`, `!=`, a bare
    version (==) or `*` -- ansible-galaxy's meets_requirements()."""
    if version == "*":  # a collection that does not say its version (a source checkout)
        return True
    for clause in spec.split(","):
        clause = clause.strip()
        if clause in ("*", ""):
            continue
        op = next((o for o in _OPERATORS if clause.startswith(o)), "==")
        wanted = clause[len(op) :] if clause.startswith(op) else clause
        if not _OPERATORS[op](_version_key(version), _version_key(wanted)):
            return False
    return True


# --- what Ansible would load ----------------------------------------------------------------


class Installed(NamedTuple):
    version: str
    path: Path  # the collection's directory


def search_paths(venv_python: str | Path) -> list[Path]:
    """The directories Ansible searches for collections, in its order: the collections path
    (ANSIBLE_COLLECTIONS_PATH or Ansible's default), then <entry>/ansible_collections for
    each entry of the interpreter's sys.path (its site-packages: the `ansible` bundle)."""
    configured = os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.environ.get(
        "ANSIBLE_COLLECTIONS_PATHS"
    )
    found = [Path(p).expanduser() for p in configured.split(os.pathsep)] if configured else []
    found = found or [Path(p).expanduser() for p in DEFAULT_COLLECTIONS_PATHS]
    proc = subprocess.run(
        [str(venv_python), "-c", "import json, sys; print(json.dumps(sys.path))"],
        capture_output=True,
        text=True,
        check=True,
    )
    found += [Path(entry) for entry in json.loads(proc.stdout) if entry]
    return found


def installed_collections(paths: list[Path]) -> dict[str, Installed]:
    """{namespace.name: Installed} from the MANIFEST.json (galaxy.yml for a source checkout)
    under each path's ansible_collections/; the first path holding a collection wins, as
    in Ansible."""
    found: dict[str, Installed] = {}
    for path in paths:
        root = path if path.name == "ansible_collections" else path / "ansible_collections"
        if not root.is_dir():
            continue
        for coll in sorted(p for p in root.glob("*/*") if p.is_dir()):
            name = f"{coll.parent.name}.{coll.name}"
            if name in found:
                continue
            if (coll / "MANIFEST.json").is_file():
                info = json.loads((coll / "MANIFEST.json").read_text())["collection_info"]
                found[name] = Installed(str(info.get("version") or "*"), coll)
            elif (coll / "galaxy.yml").is_file():
                info = yaml.safe_load((coll / "galaxy.yml").read_text()) or {}
                found[name] = Installed(str(info.get("version") or "*"), coll)
    return found


def unmet(declared: dict[str, str], installed: dict[str, Installed]) -> dict[str, str]:
    """{collection: what is wrong} for each declared collection missing or out of range."""
    wrong = {}
    for name, spec in declared.items():
        have = installed.get(name)
        if have is None:
            wrong[name] = f"collection {name} {spec} is not installed"
        elif not version_matches(have.version, spec):
            where = "ansible bundle" if "site-packages" in have.path.parts else str(have.path)
            wrong[name] = f"collection {name} {spec} is not installed ({where} has {have.version})"
    return wrong


# --- what the repository uses -------------------------------------------------------------


def _jinja_uses(text: str, whole: bool):
    """(offset, fqcn) of the plugins Jinja in text names; whole: text is all Jinja."""
    blocks = [(0, text)] if whole else [(m.start(), m.group()) for m in JINJA_BLOCK.finditer(text)]
    for start, block in blocks:
        for m in JINJA_USES.finditer(block):
            yield start + m.start(), next(g for g in m.groups() if g)


def _scalar(node, pattern: str) -> str | None:
    """The node's text when it is a scalar matching pattern entirely."""
    if isinstance(node, yaml.ScalarNode) and re.fullmatch(pattern, node.value):
        return node.value
    return None


def _yaml_uses(node, key, add):
    """Walk a composed YAML node (no tags constructed: !unsafe and !vault are fine)."""
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            name = k.value if isinstance(k, yaml.ScalarNode) else ""
            m = re.fullmatch(rf"(?:with_)?({_FQCN})", name)
            if m:  # a task's action, or with_<lookup>
                add(m.group(1), k.start_mark.line + 1)
            if name.lower().removeprefix("ansible_") in PLUGIN_SETTINGS and _scalar(v, "(?s).*"):
                for token in re.split(r"[\s,]+", v.value):
                    if re.fullmatch(_FQCN, token):
                        add(token, v.start_mark.line + 1)
            if name == "collections" and isinstance(v, yaml.SequenceNode):
                for item in v.value:
                    if _scalar(item, rf"{_NAME}\.{_NAME}"):
                        add(item.value + ".*", item.start_mark.line + 1)
            if name.endswith(("include_role", "import_role")) and isinstance(v, yaml.MappingNode):
                for rk, rv in v.value:
                    if _scalar(rk, "name") and _scalar(rv, _FQCN):
                        add(rv.value, rv.start_mark.line + 1)
            _yaml_uses(v, name, add)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            if key in ("roles", "dependencies") and _scalar(item, _FQCN):
                add(item.value, item.start_mark.line + 1)
            _yaml_uses(item, key, add)
    elif isinstance(node, yaml.ScalarNode):
        text = node.value
        block = node.style in ("|", ">")  # it starts on the line after the key
        for offset, fqcn in _jinja_uses(text, key in CONDITIONALS):
            # A literal block keeps its lines; other scalars fold them: their first line.
            below = text.count("\n", 0, offset) if node.style == "|" else 0
            add(fqcn, line + block + below)


def _file_uses(path: Path, add):
    text = path.read_text(errors="replace")
    if path.suffix == ".py":
        for m in PY_IMPORT.finditer(text):
            add(m.group(1) + ".*", text.count("\n", 0, m.start()) + 1)
    elif path.suffix in (".yaml", ".yml"):
        try:
            for document in yaml.compose_all(text, Loader=yaml.SafeLoader):
                if document is not None:
                    _yaml_uses(document, None, add)
            return
        except yaml.YAMLError:
            pass  # not YAML after all (yamllint says so): read it as a template
    if path.suffix != ".py":
        for offset, fqcn in _jinja_uses(text, False):
            add(fqcn, text.count("\n", 0, offset) + 1)


def used_collections(repo: Path) -> dict[str, list[str]]:
    """{collection: ["path:line", ...]} for every collection the Ansible content of repo
    uses (YAML and Jinja templates of SCANNED_DIRS; Python there for its imports)."""
    repo = Path(repo)
    used: dict[str, list[str]] = {}
    for top in SCANNED_DIRS:
        for root, dirs, files in os.walk(repo / top):  # symlinked directories: not followed
            dirs.sort()
            for name in sorted(files):
                path = Path(root) / name
                if path.suffix not in (".yaml", ".yml", ".j2", ".py"):
                    continue
                rel = path.relative_to(repo)

                def add(fqcn: str, line: int, rel=rel):
                    coll = collection_of(fqcn)
                    place = f"{rel}:{line}"
                    if coll not in NOT_COLLECTIONS and place not in used.get(coll, []):
                        used.setdefault(coll, []).append(place)

                _file_uses(path, add)
    return dict(sorted(used.items()))


# --- ./shard's check ---------------------------------------------------------------------


def ensure(repo: Path, venv_python: str | Path, install_dir: Path | None = None) -> list[str]:
    """Make the collections of requirements.yml loadable; one line per problem left ([]: ok).

    Offline first: nothing is asked of Galaxy while the installed collections satisfy
    requirements.yml. Otherwise ansible-galaxy (next to venv_python) installs the missing ones
    into install_dir (default: the first directory of Ansible's collections path,
    ~/.ansible/collections unless ANSIBLE_COLLECTIONS_PATH says otherwise)."""
    requirements = Path(repo) / REQUIREMENTS
    if not requirements.is_file():
        return []
    declared = load_requirements(requirements)
    paths = search_paths(venv_python)
    wrong = unmet(declared, installed_collections(paths))
    if not wrong:
        return []
    galaxy = Path(venv_python).parent / "ansible-galaxy"
    cmd = [str(galaxy), "collection", "install", "--force", "--timeout", "15"]
    cmd += ["-p", str(install_dir or paths[0])]
    cmd += [f"{name}:{declared[name]}" for name in wrong]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=GALAXY_TIMEOUT)
        output = (proc.stdout + proc.stderr).strip()
        unreachable = "call Galaxy" in output  # ansible-galaxy's words for a network error
        why = (output.splitlines() or [f"exit status {proc.returncode}"])[-1]
    except subprocess.TimeoutExpired:
        unreachable, why = True, f"no answer in {GALAXY_TIMEOUT} s"
    except OSError as exc:
        unreachable, why = False, str(exc)
    wrong = unmet(declared, installed_collections(paths))
    failure = "Galaxy cannot be reached" if unreachable else "ansible-galaxy did not install it"
    return [f"{problem} and {failure} ({why}): {REMEDY}" for problem in wrong.values()]
