"""The cost of being installed: import time of the operator module, and each example DAG's parse time.

Every sample runs in a fresh interpreter (``subprocess``), so nothing is cached between samples:

* import: ``import airflow.sdk`` first (not timed), then ``import gooten_provider.operators.gooten`` (timed);
  ``-X importtime`` gives the breakdown of what that second import loads;
* parse: ``from airflow.dag_processing.dagbag import BundleDagBag`` first (not timed), then
  ``BundleDagBag(file, bundle_path=dags_folder, load_op_links=False)`` on one DAG file, as the DAG processor
  does (cold: the provider, the example helpers and what the file imports are loaded), then the same again in
  the same process (warm: only the DAG file itself runs again).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DAGS_FOLDER = REPO_ROOT / "dags"
OPERATOR_MODULE = "gooten_provider.operators.gooten"
MARK = "=====gooten-bench-mark"

_IMPORT_SCRIPT = f"""
import gc, sys, time
import airflow.sdk
if "requests" in sys.argv[1]:
    import requests
if "freeze" in sys.argv[1]:
    gc.freeze()
started = time.perf_counter()
import {OPERATOR_MODULE}
print(time.perf_counter() - started)
"""

_IMPORTTIME_SCRIPT = f"""
import sys
import airflow.sdk
sys.stderr.write("{MARK}\\n")
sys.stderr.flush()
import {OPERATOR_MODULE}
"""

_LIST_SCRIPT = """
import json, sys, warnings
warnings.simplefilter("ignore")
from airflow.utils.file import list_py_file_paths
print(json.dumps(sorted(list_py_file_paths(sys.argv[1]))))
"""

_PARSE_SCRIPT = """
import gc, json, sys, time
import airflow.sdk
from airflow.dag_processing.dagbag import BundleDagBag

path, bundle = sys.argv[1], sys.argv[2]
if "requests" in sys.argv[3]:
    import requests  # what the provider would cost if it imported requests only when a hook runs
if "provider" in sys.argv[3]:
    import gooten_provider.operators.gooten  # the DAG file's cost without the provider's
if "freeze" in sys.argv[3]:
    gc.freeze()  # as the DAG processor manager does before it starts parsing
timings = []
for _ in range(2):
    started = time.perf_counter()
    bag = BundleDagBag(dag_folder=path, bundle_path=bundle, bundle_name="dags-folder", load_op_links=False)
    timings.append(time.perf_counter() - started)
