"""Check that a lock in ``constraints/`` still matches ``pyproject.toml``.

Run by ``make test-oldest`` and ``make test-airflow-3.1``, e.g.
``python constraints/check_constraints.py constraints/oldest.txt``.
Every runtime dependency of the provider and of its ``examples`` extra must be pinned, at a version the
project admits. ``oldest.txt`` must hold the oldest ``apache-airflow`` the project admits;
``airflow-X.Y.txt`` an ``apache-airflow`` of the X.Y line. After changing a dependency range in
``pyproject.toml``, regenerate the locks with ``make constraints``; this check fails until then.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
#: The dependency whose version each lock exists to test.
AIRFLOW = "apache-airflow"
#: The extras whose dependencies the locks must hold too.
EXTRAS = ("examples",)


def pinned_versions(lock: Path) -> dict[str, Version]:
    """``{canonical name: version}`` of every ``name==version`` line of a ``uv pip compile`` output."""
    pins: dict[str, Version] = {}
    for raw in lock.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name.split("[", 1)[0])] = Version(version.strip())
    return pins


def requirements(project: dict[str, Any]) -> list[Requirement]:
    """The project's runtime dependencies and those of :data:`EXTRAS`."""
    extras = project.get("optional-dependencies", {})
    texts = [*project["dependencies"], *(text for extra in EXTRAS for text in extras.get(extra, []))]
    return [Requirement(text) for text in texts]


def problems(project: dict[str, Any], pins: dict[str, Version], lock_name: str) -> list[str]:
    """Every way the lock disagrees with the project's dependencies (none: an empty list)."""
    found = []
    for requirement in requirements(project):
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None:
            found.append(f"{requirement.name} is not pinned in {lock_name}")
            continue
        if not requirement.specifier.contains(pinned, prereleases=True):
            found.append(f"{requirement.name}=={pinned} is outside pyproject.toml's {requirement.specifier}")
        if canonicalize_name(requirement.name) != AIRFLOW:
            continue
        if lock_name == "oldest.txt":
            lower = [Version(spec.version) for spec in requirement.specifier if spec.operator in (">=", "==")]
            floor = max(lower, default=None)
            if floor is not None and pinned != floor:
                found.append(f"{requirement.name}=={pinned} is not the oldest admitted ({floor})")
        line = re.fullmatch(r"airflow-(\d+)\.(\d+)\.txt", lock_name)
        if line and pinned.release[:2] != (int(line[1]), int(line[2])):
            found.append(f"{requirement.name}=={pinned} is not of the {line[1]}.{line[2]} line")
    return found


def main(argv: list[str]) -> int:
    """Print each problem of the lock named in ``argv`` and return 1, or return 0 when it matches."""
    lock = Path(argv[0]).resolve()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = problems(project, pinned_versions(lock), lock.name)
    for problem in found:
        print(f"{lock.relative_to(ROOT)}: {problem}; run `make constraints`.", file=sys.stderr)
    if not found:
        pins = pinned_versions(lock)
        print(f"{lock.relative_to(ROOT)} matches pyproject.toml: apache-airflow {pins[AIRFLOW]}.")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
