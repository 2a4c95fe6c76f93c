"""Sphinx configuration of the shard-jobs documentation.

Build it as the docs tier does (tests/docs/test_docs.py), in the docs virtualenv
(requirements/docs.txt; tests/docs/docs_venv.py creates ~/.shard-jobs/venvs/docs):

    sphinx-build -W --keep-going -b html docs/source docs/_build/html

zuul-sphinx finds the Zuul configuration by walking up from this directory to the first
one holding zuul.yaml, .zuul.yaml, zuul.d or .zuul.d (the repository's zuul.d/), and the
roles in roles/ beside it; zuul_role_paths would add other role directories. A role
without README.rst is a warning, hence an error with -W.
"""

import tomllib
from pathlib import Path

from sphinx.util.nodes import make_refnode

REPO = Path(__file__).resolve().parents[2]

project = "shard-jobs"
author = "shard-jobs contributors"
copyright = "shard-jobs contributors"
release = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
version = release

extensions = ["zuul_sphinx"]

# zuul-sphinx: roles/ next to zuul.d/ is found without this; every role must have a README.
zuul_role_paths = []
zuul_autoroles_warn_missing = True

root_doc = "index"
exclude_patterns = []
pygments_style = "sphinx"

html_theme = "alabaster"
html_title = "shard-jobs"
html_theme_options = {
    "description": "Test an OpenStack change as a new shard of an existing cloud",
    "fixed_sidebar": True,
}


def resolve_unqualified_rolevar(app, env, node, contnode):
    """:zuul:rolevar:`name` without its role: the one role variable of that name.

    zuul-sphinx indexes a role variable as <role>.<name>, so READMEs written in the
    zuul-jobs style but naming the variable alone (as the README of the role reads on
    its own) would leave dangling references. Role variables carry their role's name
    as a prefix (tests/lint), so a bare name matches at most one; an unknown or
    ambiguous name is left to Sphinx, which warns (an error with -W).
    """
    if node.get("refdomain") != "zuul" or node.get("reftype") != "rolevar":
        return None
    target = node["reftarget"].lower()
    objects = env.domaindata["zuul"]["objects"]
    matches = [
        key
        for key in objects
        if key.startswith("rolevar-") and key[len("rolevar-") :].split(".")[1:] == [target]
    ]
    if len(matches) != 1:
        return None
    docname = objects[matches[0]][0]
    return make_refnode(app.builder, node["refdoc"], docname, matches[0], contnode, target)


def setup(app):
    app.connect("missing-reference", resolve_unqualified_rolevar)
