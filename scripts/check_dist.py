"""Check what ``make dist`` built, past what ``twine check`` and ``check-wheel-contents`` look at.

``python scripts/check_dist.py dist``: the sdist has the license, the changelog and the sources, and none
of the repository's lock file or measured results; the wheel's metadata has the version of
``gooten_provider.__version__``, the license, classifiers PyPI accepts, the ``examples`` extra and the
entry points Airflow and pytest look for, an author and the Project-URLs; ``py.typed`` is in the wheel; the
README, which the package index shows without the repository around it, links only to absolute URLs (into
the repository at its Repository URL). Prints each problem and exits 1.
"""

from __future__ import annotations

import re
import sys
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Paths (relative to the sdist's top folder) that must not be shipped, and ones that must.
SDIST_EXCLUDED = ("uv.lock", "bench/results/")
SDIST_REQUIRED = ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "gooten_provider/py.typed")
WHEEL_REQUIRED = ("gooten_provider/py.typed", "gooten_provider/get_provider_info.py")
EXAMPLES_EXTRA = {
    "apache-airflow-providers-common-sql",
    "apache-airflow-providers-sqlite",
    "apache-airflow-providers-standard",
}
#: The Project-URLs the package index shows (Documentation is also what Airflow's Providers page links to,
#: and what the package's messages point at: gooten_provider.project_urls).
PROJECT_URLS = ("Homepage", "Documentation", "Repository", "Changelog", "Issues")
# A Markdown link or image target: [text](target) or ![alt](target).
_MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")
ENTRY_POINTS = (
    "[apache_airflow_provider]",
    "provider_info = gooten_provider.get_provider_info:get_provider_info",
    "[pytest11]",
)


def source_version() -> str:
    """``__version__`` as written in ``gooten_provider/__init__.py``."""
    text = (ROOT / "gooten_provider" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    assert match, "no __version__ in gooten_provider/__init__.py"
    return match[1]


def sdist_problems(sdist: Path) -> list[str]:
    """What is missing from, or should not be in, the sdist."""
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    found = [f"{sdist.name} lacks {required}" for required in SDIST_REQUIRED if required not in names]
    found += [
        f"{sdist.name} ships {name}"
        for name in sorted(names)
        if any(name.startswith(x) for x in SDIST_EXCLUDED)
    ]
    return found


def wheel_problems(wheel: Path, version: str) -> list[str]:
    """What is wrong with the wheel's metadata, license files, typing marker and entry points."""
    # here, not at the top: the tests import this module in environments without the dist tools
    from trove_classifiers import classifiers as known_classifiers

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = f"airflow_provider_gooten-{version}.dist-info"
        if f"{info}/METADATA" not in names:
            return [f"{wheel.name}: no {info}/METADATA (is the version {version}?)"]
        metadata = HeaderParser().parsestr(archive.read(f"{info}/METADATA").decode())
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    found = [f"{wheel.name} lacks {required}" for required in WHEEL_REQUIRED if required not in names]
    if f"{info}/licenses/LICENSE" not in names:
        found.append(f"{wheel.name} lacks the LICENSE file")
    if metadata["Version"] != version:
        found.append(f"METADATA Version {metadata['Version']} is not __version__ {version}")
    if metadata["License-Expression"] != "Apache-2.0":
        found.append(f"METADATA License-Expression is {metadata['License-Expression']!r}, not 'Apache-2.0'")
    found += [
        f"classifier {c!r} is not one PyPI accepts"
        for c in metadata.get_all("Classifier", [])
        if c not in known_classifiers
    ]
    extra = {
        re.split(r"[<>=!~; ]", requirement, maxsplit=1)[0]
        for requirement in metadata.get_all("Requires-Dist", [])
        if "extra == 'examples'" in requirement
    }
    if extra != EXAMPLES_EXTRA:
        found.append(f"the examples extra requires {sorted(extra)}, not {sorted(EXAMPLES_EXTRA)}")
    found += [f"entry_points.txt lacks {line!r}" for line in ENTRY_POINTS if line not in entry_points]
    if not (metadata["Author"] or metadata["Author-email"]):
        found.append("METADATA has no Author")
    return found + project_url_problems(metadata.get_all("Project-URL", []), metadata.get_payload())


def project_url_problems(entries: list[str], readme: str) -> list[str]:
    """What is wrong with the Project-URLs, and with the README's links as the package index shows them."""
    urls = {label.strip(): url.strip() for label, _, url in (entry.partition(",") for entry in entries)}
    found = [f"METADATA lacks the Project-URL {label!r}" for label in PROJECT_URLS if label not in urls]
    found += [
        f"Project-URL {label} is not an https URL: {url!r}"
        for label, url in urls.items()
        if not url.startswith("https://")
    ]
    repository = urls.get("Repository", "").rstrip("/")
    for target in _MARKDOWN_LINK.findall(readme):
        if target.startswith("#"):
            continue  # a heading of the README itself
        if not target.startswith(("https://", "http://")):
            found.append(f"README link {target!r} is relative: dead on the package index")
        elif repository and "/blob/" in target and not target.startswith(repository + "/"):
            found.append(f"README link {target!r} is not under the Repository URL {repository}")
    return found


def main(argv: list[str]) -> int:
    """Check the one sdist and the one wheel in the folder ``argv[0]``."""
    folder = Path(argv[0])
    (sdist,) = folder.glob("*.tar.gz")
    (wheel,) = folder.glob("*.whl")
    version = source_version()
    found = sdist_problems(sdist) + wheel_problems(wheel, version)
    for problem in found:
        print(f"check_dist: {problem}", file=sys.stderr)
    if not found:
        print(f"check_dist: {sdist.name} and {wheel.name} (version {version}) are as expected.")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
