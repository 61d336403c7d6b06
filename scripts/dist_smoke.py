"""The last step of ``make dist``: the built wheel, installed as a user would, runs the README's DAG.

``python scripts/dist_smoke.py dist``:

1. makes a fresh virtual environment, ``.venv-dist/``, and installs the wheel there next to the newest
   ``apache-airflow`` release it admits, resolved from the package index (not from ``uv.lock``);
2. checks that ``airflow providers list`` shows the provider, at the wheel's version, and that the
   ``--help`` of the wheel's commands (the webhook relay, the local Gooten API) points at no file that is
   not in the wheel: a page of the documentation is named by its URL;
3. starts the wheel's local Gooten API (``python -m gooten_provider.testing --demo-orders``) and takes
   the ``export AIRFLOW_CONN_GOOTEN_DEFAULT=...`` line it prints;
4. writes the README's DAG (the Python block after the ``readme-dag`` marker) into a throwaway DAG folder,
   migrates a throwaway metadata DB and runs ``airflow dags test`` on it, as the README says;
5. checks that the run succeeded and that the local API now shows the DAG's orders on ``Hold``.

Everything listens on 127.0.0.1; the throwaway folder is kept (and named) when a step fails.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-dist"
UV = ROOT / ".tools" / "bin" / "uv"
README = ROOT / "README.md"
MARKER = "<!-- readme-dag:"
ORDER_PATH = "/api/v/5/source/api/orders"


class SmokeError(Exception):
    """A step failed; the message says which and why."""


def readme_dag() -> tuple[str, str]:
    """The README's DAG: ``(dag_id, source)``; the id is the one its ``airflow dags test`` line names."""
    text = README.read_text(encoding="utf-8")
    after = text[text.index(MARKER) :]
    source = re.search(r"```python\n(.*?)```", after, re.DOTALL)
    command = re.search(r"^airflow dags test (\w+)", text, re.MULTILINE)
    if not source or not command:
        raise SmokeError("README.md: no Python block after the readme-dag marker, or no `airflow dags test`")
    return command[1], source[1]


def run(step: str, command: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Run one step, print how long it took, return its output; raise with its output when it fails."""
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 - our own tools, fixed arguments
        command, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    print(f"  {step} ... {'ok' if done.returncode == 0 else 'FAILED'} ({time.monotonic() - started:.1f} s)")
    if done.returncode != 0:
        raise SmokeError(f"{step} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.stdout


def install(wheel: Path) -> dict[str, str]:
    """A fresh venv with the wheel and the newest admitted Airflow from the index; their versions."""
    shutil.rmtree(VENV, ignore_errors=True)
    run("uv venv .venv-dist", [str(UV), "venv", "--quiet", "--python", sys.executable, str(VENV)])
    python = str(VENV / "bin" / "python")
    run(
        "uv pip install <wheel> apache-airflow (from the package index)",
        [str(UV), "pip", "install", "--quiet", "--python", python, str(wheel), "apache-airflow"],
    )
    listed = json.loads(run("uv pip list", [str(UV), "pip", "list", "--python", python, "--format", "json"]))
    return {package["name"]: package["version"] for package in listed}


class LocalApi:
    """The wheel's ``python -m gooten_provider.testing --demo-orders``, and what it printed at start."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - the venv's python, fixed arguments
            [str(VENV / "bin" / "python"), "-m", "gooten_provider.testing", "--port", "0", "--demo-orders"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(
            target=lambda: [lines.put(line) for line in self.process.stdout], daemon=True
        ).start()
        printed = []
        while not any(line.startswith("export ") for line in printed):
            try:
                printed.append(lines.get(timeout=30).strip())
            except queue.Empty:
                self.stop()
                raise SmokeError(f"the local Gooten API printed no export line: {printed}") from None
        (export,) = [line for line in printed if line.startswith("export ")]
        name, _, value = shlex.split(export)[1].partition("=")
        self.env = {name: value}
        self.connection = json.loads(value)

    def item_statuses(self, order_id: str) -> list[str]:
        """An order's item statuses, read from the local API."""
        query = urllib.parse.urlencode({"recipeid": self.connection["login"], "id": order_id})
        with urllib.request.urlopen(f"{self.connection['host']}{ORDER_PATH}?{query}", timeout=10) as reply:  # noqa: S310 - our local API
            return [item["Status"] for item in json.load(reply)["Items"]]

    def stop(self) -> None:
        """Stop the server (SIGTERM) and wait for it."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=10)


# A path into the repository's docs/ (or another of its files) that a user of the wheel does not have.
REPOSITORY_PATH = re.compile(r"(?<![\w/.-])(?:docs|dags|scripts|bench)/[\w./-]+")


def check_help_pages(env: dict[str, str]) -> None:
    """Each command's ``--help`` names documentation by URL, never by a path in the repository."""
    python = str(VENV / "bin" / "python")
    for module in ("gooten_provider.webhooks", "gooten_provider.testing"):
        shown = run(f"python -m {module} --help", [python, "-m", module, "--help"], env)
        paths = REPOSITORY_PATH.findall(shown)
        if paths:
            raise SmokeError(f"python -m {module} --help points at {paths}, which the wheel does not hold")


def main(argv: list[str]) -> int:
    """Run the steps of the module docstring against the wheel in the folder ``argv[0]``."""
    (wheel,) = Path(argv[0]).glob("*.whl")
    dag_id, source = readme_dag()
    workdir = Path(tempfile.mkdtemp(prefix="gooten-dist-smoke-"))
    print(f"dist smoke test: {wheel.name} in a fresh venv, the README's DAG {dag_id}")
    api = None
    try:
        versions = install(wheel)
        print(
            f"  installed apache-airflow {versions['apache-airflow']}, airflow-provider-gooten "
            f"{versions['airflow-provider-gooten']}"
        )
        airflow = str(VENV / "bin" / "airflow")
        env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
        env |= {
            "AIRFLOW_HOME": str(workdir / "airflow-home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(workdir / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONWARNINGS": "ignore",
        }
        providers = run("airflow providers list", [airflow, "providers", "list", "--output", "json"], env)
        (table,) = [line for line in providers.splitlines() if line.startswith("[{")]
        listed = {p["package_name"]: p["version"] for p in json.loads(table)}
        if listed.get("airflow-provider-gooten") != versions["airflow-provider-gooten"]:
            raise SmokeError(f"airflow providers list shows {listed.get('airflow-provider-gooten')!r}")

        check_help_pages(env)
        api = LocalApi()
        order_ids = re.findall(r'"(\d+-[0-9a-f-]{36})"', source)
        (workdir / "dags").mkdir()
        (workdir / "dags" / f"{dag_id}.py").write_text(source, encoding="utf-8")
        env |= api.env
        run("airflow db migrate", [airflow, "db", "migrate"], env)
        run(f"airflow dags test {dag_id}", [airflow, "dags", "test", dag_id], env)
        statuses = {order_id: api.item_statuses(order_id) for order_id in order_ids}
        if not order_ids or any(set(items) != {"Hold"} for items in statuses.values()):
            raise SmokeError(f"after the run the orders are not on Hold: {statuses}")
        print(f"  the local Gooten API shows {len(order_ids)} order(s) on Hold: ok")
    except (SmokeError, subprocess.TimeoutExpired, KeyError) as error:
        print(f"dist smoke test FAILED: {error}\nKept {workdir}.", file=sys.stderr)
        return 1
    finally:
        if api is not None:
            api.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    print("dist smoke test passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
