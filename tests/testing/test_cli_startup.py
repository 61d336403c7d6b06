"""``python -m gooten_provider.testing`` prints a connection line that works as printed, and its orders."""

from __future__ import annotations

import errno
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from gooten_provider.client.billing_key import billing_key_forms
from gooten_provider.hooks.gooten import GootenHook
from gooten_provider.testing import DEFAULT_BILLING_KEY, GootenApiServer, PortUnavailableError
from gooten_provider.testing.orders import demo_order_specs
from gooten_provider.testing.startup import MAX_LISTED_ORDERS

#: A key of Gooten's shape (base64, with + / =), other than the local API's default one.
OTHER_KEY = "Zx+9/Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz9Xc8Vb7N="


@contextmanager
def cli(*args: str, env: dict[str, str] | None = None, lines: int) -> Iterator[list[str]]:
    """Run the CLI, yield the first ``lines`` lines it printed, then stop it with SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gooten_provider.testing", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    received: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [received.put(line) for line in process.stdout], daemon=True)
    reader.start()
    try:
        printed: list[str] = []
        while len(printed) < lines:
            try:
                printed.append(received.get(timeout=20).rstrip("\n"))
            except queue.Empty:
                pytest.fail(f"the CLI printed only {printed}")
        yield printed
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        reader.join(5)
    assert process.returncode == 0, process.stderr.read()
    assert received.empty(), list(received.queue)  # nothing printed after the startup lines


def exported(line: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """Run an ``export`` line in a POSIX shell, as a user pasting it would; return what it exported."""
    shell = subprocess.run(
        ["sh", "-c", line + '\nprintf %s "$AIRFLOW_CONN_GOOTEN_DEFAULT"'],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"], **(env or {})},
        timeout=10,
    )
    return {"AIRFLOW_CONN_GOOTEN_DEFAULT": shell.stdout}


def test_prints_a_ready_connection_line_and_every_demo_order(monkeypatch: pytest.MonkeyPatch) -> None:
    demo = demo_order_specs()
    with cli("--demo-orders", lines=4 + len(demo)) as printed:
        listening, intro, line, heading, *orders = printed
        assert listening.startswith("Local Gooten API listening on http://127.0.0.1:")
        assert intro == "Airflow connection (a fake test key, for this local API only):"
        assert line.startswith("export AIRFLOW_CONN_GOOTEN_DEFAULT='")
        assert heading == f"{len(demo)} order(s) (id: item statuses):"
        listed = dict(order.strip().split(": ", 1) for order in orders)
        assert listed == {spec["id"]: ", ".join(spec["statuses"]) for spec in demo}

        for name, value in exported(line).items():
            monkeypatch.setenv(name, value)
        hook = GootenHook()  # the connection exactly as the line exported it
        assert {order_id: ", ".join(hook.get_order_status(order_id)) for order_id in listed} == listed
        assert json.loads(os.environ["AIRFLOW_CONN_GOOTEN_DEFAULT"])["password"] == DEFAULT_BILLING_KEY


def test_a_key_from_the_environment_is_never_printed_and_the_line_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with cli(
        "--billing-key-env",
        "GOOTEN_KEY",
        "--demo-orders",
        env={"GOOTEN_KEY": OTHER_KEY},
        lines=4 + len(demo_order_specs()),
    ) as printed:
        intro, line = printed[1], printed[2]
        assert intro == "Airflow connection (the key in $GOOTEN_KEY):"
        assert not any(form in "\n".join(printed) for form in billing_key_forms(OTHER_KEY))

        for name, value in exported(line, {"GOOTEN_KEY": OTHER_KEY}).items():
            monkeypatch.setenv(name, value)
        order_id = demo_order_specs()[0]["id"]
        assert GootenHook().get_order_status(order_id) == ["New"]  # the local API accepted the key


def test_many_orders_are_counted_not_all_listed(tmp_path) -> None:
    orders = [{"id": f"{5000 + n}-a", "statuses": ["New"]} for n in range(MAX_LISTED_ORDERS + 5)]
    seed = tmp_path / "orders.json"
    seed.write_text(json.dumps(orders))
    with cli("--orders-file", str(seed), lines=5 + MAX_LISTED_ORDERS) as printed:
        assert printed[3] == f"{len(orders)} order(s) (id: item statuses):"
        assert printed[4:-1] == [f"  {order['id']}: New" for order in orders[:MAX_LISTED_ORDERS]]
        assert printed[-1] == "  ... and 5 more"


def test_no_orders_says_how_to_add_some() -> None:
    with cli(lines=4) as printed:
        assert printed[3] == "No orders yet: add some with --demo-orders or --orders-file."


# -- a port already taken ------------------------------------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another program listens on."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        yield taken.getsockname()[1]


def test_a_busy_port_is_named_with_port_0_suggested_by_the_cli(busy_port: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gooten_provider.testing", "--port", str(busy_port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"error: Port {busy_port} on 127.0.0.1 is already in use (another local Gooten API, or another "
        "program, listens there): stop that program, choose another port, or pass --port 0 "
        "(GootenApiServer(port=0)) to listen on a free port the system picks.\n"
    )


def test_a_busy_port_is_named_by_the_server_with_the_bind_errno_kept(busy_port: int) -> None:
    with pytest.raises(PortUnavailableError) as refused:
        GootenApiServer(port=busy_port).start()
    assert isinstance(refused.value, OSError)
    assert refused.value.errno == errno.EADDRINUSE
    assert str(refused.value).startswith(f"Port {busy_port} on 127.0.0.1 is already in use")
    assert "--port 0" in str(refused.value)
    assert "Errno" not in str(refused.value)


def test_a_restart_on_a_port_taken_meanwhile_says_so() -> None:
    server = GootenApiServer(port=0).start()
    port = server.port
    server.stop()
    with socket.create_server(("127.0.0.1", port)):
        with pytest.raises(PortUnavailableError, match=f"Port {port} on 127.0.0.1 is already in use"):
            server.start()
