"""Every import path the docs name stays importable: the tree may move, a user's DAG file may not break.

The paths are read from the docs themselves (README.md and docs/*.md, but not docs/performance.md, whose
tables record what was measured at the time), so a path a doc starts naming is held from then on.
"""

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(p for p in (ROOT / "docs").glob("*.md") if p.name != "performance.md")])
DOTTED = re.compile(r"\bgooten_provider(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
FROM_IMPORT = re.compile(r"^\s*from (gooten_provider[\w.]*) import ([\w, ]+)$", re.MULTILINE)


def _named_paths() -> set[str]:
    paths: set[str] = set()
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        paths.update(DOTTED.findall(text))
        for module, names in FROM_IMPORT.findall(text):
            paths.update(f"{module}.{name.strip()}" for name in names.split(",") if name.strip())
    return paths


def _resolve(path: str) -> object:
    """Import the longest importable module prefix of ``path``, then look the rest up as attributes."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as error:
            if error.name is None or not ".".join(parts[:cut]).startswith(error.name):
                raise  # a module that exists failed to import one of its own dependencies
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise ModuleNotFoundError(path)


# Promised in CHANGELOG.md (the docs name only the module): the async client's path from before client/.
PROMISED = {"gooten_provider.async_client.AsyncGootenClient"}
NAMED = sorted(_named_paths() | PROMISED)


def test_the_docs_name_the_public_paths_this_test_holds() -> None:
    # a guard against the scan finding nothing (then every path below would pass vacuously)
    assert {
        "gooten_provider.operators.gooten.GootenOrderStatusOperator",
        "gooten_provider.async_client",
        "gooten_provider.client.GootenClient",
        "gooten_provider.triggers.gooten.GootenOrderStatusTrigger",
    } <= _named_paths()


@pytest.mark.parametrize("path", NAMED)
def test_every_path_the_docs_name_imports(path: str) -> None:
    assert _resolve(path) is not None
