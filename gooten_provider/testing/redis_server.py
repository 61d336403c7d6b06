"""A throwaway ``redis-server`` on 127.0.0.1, for tests, the local Airflow stack and benchmarks.

Debian's ``redis-server`` binary (``apt-get install redis-server``; ``make`` installs it when missing) runs
in its own temporary folder on a free port of 127.0.0.1, with no persistence and, unless told otherwise, a
random password (``requirepass``, written to a config file only this user can read, never on the command
line)::

    with LocalRedisServer() as redis_server:
        client = redis.Redis(**redis_server.client_kwargs())
        ...
        redis_server.kill()  # SIGKILL: what a client sees when Redis dies mid-batch

:meth:`LocalRedisServer.connection_config` gives an Airflow connection of type ``redis`` pointing at it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

HOST = "127.0.0.1"
#: Where Debian installs the server.
DEFAULT_BINARY = "redis-server"


def redis_server_binary() -> str | None:
    """The ``redis-server`` to run (``$GOOTEN_REDIS_SERVER`` or the one on ``PATH``), or ``None``."""
    return shutil.which(os.environ.get("GOOTEN_REDIS_SERVER", DEFAULT_BINARY))


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class LocalRedisServer:
    """One ``redis-server`` process on 127.0.0.1, started by :meth:`start`, stopped by :meth:`stop`.

    :param port: the port (0: a free one).
    :param password: the ``requirepass`` (``None``: a random one; ``""``: none).
    :param binary: the server binary (default: :func:`redis_server_binary`).
    """

    def __init__(self, *, port: int = 0, password: str | None = None, binary: str | None = None) -> None:
        found = binary or redis_server_binary()
        if found is None:
            raise FileNotFoundError(
                "No redis-server on PATH: install Debian's redis-server package (apt-get install "
                "redis-server; the Makefile does it when missing) or set GOOTEN_REDIS_SERVER to a binary."
            )
        self.binary = found
        self.port = port or free_port()
        self.password = secrets.token_urlsafe(24) if password is None else password
        self._folder: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>`` (no password in it: see :meth:`client_kwargs`)."""
        return f"redis://{HOST}:{self.port}"

    def client_kwargs(self, db: int = 0) -> dict[str, Any]:
        """Keyword arguments of ``redis.Redis`` that reach this server."""
        return {"host": HOST, "port": self.port, "password": self.password or None, "db": db}

    def connection_config(self, db: int = 0) -> dict[str, Any]:
        """An Airflow connection of type ``redis`` for this server (``AIRFLOW_CONN_...`` JSON form)."""
        return {
            "conn_type": "redis",
            "host": HOST,
            "port": self.port,
            "password": self.password,
            "extra": {"db": db},
        }

    def start(self, timeout: float = 10.0) -> LocalRedisServer:
        """Start the server and wait until it answers ``PING``.

        :raises RuntimeError: it exited or did not answer within ``timeout`` (its log is in the message).
        """
        if self._folder is None:  # a restart after kill() keeps the folder (and the port)
            self._folder = Path(tempfile.mkdtemp(prefix="gooten-redis-"))
        config = self._folder / "redis.conf"
        lines = [
            f"bind {HOST}",
            f"port {self.port}",
            "protected-mode yes",
            f"dir {self._folder}",
            f"logfile {self._folder / 'redis.log'}",
            'save ""',
            "appendonly no",
            "daemonize no",
        ]
        if self.password:
            lines.append(f"requirepass {self.password}")
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        config.chmod(0o600)
        self._process = subprocess.Popen(  # noqa: S603 - a fixed binary and our own config file
            [self.binary, str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the owner, which stops it in order
        )
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self._process.poll() is not None or time.monotonic() > deadline:
                log = self.log()
                self.stop()
                raise RuntimeError(f"redis-server did not start on {HOST}:{self.port}:\n{log}")
            time.sleep(0.05)
        return self

    def ping(self) -> bool:
        """Tell whether the server answers ``PING`` (over a raw socket: no client library needed)."""
        auth = f"AUTH {self.password}\r\n" if self.password else ""
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as conn:
                conn.sendall(f"{auth}PING\r\n".encode())
                reply = b""
                while b"PONG" not in reply and len(reply) < 1024:
                    chunk = conn.recv(1024)
                    if not chunk:
                        break
                    reply += chunk
                return b"PONG" in reply
        except OSError:
            return False

    def log(self) -> str:
        """The server's log so far ('' when there is none)."""
        if self._folder is None:
            return ""
        try:
            return (self._folder / "redis.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL the server (no goodbye to its clients), as a crash would; :meth:`start` may follow."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its folder."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self) -> LocalRedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
