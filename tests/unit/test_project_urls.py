"""The package index shows the README and the wheel's metadata without the repository around them: every
link is absolute, the metadata has an author and Project-URLs, and no command's --help names a file of the
repository (scripts/check_dist.py checks the built wheel the same way in ``make dist``)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from importlib.metadata import metadata
from pathlib import Path

import pytest

from gooten_provider.project_urls import DISTRIBUTION, doc_url, project_urls

# Not imported from tests/conftest.py: importing it again would run its setup again (a new AIRFLOW_HOME).
REPO_ROOT = Path(__file__).resolve().parents[2]


def _script(name: str):
    """One of scripts/ as a module (they are not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_dist = _script("check_dist")
dist_smoke = _script("dist_smoke")


def test_the_readme_links_only_to_absolute_urls_into_the_repository():
    installed = metadata(DISTRIBUTION)
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert check_dist.project_url_problems(installed.get_all("Project-URL") or [], readme) == []
    assert f"]({project_urls()['Repository']}/blob/main/docs/installation.md)" in readme


def test_a_relative_link_or_a_missing_project_url_is_caught():
    problems = check_dist.project_url_problems(
        ["Repository, https://example.invalid/r"], "see [the docs](docs/reference.md) and [x](#top)"
    )
    assert "README link 'docs/reference.md' is relative: dead on the package index" in problems
    assert "METADATA lacks the Project-URL 'Documentation'" in problems
    assert not any("#top" in problem for problem in problems)


def test_the_metadata_has_an_author_and_every_project_url():
    installed = metadata(DISTRIBUTION)
    assert installed["Author"] or installed["Author-email"]
    assert set(check_dist.PROJECT_URLS) <= set(project_urls())
    assert all(url.startswith("https://") for url in project_urls().values())


@pytest.mark.parametrize("module", ["gooten_provider.webhooks", "gooten_provider.testing"])
def test_no_help_points_at_a_file_of_the_repository(module):
    shown = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert not dist_smoke.REPOSITORY_PATH.findall(shown), shown
    if module == "gooten_provider.webhooks":
        assert doc_url("webhooks.md") in shown
        assert doc_url("webhooks.md").startswith(project_urls()["Documentation"])
