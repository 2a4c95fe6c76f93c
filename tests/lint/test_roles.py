"""Every role under roles/ is documented and declares its interface.

For each role:
- defaults/main.yaml holds its public variables, each prefixed with the role name;
- README.rst documents each of them as `.. zuul:rolevar:: <name>` with :default: and :type:
  (zuul-jobs style, rendered by zuul-sphinx);
- meta/argument_specs.yaml has a `main` entry point whose options are exactly those
  variables (Ansible then validates what callers pass).
"""

import re
from pathlib import Path

import pytest
import yaml
from lint_helpers import REPO

ROLES_DIR = REPO / "roles"
ROLES = sorted(p for p in ROLES_DIR.iterdir() if p.is_dir()) if ROLES_DIR.is_dir() else []

ROLEVAR = re.compile(r"^(?P<indent>[ \t]*)\.\. zuul:rolevar:: (?P<name>\S+)[ \t]*$")
OPTION = re.compile(r"^[ \t]+:(?P<option>[\w-]+):")


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def load_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        pytest.fail(f"{rel(path)}: not valid YAML: {exc}", pytrace=False)


def defaults_of(role: Path) -> dict:
    path = role / "defaults" / "main.yaml"
    if not path.is_file():
        pytest.fail(f"{rel(path)}: missing (a role declares its variables there)", pytrace=False)
    data = load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        pytest.fail(f"{rel(path)}: must be a mapping of variables", pytrace=False)
    return data


def rolevars(readme: Path) -> dict[str, set[str]]:
    """Top-level `.. zuul:rolevar::` directives of a README.rst -> their option names."""
    found: dict[str, set[str]] = {}
    lines = readme.read_text().splitlines()
    for i, line in enumerate(lines):
        m = ROLEVAR.match(line)
        if not m:
            continue
        options = found.setdefault(m["name"], set())
        for following in lines[i + 1 :]:
            opt = OPTION.match(following)
            if not opt:
                break
            options.add(opt["option"])
    return found


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_role_defaults_are_prefixed(role):
    bad = [k for k in defaults_of(role) if not str(k).startswith(f"{role.name}_")]
    if bad:
        pytest.fail(
            f"{rel(role / 'defaults/main.yaml')}: public variables must start with "
            f"'{role.name}_': {', '.join(map(str, bad))}",
            pytrace=False,
        )


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_role_readme_documents_defaults(role):
    readme = role / "README.rst"
    if not readme.is_file():
        pytest.fail(f"{rel(readme)}: missing", pytrace=False)
    documented = rolevars(readme)
    problems = []
    for name in defaults_of(role):
        if name not in documented:
            problems.append(f"no '.. zuul:rolevar:: {name}'")
            continue
        for option in ("default", "type"):
            if option not in documented[name]:
                problems.append(f"zuul:rolevar {name} has no :{option}:")
    if problems:
        pytest.fail(f"{rel(readme)}: " + "; ".join(problems), pytrace=False)


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_role_argument_specs_match_defaults(role):
    path = role / "meta" / "argument_specs.yaml"
    if not path.is_file():
        pytest.fail(f"{rel(path)}: missing", pytrace=False)
    specs = load_yaml(path) or {}
    main = (specs.get("argument_specs") or {}).get("main")
    if not isinstance(main, dict):
        pytest.fail(f"{rel(path)}: no argument_specs.main entry point", pytrace=False)
    options = main.get("options") or {}
    defaults = defaults_of(role)
    problems = [
        f"option {name} is not in defaults/main.yaml"
        for name in sorted(set(options) - set(defaults))
    ]
    problems += [
        f"defaults/main.yaml variable {name} is not an option"
        for name in sorted(set(defaults) - set(options))
    ]
    for name, spec in sorted(options.items()):
        spec = spec or {}
        missing = [key for key in ("type", "description") if key not in spec]
        problems += [f"option {name} has no {key}" for key in missing]
    if problems:
        pytest.fail(f"{rel(path)}: " + "; ".join(problems), pytrace=False)


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_role_has_a_molecule_scenario(role):
    """One scenario per role, named after it, that keeps the idempotence step."""
    scenario = REPO / "molecule" / role.name / "molecule.yml"
    if not scenario.is_file():
        pytest.fail(f"{rel(scenario)}: missing (every role has a molecule scenario)", pytrace=False)
    sequence = (load_yaml(scenario).get("scenario") or {}).get("test_sequence")
    # molecule's default sequence includes idempotence.
    if sequence is not None and "idempotence" not in sequence:
        pytest.fail(f"{rel(scenario)}: its test_sequence drops idempotence", pytrace=False)
