"""Browser tests of the Airflow UI with the Gooten provider (issue 6): a real Chromium, a real Airflow.

They are skipped unless ``GOOTEN_UI_TESTS=1`` (``make test-ui`` sets it), so ``make test`` stays fast and
needs no browser. When enabled, one session:

* starts ``demo/airflow_stack.py`` (the stack of ``make airflow``) on free ports of 127.0.0.1, with a
  temporary ``--home``, and waits for its ``--ready-file`` and for the example DAGs to be parsed;
* drives Debian's Chromium (``/usr/bin/chromium``, or ``GOOTEN_UI_CHROMIUM``) with Playwright: no browser
  is downloaded;
* saves screenshots to ``GOOTEN_UI_ARTIFACTS`` (default: a pytest temporary directory, printed at the
  end); on a failure also a screenshot and a Playwright trace of every open page, and the tails of the
  stack's logs in the test report;
* stops the stack (SIGTERM, which stops every Airflow component) at the end.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from gooten_provider.client import GootenClient
from gooten_provider.testing import DEFAULT_BILLING_KEY, DEFAULT_RECIPE_ID

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_SCRIPT = REPO_ROOT / "demo" / "airflow_stack.py"
UI_TESTS_ENV = "GOOTEN_UI_TESTS"
CHROMIUM_ENV = "GOOTEN_UI_CHROMIUM"
ARTIFACTS_ENV = "GOOTEN_UI_ARTIFACTS"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 800}
#: Seconds for the stack to be healthy with its DAGs parsed (about 40 s here).
STACK_TIMEOUT = 300.0
#: Seconds for a DAG run to finish (about 10 s here).
RUN_TIMEOUT = 180.0
#: Milliseconds Playwright waits for an element or a navigation.
UI_TIMEOUT_MS = 30_000
MANUAL_DAG_ID = "gooten_manual_order_status"
ENABLED = os.environ.get(UI_TESTS_ENV) == "1"
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the browser tests unless GOOTEN_UI_TESTS=1."""
    if ENABLED:
        return
    skip = pytest.mark.skip(reason=f"browser tests: set {UI_TESTS_ENV}=1 to run them (make test-ui)")
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)


