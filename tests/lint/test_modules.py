"""Every module of library/ documents itself and has unit tests.

`ansible-doc -M library -t module --json NAME` must render its DOCUMENTATION, EXAMPLES
and RETURN; tests/unit/ must hold a test file that mentions the module by name.
"""

import ast
import json
import re

import pytest
import yaml
from lint_helpers import REPO, run_tool

LIBRARY = REPO / "library"
MODULES = sorted(p.stem for p in LIBRARY.glob("*.py") if not p.name.startswith("_"))
UNIT = REPO / "tests" / "unit"


@pytest.mark.parametrize("module", MODULES)
def test_module_documentation_renders(module):
    path = f"library/{module}.py"
    proc = run_tool("ansible-doc", "-M", "library", "-t", "module", "--json", module)
    if proc.returncode != 0:
        pytest.fail(
            f"{path}: ansible-doc failed (rc {proc.returncode}):\n{proc.stderr}{proc.stdout}",
            pytrace=False,
        )
    try:
        doc = json.loads(proc.stdout).get(module) or {}
    except ValueError:
        pytest.fail(f"{path}: ansible-doc printed no JSON:\n{proc.stdout}", pytrace=False)
    problems = []
    body = doc.get("doc") or {}
    if not body:
        problems.append("DOCUMENTATION is missing or empty")
    else:
        problems += [
            f"DOCUMENTATION has no {key}"
            for key in ("short_description", "description")
            if not body.get(key)
        ]
        if body.get("module") not in (None, module):
            problems.append(f"DOCUMENTATION says module: {body.get('module')}")
    if not (doc.get("examples") or "").strip():
        problems.append("EXAMPLES is missing or empty")
    if doc.get("return") is None:
        problems.append("RETURN is missing (write RETURN = r'''# ''' when nothing is returned)")
    if problems:
        pytest.fail(f"{path}: " + "; ".join(problems), pytrace=False)


@pytest.mark.parametrize("module", MODULES)
def test_module_examples_are_yaml(module):
    """ansible-doc keeps EXAMPLES as text: a line such as `- name: The build: nova` would
    reach the docs site and its readers' copies unparsed."""
    path = LIBRARY / f"{module}.py"
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "EXAMPLES":
            try:
                tasks = yaml.safe_load(node.value.value)
            except yaml.YAMLError as exc:
                pytest.fail(f"library/{module}.py: EXAMPLES is not YAML: {exc}", pytrace=False)
            assert isinstance(tasks, list) and all("name" in t for t in tasks), module
            return
    pytest.fail(f"library/{module}.py: no EXAMPLES", pytrace=False)


@pytest.mark.parametrize("module", MODULES)
def test_module_has_unit_tests(module):
    word = re.compile(rf"\b{re.escape(module)}\b")
    files = sorted(UNIT.rglob("*.py")) if UNIT.is_dir() else []
    testing = [
        p
        for p in files
        if (p.name.startswith("test_") or p.name.endswith("_test.py"))
        and word.search(p.read_text())
    ]
    if not testing:
        pytest.fail(
            f"library/{module}.py: no unit test file in tests/unit/ mentions {module}",
            pytrace=False,
        )


def _documented_options(module):
    proc = run_tool("ansible-doc", "-M", "library", "-t", "module", "--json", module)
    assert proc.returncode == 0, proc.stderr
    return set((json.loads(proc.stdout)[module]["doc"].get("options") or {}).keys())


def _shared_options(module):
    """The options library/<module>.py gets from module_utils: ShardModule's connection
    options and the phase option."""
    source = (LIBRARY / f"{module}.py").read_text()
    shared = set()
    if re.search(r"\(ShardModule\)", source):
        shared |= {"cloud", "region_name", "interface", "timeout", "phase"}
    if "PHASE_OPTION" in source:
        shared.add("phase")
    return shared


@pytest.mark.parametrize("module", [m for m in MODULES if _shared_options(m)])
def test_shared_options_are_documented(module):
    """The options a module gets from module_utils are in its documentation, through the
    shard.* fragments (doc_fragments/, found through the repository's ansible.cfg)."""
    missing = _shared_options(module) - _documented_options(module)
    assert not missing, f"library/{module}.py documents none of {sorted(missing)}"