errors = {k: v.splitlines()[-1] if v else v for k, v in bag.import_errors.items()}
dags = sorted(bag.dag_ids)
print(json.dumps({"cold": timings[0], "warm": timings[1], "dags": dags, "import_errors": errors}))
"""


def _env(airflow_home: str, dags_folder: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": airflow_home,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    return env


def _python(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, check=False, cwd=REPO_ROOT
    )
    if completed.returncode != 0:
        raise RuntimeError(f"python {' '.join(args[:2])}... failed:\n{completed.stderr[-2000:]}")
    return completed


#: ``freeze``: ``gc.freeze()`` after Airflow is imported, as the DAG processor manager does before it parses
#: (so a full collection does not walk Airflow's own objects); ``gc``: the collector left as it is;
#: ``freeze+requests``: ``requests`` already imported, which simulates a provider importing it only when a
#: hook first runs (the part of the cost that is the provider's own code); ``freeze+provider``: the
#: operator module already imported, so the difference with ``freeze`` is what the provider adds to a parse.
MODES: tuple[str, ...] = ("freeze", "gc", "freeze+requests", "freeze+provider")
_MODE_LABEL = {
    "freeze": "`gc.freeze()` first, as the DAG processor",
    "gc": "GC as is",
    "freeze+requests": "`gc.freeze()`, `requests` already imported",
    "freeze+provider": "`gc.freeze()`, the provider already imported",
}


@dataclass
class StartupResult:
    """Import samples, the import breakdown, and parse samples per DAG file, per GC mode."""

    import_ms: dict[str, list[float]] = field(default_factory=dict)
    breakdown: list[dict[str, Any]] = field(default_factory=list)
    parse: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)

    def import_summary(self) -> list[dict[str, Any]]:
        """Per GC mode: best and median import time."""
        return [
            {
                "gc": mode,
                "best_ms": min(samples),
                "median_ms": statistics.median(samples),
                "samples": len(samples),
            }
            for mode, samples in self.import_ms.items()
        ]

    def parse_summary(self) -> list[dict[str, Any]]:
        """Per DAG file and GC mode: median and best cold parse, median warm parse."""
        rows = []
        for path, modes in self.parse.items():
            for mode, samples in modes.items():
                rows.append(
                    {
                        "file": path,
                        "gc": mode,
                        "dags": samples[0]["dags"],
                        "import_errors": samples[0]["import_errors"],
                        "cold_ms_median": 1000 * statistics.median(s["cold"] for s in samples),
                        "cold_ms_best": 1000 * min(s["cold"] for s in samples),
                        "warm_ms_median": 1000 * statistics.median(s["warm"] for s in samples),
                        "samples": len(samples),
                    }
                )
        return rows

    def to_json(self) -> dict[str, Any]:
        """Everything, for ``bench/results``."""
        return {
            "import_ms": self.import_ms,
            "import": self.import_summary(),
            "breakdown": self.breakdown,
            "parse": self.parse_summary(),
        }


def import_breakdown(env: dict[str, str], top: int = 12) -> list[dict[str, Any]]:
    """What ``import gooten_provider.operators.gooten`` loads on top of ``airflow.sdk`` (``-X importtime``).

    Returns the modules with the largest cumulative time, as dicts with ``module``, ``depth``, ``self_ms``
    and ``cumulative_ms``.
    """
    completed = _python(["-X", "importtime", "-c", _IMPORTTIME_SCRIPT], env)
    lines = completed.stderr.split(MARK, 1)[1].splitlines()
    entries = []
    for line in lines:
        if not line.startswith("import time:") or "|" not in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|", 2)
        if not self_us.strip().isdigit():
            continue  # the header line
        name = name[1:]  # one space follows the bar; the rest is the nesting indent
        depth = (len(name) - len(name.lstrip(" "))) // 2
        entries.append(
            {
                "module": name.strip(),
                "depth": depth,
                "self_ms": int(self_us) / 1000,
                "cumulative_ms": int(cumulative_us) / 1000,
            }
        )
    entries.sort(key=lambda e: e["cumulative_ms"], reverse=True)
    return entries[:top]


def run_startup(
    samples: int = 7,
    dags_folder: Path = DAGS_FOLDER,
    progress: Callable[[str], None] = print,
) -> StartupResult:
    """Measure the operator's import time and each DAG file's parse time, ``samples`` fresh processes each."""
    result = StartupResult()
    with tempfile.TemporaryDirectory(prefix="gooten-bench-startup-") as home:
        env = _env(home, dags_folder)
        _python(["-c", "import airflow.sdk"], env)  # first run writes airflow.cfg; not measured
        for mode in (m for m in MODES if "provider" not in m):
            result.import_ms[mode] = [
                1000 * float(_python(["-c", _IMPORT_SCRIPT, mode], env).stdout.split()[-1])
                for _ in range(samples)
            ]
        for row in result.import_summary():
            progress(
                f"  import {OPERATOR_MODULE} after airflow.sdk ({row['gc']}): best {row['best_ms']:.1f} ms, "
                f"median {row['median_ms']:.1f} ms ({row['samples']} processes)"
            )
        result.breakdown = import_breakdown(env)
        listing = _python(["-c", _LIST_SCRIPT, str(dags_folder)], env).stdout.strip().splitlines()[-1]
        for path in json.loads(listing):
            name = str(Path(path).relative_to(REPO_ROOT)) if Path(path).is_relative_to(REPO_ROOT) else path
            result.parse[name] = {
                mode: [
                    json.loads(
                        _python(["-c", _PARSE_SCRIPT, path, str(dags_folder), mode], env)
                        .stdout.strip()
                        .splitlines()[-1]
                    )
                    for _ in range(samples)
                ]
                for mode in MODES
            }
        for row in result.parse_summary():
            progress(
                f"  parse {row['file']} ({row['gc']}): cold median {row['cold_ms_median']:.1f} ms "
                f"(best {row['cold_ms_best']:.1f}), warm {row['warm_ms_median']:.1f} ms, "
                f"DAGs {row['dags']}, import errors {len(row['import_errors'])}"
            )
    return result


def format_tables(result: StartupResult) -> str:
    """Markdown tables: import time, its breakdown, and parse time per DAG file."""
    lines = [
        f"| `import {OPERATOR_MODULE}` after `import airflow.sdk` | mode | best | median | processes |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| | {_MODE_LABEL[row['gc']]} | {row['best_ms']:.1f} ms | {row['median_ms']:.1f} ms | "
        f"{row['samples']} |"
        for row in result.import_summary()
    ]
    lines += [
        "",
        "Largest cumulative import times of that import under `-X importtime` (one process; "
        "`-X importtime` adds its own overhead):",
        "",
        "| module | depth | self | cumulative |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| `{e['module']}` | {e['depth']} | {e['self_ms']:.1f} ms | {e['cumulative_ms']:.1f} ms |"
        for e in result.breakdown
    ]
    headers = " | ".join(f"cold, {_MODE_LABEL[mode]}" for mode in MODES)
    lines += [
        "",
        "Parse time per DAG file, median of the processes (best in brackets); warm = parsed again in the "
        "same process:",
        "",
        f"| DAG file | DAGs | {headers} | warm | import errors |",
        "|---|---|" + "---:|" * (len(MODES) + 2),
    ]
    rows = result.parse_summary()
    for path in result.parse:
        cells = {row["gc"]: row for row in rows if row["file"] == path}
        first = cells[MODES[0]]
        lines.append(
            f"| `{path}` | {', '.join(f'`{d}`' for d in first['dags']) or '-'} | "
            + " | ".join(
                f"{cells[m]['cold_ms_median']:.1f} ms ({cells[m]['cold_ms_best']:.1f})" for m in MODES
            )
            + f" | {first['warm_ms_median']:.1f} ms | {len(first['import_errors'])} |"
        )
    return "\n".join(lines)
