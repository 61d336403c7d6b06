"""docs/reference.md opens with a map of the packages: it names every package and root module there is."""

import pkgutil
import re
from pathlib import Path

import gooten_provider

MAP_ROWS = re.compile(r"^\|[^|]*\| (.+?) \| .+ \| .+ \|$", re.MULTILINE)


def test_the_map_names_every_package_and_root_module():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "reference.md").read_text(encoding="utf-8")
    section = doc.split("## The package at a glance", 1)[1].split("\n## ", 1)[0]
    named = {name for cell in MAP_ROWS.findall(section) for name in re.findall(r"`(\w+)`", cell)}
    named |= set(re.findall(r"`gooten_provider\.(\w+)`", section))
    modules = {module.name for module in pkgutil.iter_modules(gooten_provider.__path__)}
    assert modules - named == set(), "modules the map does not name"
    assert named - modules == set(), "names in the map that are no module"
