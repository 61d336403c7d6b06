"""Running the relay and Airflow's REST API on loopback ports for the tests, and talking to them.

* :class:`ServedApp` serves an ASGI app with uvicorn on a thread (the relay's app, or Airflow's own
  FastAPI app in-process: the real REST API, auth manager and metadata DB of the test session).
* :class:`RelayProcess` runs ``python -m gooten_provider.webhooks`` as a process, to kill it for real.
* :func:`order_json` is an order as Gooten posts it, addresses and all (from the local Gooten API's
  order builder), and :data:`PII` the personal values in it that must never reach Airflow.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests
import uvicorn

from gooten_provider.testing.orders import build_order, default_address
from gooten_provider.webhooks.airflow_client import AirflowCredentials
from gooten_provider.webhooks.settings import RelaySettings, new_token

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Personal data in every :func:`order_json` (the shipping and billing address).
PII: tuple[str, ...] = tuple(
    str(value) for value in default_address().values() if isinstance(value, str) and len(value) >= 4
)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def order_json(order_id: str, statuses: Sequence[str], **fields: Any) -> dict[str, Any]:
    """An order JSON as Gooten posts it: items with statuses, addresses, prices, NiceId."""
    gooten_id = int(order_id.split("-", 1)[0]) if order_id.split("-", 1)[0].isdigit() else 1
    return build_order(order_id, list(statuses), gooten_id, fields)


class ServedApp:
    """An ASGI app served by uvicorn on a daemon thread, on ``port`` (0: a free one, kept across restarts)."""

    def __init__(self, app: Any, port: int = 0) -> None:
        self.app = app
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServedApp:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            access_log=False,
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"uvicorn-{self.port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on port {self.port}")
            time.sleep(0.02)
        self.port = int(server.servers[0].sockets[0].getsockname()[1])
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        assert self._thread is not None
        self._thread.join(15)
        self._server = self._thread = None


def relay_settings(
    outbox: Path, airflow_url: str, username: str, password: str, **changes: Any
) -> RelaySettings:
    """Settings of a relay with fast retries, a short read timeout and a fresh token."""
    settings = RelaySettings(
        token=new_token(),
        airflow_url=airflow_url,
        airflow_credentials=AirflowCredentials(username=username, password=password),
        outbox_path=outbox,
        read_timeout=1.0,
        retry_initial=0.05,
        retry_max=0.5,
        airflow_timeout=5.0,
    )
    return replace(settings, **changes)


class Relay(ServedApp):
    """The relay's app on a thread; :attr:`outbox` and :attr:`deliverer` are its own."""

    def __init__(self, settings: RelaySettings, port: int = 0) -> None:
        from gooten_provider.webhooks.app import create_app

        self.settings = settings
        super().__init__(create_app(settings), port)

    @property
    def outbox(self) -> Any:
        return self.app.state.outbox

    @property
    def deliverer(self) -> Any:
        return self.app.state.deliverer

    def webhook_url(self, order_id: str | None, token: str | None = None) -> str:
        url = f"{self.url}/gooten/webhook/{token or self.settings.token}"
        return url if order_id is None else f"{url}?orderid={order_id}"

    def post(self, order: Mapping[str, Any], order_id: str | None = None) -> requests.Response:
        """POST an order JSON as Gooten does."""
        return requests.post(self.webhook_url(order_id or str(order["Id"])), json=order, timeout=10)

    def wait_delivered(self, timeout: float = 30.0) -> None:
        """Wait until the outbox has nothing pending."""
        wait_for(lambda: self.outbox.stats().pending == 0, timeout, "the outbox to be delivered")


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


class RelayProcess:
    """``python -m gooten_provider.webhooks`` in its own process; its output goes to ``log``."""

    def __init__(
        self,
        port: int,
        outbox: Path,
        airflow_url: str,
        env: Mapping[str, str],
        log: Path,
        *options: str,
        wait: bool = True,
    ) -> None:
        self.port = port
        command = [
            sys.executable,
            "-m",
            "gooten_provider.webhooks",
            "--port",
            str(port),
            "--outbox",
            str(outbox),
            "--airflow-url",
            airflow_url,
            "--retry-initial",
            "0.05",
            "--retry-max",
            "0.5",
            *options,
        ]
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("GOOTEN_RELAY_", "AIRFLOW"))}
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command, env={**environ, **env}, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT
            )
        if wait:
            wait_for(self._healthy, 60, f"the relay process on port {port}")

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the relay exited with {self.process.returncode}")
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def health(self) -> dict[str, Any]:
        return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).json()

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to clean up."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        """SIGTERM, as systemd or a container runtime stops it; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
