"""Check that ``constraints/oldest.txt`` still matches ``pyproject.toml``; run by ``make test-oldest``.

The oldest environment must test the oldest ``apache-airflow`` the project admits, and only versions of
its runtime dependencies that the project admits. After changing a dependency range in ``pyproject.toml``,
regenerate the lock with ``make constraints``; this check fails until then.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "constraints" / "oldest.txt"
#: The dependency whose lower bound the oldest environment exists to test.
OLDEST_OF = "apache-airflow"


def pinned_versions(lock: Path) -> dict[str, Version]:
    """``{canonical name: version}`` of every ``name==version`` line of a ``uv pip compile`` output."""
    pins: dict[str, Version] = {}
    for raw in lock.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name.split("[", 1)[0])] = Version(version.strip())
    return pins


def problems(project: dict[str, Any], pins: dict[str, Version]) -> list[str]:
    """Every way the lock disagrees with the project's runtime dependencies (none: an empty list)."""
    found = []
    for text in project["dependencies"]:
        requirement = Requirement(text)
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None:
            found.append(f"{requirement.name} is not pinned in {LOCK.name}")
            continue
        if not requirement.specifier.contains(pinned, prereleases=True):
            found.append(f"{requirement.name}=={pinned} is outside pyproject.toml's {requirement.specifier}")
        if canonicalize_name(requirement.name) == OLDEST_OF:
            lower = [Version(spec.version) for spec in requirement.specifier if spec.operator in (">=", "==")]
            floor = max(lower, default=None)
            if floor is not None and pinned != floor:
                found.append(f"{requirement.name}=={pinned} is not the oldest admitted ({floor})")
    return found


def main() -> int:
    """Print each problem and return 1, or return 0 when the lock matches."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = problems(project, pinned_versions(LOCK))
    for problem in found:
        print(f"{LOCK.relative_to(ROOT)}: {problem}; run `make constraints`.", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
