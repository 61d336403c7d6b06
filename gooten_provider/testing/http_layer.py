"""The local API's socket layer: a threaded HTTP/1.1 server that hands each request to the API, raw.

Fault injection needs raw control of each socket, so this is built on
:class:`http.server.ThreadingHTTPServer`: a reply is written with one ``sendall`` on a ``TCP_NODELAY``
socket (keep-alive clients do not stall on delayed ACKs), and a connection can be dropped with a TCP RST and
no reply. What a request means is the API's business (:meth:`RequestSink.serve`); nothing here knows Gooten.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import socketserver
import struct
import sys
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

JSON_TYPE = "application/json; charset=utf-8"
#: The most of a request body kept for the API (the rest is read and dropped): the ``Ids`` of one order's
#: cancellation never come near it.
MAX_KEPT_BODY = 1 << 20
HTML_TYPE = "text/html; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP reply, written in one ``sendall``."""

    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()
    #: Bytes of the body held back although ``Content-Length`` counts them; the connection then closes.
    cut: int = 0


@dataclass(frozen=True, slots=True)
class Arrival:
    """A request as it arrived: its line, its body (its first :data:`MAX_KEPT_BODY` bytes), its connection."""

    method: str
    #: The request target before ``?``.
    raw_path: str
    #: The query string (after ``?``), raw.
    query: str
    connection_id: int
    #: ``time.monotonic()`` when the request had been read.
    started: float
    #: Whether it is the first request of its TCP connection (which pays the connect latency).
    first_on_connection: bool
    body: bytes = b""


class Connection(Protocol):
    """What the API may do with the connection of a request: answer it, or drop it."""

    def send(self, reply: Reply) -> None:
        """Write the reply (status line, headers and body) in one ``sendall``."""
        ...

    def abort(self) -> None:
        """Drop the connection with a TCP RST, sending no reply."""
        ...


class RequestSink(Protocol):
    """The API served by the socket layer."""

    def next_connection_id(self) -> int:
        """A new id for an accepted TCP connection."""
        ...

    def serve(self, arrival: Arrival, connection: Connection) -> None:
        """Answer (or drop) one request."""
        ...


class PortUnavailableError(OSError):
    """The local API could not listen on its port; the message names the port and what to do.

    An :class:`OSError` with the bind's ``errno`` (``EADDRINUSE``, ``EACCES``), whose text is the
    explanation alone, not ``[Errno 98] Address already in use``.
    """

    def __str__(self) -> str:
        return str(self.strerror)

    @classmethod
    def explain(cls, host: str, port: int, error: OSError) -> OSError:
        """The error to raise for a failed bind: explained when the port is the cause, else ``error``."""
        if error.errno == errno.EADDRINUSE:
            why = "is already in use (another local Gooten API, or another program, listens there)"
        elif error.errno == errno.EACCES:
            why = "may not be used by this user (ports below 1024 need privileges)"
        else:
            return error
        return cls(
            error.errno,
            f"Port {port} on {host} {why}: stop that program, choose another port, or pass --port 0 "
            "(GootenApiServer(port=0)) to listen on a free port the system picks.",
        )