# -- the stack ---------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tail(path: Path, lines: int = 40, width: int = 300) -> str:
    """The last lines of a text file, each cut to ``width`` characters ('' when there is no file)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(
        line if len(line) <= width else line[:width] + " [...]" for line in text.splitlines()[-lines:]
    )


@dataclass
class AirflowStack:
    """The running stack of ``demo/airflow_stack.py`` (what its ``--ready-file`` says), and helpers."""

    airflow_url: str
    username: str
    password: str
    gooten_api_url: str
    admin_order_url: str
    home: Path
    logs: Path
    stdout: Path
    process: subprocess.Popen[bytes]
    relay_url: str = ""
    warehouse: Path | None = None
    executor: str = "local"
    batch_order_ids: list[str] = field(default_factory=list)
    _token: str | None = field(default=None, repr=False)

    @property
    def gooten_port(self) -> int:
        """The local Gooten API's port."""
        return int(self.gooten_api_url.rsplit(":", 1)[1])

    def token(self) -> str:
        """A JWT for the REST API (the simple auth manager's ``POST /auth/token``)."""
        if self._token is None:
            reply = requests.post(
                f"{self.airflow_url}/auth/token",
                json={"username": self.username, "password": self.password},
                timeout=30,
            )
            reply.raise_for_status()
            self._token = reply.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call Airflow's REST API (``path`` starts with ``/api/v2``) as the admin user."""
        kwargs.setdefault("timeout", 30)
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.airflow_url}{path}", headers=headers, **kwargs)

    def gooten_client(self) -> GootenClient:
        """A client of the stack's local Gooten API with its default credentials."""
        return GootenClient(DEFAULT_RECIPE_ID, DEFAULT_BILLING_KEY, base_url=self.gooten_api_url, timeout=10)

    def wait_for_dag(self, dag_id: str, timeout: float = STACK_TIMEOUT) -> None:
        """Wait until the dag-processor has parsed a DAG (its REST resource exists)."""
        deadline = time.monotonic() + timeout
        while self.api("GET", f"/api/v2/dags/{dag_id}").status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} not parsed after {timeout:.0f} s\n{self.log_tails()}")
            time.sleep(1)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT) -> dict[str, Any]:
        """Poll a DAG run until it is finished; return it (``state`` is ``success`` or ``failed``)."""
        deadline = time.monotonic() + timeout
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"
        while True:
            run = self.api("GET", path).json()
            if run.get("state") in ("success", "failed"):
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} {run_id} still {run.get('state')} after {timeout:.0f} s")
            time.sleep(1)

    def login(self, page: Any) -> None:
        """Sign in through the simple auth manager's login page and wait for the home page."""
        from playwright.sync_api import expect

        page.goto(f"{self.airflow_url}/")
        expect(page.get_by_role("heading", name="Sign into Airflow")).to_be_visible()
        page.get_by_label("Username").fill(self.username)
        page.get_by_label("Password").fill(self.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Welcome")).to_be_visible()

    def log_tails(self, lines: int = 40) -> str:
        """The tails of the stack's output, each component's log and the newest task logs."""
        parts = [f"==> stack output ({self.stdout}) <==\n{tail(self.stdout, lines)}"]
        for log in sorted(self.logs.glob("*.log")):
            parts.append(f"==> {log} <==\n{tail(log, lines)}")
        task_logs = sorted(self.logs.glob("dag_id=*/**/*.log"), key=lambda p: p.stat().st_mtime)
        for log in task_logs[-3:]:
            parts.append(f"==> {log} <==\n{tail(log, lines // 2)}")
        return "\n\n".join(parts)

    def stop(self, timeout: float = 120.0) -> None:
        """SIGTERM the stack (it stops every component) and wait; SIGKILL it if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


#: ``demo/airflow_stack.py``'s exit code when its port is taken (then another free port is tried).
PORT_IN_USE = 2


def _launch(workdir: Path, ready_file: Path, stdout: Path, options: Sequence[str]) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        str(STACK_SCRIPT),
        "--port",
        str(free_port()),
        "--home",
        str(workdir / "home"),
        "--ready-file",
        str(ready_file),
        "--timeout",
        str(int(STACK_TIMEOUT)),
        *options,
    ]
    with stdout.open("ab") as out:
        return subprocess.Popen(
            command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )


def start_stack(workdir: Path, options: Sequence[str] = ()) -> AirflowStack:
    """Start ``demo/airflow_stack.py`` in ``workdir`` and wait until it is healthy and its DAGs parsed.

    :param options: more options of the script (``--executor celery``, ``--rate-limit``, ...).
    """
    ready_file, stdout = workdir / "ready.json", workdir / "stack.out"
    deadline = time.monotonic() + STACK_TIMEOUT
    process = _launch(workdir, ready_file, stdout, options)
    try:
        for attempt in range(3):
            while not ready_file.exists() and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            if process.poll() == PORT_IN_USE and attempt < 2:  # the free port was taken meanwhile
                process = _launch(workdir, ready_file, stdout, options)
                continue
            break
        if not ready_file.exists():
            logs = "\n\n".join(
                f"==> {log} <==\n{tail(log)}" for log in sorted((workdir / "home" / "logs").glob("*.log"))
            )
            pytest.fail(
                f"demo/airflow_stack.py did not come up within {STACK_TIMEOUT:.0f} s (exit code "
                f"{process.poll()}):\n{tail(stdout)}\n\n{logs}",
                pytrace=False,
            )
        ready = json.loads(ready_file.read_text(encoding="utf-8"))
        stack = AirflowStack(
            airflow_url=ready["airflow_url"],
            username=ready["username"],
            password=ready["password"],
            gooten_api_url=ready["gooten_api_url"],
            admin_order_url=ready["admin_order_url"],
            home=Path(ready["home"]),
            logs=Path(ready["logs"]),
            stdout=stdout,
            process=process,
            relay_url=ready.get("relay_url", ""),
            warehouse=Path(ready["warehouse"]) if ready.get("warehouse") else None,
            executor=ready.get("executor", "local"),
            batch_order_ids=list(ready.get("batch_order_ids", [])),
        )
        stack.wait_for_dag(MANUAL_DAG_ID, max(10.0, deadline - time.monotonic()))
    except BaseException:  # also Ctrl-C: never leave a stack behind
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(120)
            except subprocess.TimeoutExpired:
                process.kill()
        raise
    return stack


@pytest.fixture(scope="session")
def airflow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    """The stack of ``make airflow`` on free ports of 127.0.0.1 with a temporary home, for the session."""
    started = time.monotonic()
    stack = start_stack(tmp_path_factory.mktemp("airflow-stack"))
    print(f"\n[ui] stack up in {time.monotonic() - started:.1f} s: {stack.airflow_url}", flush=True)
    try:
        yield stack
    finally:
        stack.stop()


# -- the browser -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ui_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where screenshots and traces go: ``$GOOTEN_UI_ARTIFACTS`` or a pytest temporary directory."""
    configured = os.environ.get(ARTIFACTS_ENV)
    path = Path(configured).resolve() if configured else tmp_path_factory.mktemp("ui-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    yield path
    print(f"\n[ui] screenshots and traces: {path}", flush=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import expect, sync_playwright

    executable = os.environ.get(CHROMIUM_ENV, DEFAULT_CHROMIUM)
    if not Path(executable).is_file():
        pytest.fail(
            f"No Chromium at {executable}: run `make test-ui` (it installs Debian's chromium package) or "
            f"set {CHROMIUM_ENV} to a Chromium binary.",
            pytrace=False,
        )
    expect.set_options(timeout=UI_TIMEOUT_MS)  # the default of expect() is 5 s: too tight on 2 busy cores
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def auth_state(browser: Any, airflow_stack: AirflowStack, ui_artifacts: Path) -> dict[str, Any]:
    """The browser storage (the JWT cookie) after one UI login, reused by every logged-in page."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        try:
            airflow_stack.login(page)
        except Exception:
            page.screenshot(path=str(ui_artifacts / "FAILED-login.png"))
            raise
        return context.storage_state()
    finally:
        context.close()


@dataclass
class PageFactory:
    """Opens pages in fresh browser contexts; remembers them for failure screenshots and traces."""

    browser: Any
    auth_state: Callable[[], dict[str, Any]]
    contexts: list[Any] = field(default_factory=list)

    def __call__(self, *, logged_in: bool = True) -> Any:
        """A new page, signed in unless ``logged_in=False``."""
        state = self.auth_state() if logged_in else None
        context = self.browser.new_context(viewport=VIEWPORT, storage_state=state)
        context.set_default_timeout(UI_TIMEOUT_MS)
        context.set_default_navigation_timeout(2 * UI_TIMEOUT_MS)
        context.tracing.start(screenshots=True, snapshots=True)
        self.contexts.append(context)
        return context.new_page()

    def save_failure(self, directory: Path, name: str) -> list[Path]:
        """Screenshot every open page and save each context's trace; return the files written."""
        written: list[Path] = []
        for index, context in enumerate(self.contexts):
            for number, page in enumerate(context.pages):
                shot = directory / f"FAILED-{name}-{index}-{number}.png"
                try:
                    page.screenshot(path=str(shot), full_page=True)
                    written.append(shot)
                except Exception as exc:  # a crashed page must not hide the real failure
                    print(f"[ui] no screenshot of {page.url}: {exc}")
            trace = directory / f"FAILED-{name}-{index}-trace.zip"
            try:
                context.tracing.stop(path=str(trace))
                written.append(trace)
            except Exception as exc:
                print(f"[ui] no trace: {exc}")
        return written

    def close(self) -> None:
        """Close every context opened."""
        for context in self.contexts:
            try:
                context.close()
            except Exception as exc:
                print(f"[ui] closing a browser context failed: {exc}")
        self.contexts.clear()


@pytest.fixture
def open_page(
    request: pytest.FixtureRequest, browser: Any, airflow_stack: AirflowStack, ui_artifacts: Path
) -> Iterator[PageFactory]:
    """``open_page()`` gives a signed-in page, ``open_page(logged_in=False)`` a fresh one."""
    factory = PageFactory(browser, lambda: request.getfixturevalue("auth_state"))
    yield factory
    factory.close()


def safe_name(nodeid: str) -> str:
    """A file name made from a test id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::")[-1])[:80]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failure: screenshots and traces of the open pages, and the stack's log tails in the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when not in ("setup", "call") or not report.failed or not ENABLED:
        return
    funcargs = getattr(item, "funcargs", {})
    factory, artifacts = funcargs.get("open_page"), funcargs.get("ui_artifacts")
    if isinstance(factory, PageFactory) and isinstance(artifacts, Path):
        files = factory.save_failure(artifacts, safe_name(item.nodeid))
        if files:
            report.sections.append(("browser artifacts", "\n".join(str(path) for path in files)))
    stack = funcargs.get("airflow_stack")
    if isinstance(stack, AirflowStack):
        report.sections.append(("Airflow stack log tails", stack.log_tails()))


# -- shared steps --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManualRun:
    """A run of ``gooten_manual_order_status`` triggered from its form in the browser."""

    run_id: str
    order_id: str
    state: str
    statuses_before: list[str]
    trigger_form_screenshot: Path


def demo_order_id(source_id: str) -> str:
    """The id of a demo order (``dags/gooten_examples/seed.py``) from its source id, e.g. ``clean``."""
    sys.path.insert(0, str(REPO_ROOT / "dags"))
    try:
        from gooten_examples.seed import demo_orders
    finally:
        sys.path.remove(str(REPO_ROOT / "dags"))
    return next(order.order_id for order in demo_orders() if order.source_id == source_id)


@pytest.fixture(scope="session")
def held_order_run(
    browser: Any, airflow_stack: AirflowStack, ui_artifacts: Path, auth_state: dict[str, Any]
) -> ManualRun:
    """Hold the demo order ``clean`` (New, and no other example DAG touches it) from the trigger form.

    Opens the form of ``gooten_manual_order_status``, enters the order id, chooses Hold, unticks Dry
    run, triggers, and waits for the run to finish. Shared by the trigger-form and extra-link tests.
    """
    from playwright.sync_api import expect

    order_id = demo_order_id("clean")
    statuses_before = airflow_stack.gooten_client().get_order_status(order_id)
    factory = PageFactory(browser, lambda: auth_state)
    page = factory()
    try:
        page.goto(f"{airflow_stack.airflow_url}/dags/{MANUAL_DAG_ID}")
        page.get_by_role("button", name="Trigger Dag").click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_role("heading", name=f"Trigger Dag - {MANUAL_DAG_ID}")).to_be_visible()
        # The Param titles and descriptions of the DAG, rendered as the form.
        for text in ("Order ids", "Target status", "Reason", "Dry run", "Gooten order ids (Safe IDs)"):
            expect(dialog.get_by_text(text).first).to_be_visible()
        dry_run = dialog.get_by_role("checkbox", name="Dry run")
        expect(dry_run).to_be_checked()  # the safe default
        trigger = dialog.get_by_role("button", name="Trigger", exact=True)
        expect(trigger).to_be_disabled()  # no order id yet (minItems=1)

        dialog.locator("[name=element_order_ids]").fill(order_id)
        dialog.get_by_role("combobox", name="Target status").click()
        page.get_by_role("option", name=re.compile(r"^Hold: pause before production")).click()
        expect(dialog.locator("input[name=element_status]")).to_have_value("Hold")
        dialog.locator("[name=element_reason]").fill("UI test: hold before production")
        dialog.locator('label[id="switch:element_dry_run"]').click()  # the switch (its input is hidden)
        expect(dry_run).not_to_be_checked()
        expect(trigger).to_be_enabled()
        trigger.scroll_into_view_if_needed()  # the filled form down to its Trigger button
        screenshot = ui_artifacts / "trigger-form.png"
        page.screenshot(path=str(screenshot), animations="disabled", caret="hide")

        with page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith(f"/dags/{MANUAL_DAG_ID}/dagRuns")
        ) as created:
            trigger.click()
        assert created.value.status == 200, created.value.text()
        body = created.value.json()
        assert body["conf"] == {
            "order_ids": [order_id],
            "status": "Hold",
            "reason": "UI test: hold before production",
            "dry_run": False,
        }
        run_id = body["dag_run_id"]
        expect(page.get_by_text("Dag run has been successfully triggered.")).to_be_visible()
        expect(page).to_have_url(re.compile(f"/dags/{MANUAL_DAG_ID}/runs/"))
        run = airflow_stack.wait_for_run(MANUAL_DAG_ID, run_id)
    except Exception:
        for path in factory.save_failure(ui_artifacts, "held_order_run"):
            print(f"[ui] {path}")
        print(airflow_stack.log_tails())
        raise
    finally:
        factory.close()
    return ManualRun(run_id, order_id, run["state"], statuses_before, screenshot)
