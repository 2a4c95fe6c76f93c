"""The documentation site: docs/source built with Sphinx and zuul-sphinx.

`sphinx-build -W --keep-going -b html docs/source <tmp>` in the docs virtualenv
(shard_jobs/docs.py, requirements/docs.txt). Every warning is an error: a role without a
README.rst, a dangling :zuul:role: or :zuul:rolevar: reference, broken reStructuredText
in a README or a job description. Then:

- the jobs page documents every job and project-template of zuul.d/ (shard-nova-compute
  among them);
- the roles page documents every role under roles/;
- every page of the site was written.
"""

import subprocess

import pytest

from shard_jobs import docs as docs_venv
from shard_jobs import paths, zuul_config

REPO = paths.REPO
PAGES = ("index", "jobs", "roles", "running-locally", "embedded-cloud", "guarantees")
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())


@pytest.fixture(scope="session")
def docs_python():
    try:
        return docs_venv.ensure()
    except docs_venv.VenvError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def site(docs_python, tmp_path_factory):
    """(sphinx-build's completed process, the HTML directory)."""
    out = tmp_path_factory.mktemp("docs") / "html"
    cmd = docs_venv.sphinx_command(docs_python, out)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    return proc, out


@pytest.fixture(scope="session")
def built(site):
    """The HTML directory. With --keep-going Sphinx writes every page despite warnings, so
    these checks report on their own whether or not the build was clean."""
    return site[1]


def page(out, name: str) -> str:
    path = out / f"{name}.html"
    if not path.is_file():
        pytest.fail(f"{path.name} was not written", pytrace=False)
    return path.read_text()


def test_site_builds_without_warnings(site):
    proc, _ = site
    if proc.returncode != 0:
        pytest.fail(
            f"sphinx-build -W failed (rc {proc.returncode}):\n{proc.stderr}{proc.stdout[-3000:]}",
            pytrace=False,
        )


def test_every_page_written(built):
    missing = [name for name in PAGES if not (built / f"{name}.html").is_file()]
    if missing:
        pytest.fail(f"pages not written: {', '.join(missing)}", pytrace=False)


def test_jobs_page_documents_every_job(built):
    html = page(built, "jobs")
    objects = zuul_config.load(REPO / "zuul.d")
    wanted = [("job", name) for name in objects["job"]]
    wanted += [("project_template", name) for name in objects["project-template"]]
    assert ("job", "shard-nova-compute") in wanted, "zuul.d/ no longer defines shard-nova-compute"
    # zuul-sphinx gives each documented object the anchor <type>-<name>.
    missing = [f"{kind} {name}" for kind, name in wanted if f'id="{kind}-{name}"' not in html]
    if missing:
        pytest.fail(f"jobs.html does not document: {', '.join(missing)}", pytrace=False)
    assert "shard-nova-compute" in html


def test_roles_page_documents_every_role(built):
    html = page(built, "roles")
    missing = [role for role in ROLES if f'id="role-{role}"' not in html]
    if missing:
        pytest.fail(f"roles.html does not document the roles {', '.join(missing)}", pytrace=False)