def loopback_host(host: str) -> str:
    """Return ``host`` if it is an IPv4 loopback address (``localhost`` -> ``127.0.0.1``)."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or address.version != 4 or not address.is_loopback:
        raise ValueError(f"The local Gooten API only binds IPv4 loopback addresses, not {host!r}.")
    return host


class RequestHandler(BaseHTTPRequestHandler):
    """Handles one TCP connection (HTTP/1.1 keep-alive): reads each request and hands it to the API."""

    protocol_version = "HTTP/1.1"
    server_version = "LocalGootenAPI/1.0"
    sys_version = ""
    server: HttpServer

    def setup(self) -> None:
        """Prepare per-connection state (request count, connection id)."""
        super().setup()
        self._requests_on_connection = 0
        self._connection_id = self.server.connection_id(self.request)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent: the API journals every request."""

    def do_GET(self) -> None:
        """Handle a GET request."""
        self._handle()

    def do_POST(self) -> None:
        """Handle a POST request."""
        self._handle()

    def do_PUT(self) -> None:
        """Handle a PUT request."""
        self._handle()

    def do_DELETE(self) -> None:
        """Handle a DELETE request."""
        self._handle()

    def do_PATCH(self) -> None:
        """Handle a PATCH request."""
        self._handle()

    def _handle(self) -> None:
        started = time.monotonic()
        first_on_connection = self._requests_on_connection == 0
        self._requests_on_connection += 1
        try:
            body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        raw_path, _, query = self.path.partition("?")
        arrival = Arrival(
            self.command, raw_path, query, self._connection_id, started, first_on_connection, body
        )
        self.server.api.serve(arrival, self)

    def _read_body(self) -> bytes:
        """Read the whole body (so the next request on the connection stays in sync); keep its first MiB."""
        kept = bytearray()
        if self.headers.get("Transfer-Encoding", "").strip().lower() == "chunked":
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ValueError("connection closed inside a chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(kept)
                kept += self.rfile.read(size + 2)[:size][: max(0, MAX_KEPT_BODY - len(kept))]
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                raise ValueError("connection closed inside the body")
            kept += chunk[: max(0, MAX_KEPT_BODY - len(kept))]
            length -= len(chunk)
        return bytes(kept)

    def send(self, reply: Reply) -> None:
        """Write status line, headers and body in one ``sendall``."""
        try:
            phrase = HTTPStatus(reply.status).phrase
        except ValueError:
            phrase = ""
        lines = [
            f"HTTP/1.1 {reply.status} {phrase}",
            f"Server: {self.server_version}",
            f"Date: {formatdate(usegmt=True)}",
            f"Content-Type: {reply.content_type}",
            f"Content-Length: {len(reply.body) + reply.cut}",
        ]
        lines.extend(f"{name}: {value}" for name, value in reply.headers)
        self.close_connection = self.close_connection or reply.cut > 0  # the rest of the body never comes
        if self.close_connection:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body
        try:
            self.connection.sendall(data)
        except OSError:
            self.close_connection = True

    def abort(self) -> None:
        """Drop the connection with a TCP RST (SO_LINGER on, linger 0, then close), sending no reply."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # The socket really closes once the buffered reader lets go of it; no FIN is ever sent.
        for close in (self.rfile.close, sock.close):
            try:
                close()
            except OSError:
                pass


class HttpServer(ThreadingHTTPServer):
    """The listening socket: one daemon thread per connection, each connection tracked for stop()."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: RequestSink) -> None:
        self.api = api
        self._connections_lock = threading.Lock()
        self._connections: dict[socket.socket, tuple[int, threading.Thread]] = {}
        super().__init__(address, RequestHandler)

    def server_bind(self) -> None:
        """Bind without the reverse-DNS lookup ``HTTPServer.server_bind`` does (it can be slow)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept a connection and turn off Nagle's algorithm on it."""
        sock, address = super().get_request()
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        return sock, address

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in a new daemon thread, registered so stop() can close it."""
        connection_id = self.api.next_connection_id()
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"local-gooten-api-connection-{connection_id}",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[request] = (connection_id, thread)
        thread.start()

    def connection_id(self, request: Any) -> int:
        """Return the id given to a connection when it was accepted."""
        with self._connections_lock:
            entry = self._connections.get(request)
        return entry[0] if entry else 0

    def shutdown_request(self, request: Any) -> None:
        """Forget the connection, then close it."""
        with self._connections_lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def close_connections(self) -> list[threading.Thread]:
        """Shut down every open connection; return the threads serving them."""
        with self._connections_lock:
            entries = list(self._connections.items())
        for sock, _ in entries:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return [thread for _, (_, thread) in entries]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away; report anything else on stderr."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)
