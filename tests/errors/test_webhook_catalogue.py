"""The webhook relay's catalogue: every request it refuses, every bad setting, every bad asset URI.

Like ``test_error_catalogue.py``, this module is the single source of its section of ``docs/errors.md``:
:data:`CASES` holds the rows, :func:`test_webhook_case` checks each one for real (an HTTP request to a
relay on a loopback port, the command line run in-process, the asset built), and
:func:`test_webhook_docs_section_is_generated_from_cases` checks the section is what
:func:`render_catalogue` makes of them. Regenerate it with::

    UPDATE_ERRORS_DOC=1 .venv/bin/pytest tests/errors -k docs

For requests, ``message`` is the whole ``"error"`` of the JSON answer, and ``stored`` how many changes the
outbox holds afterwards: a refused request stores nothing and so forwards nothing to Airflow. Answers
never hold the token; the test checks each one.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gooten_provider.webhooks.__main__ import main
from tests.webhooks.harness import Relay, free_port, order_json, relay_settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
BEGIN = (
    "<!-- webhook catalogue: generated from tests/errors/test_webhook_catalogue.py; do not edit by hand -->"
)
END = "<!-- end of webhook catalogue -->"
ORDER_ID = "1001-8c1d6a3e-5b2f-4f0e-9a7d-2e6c3b1a0f9d"
TOKEN = "Ab3_" + "x" * 40  # a valid token for the settings cases
PLACEHOLDER = re.compile(r"\{(path|pid)\}")
READ_TIMEOUT = 1.0


@dataclass
class Answer:
    """An HTTP answer read off the socket."""

    status: int
    headers: dict[str, str]
    body: dict[str, Any]


class Env:
    """A relay on a loopback port (its Airflow is unreachable: refusals never get that far anyway)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.values: dict[str, str] = {}
        settings = relay_settings(
            tmp_path / "outbox.sqlite3",
            f"http://127.0.0.1:{free_port()}",
            "u",
            "p",
            read_timeout=READ_TIMEOUT,
        )
        self.relay = Relay(settings).start()
        self.token = settings.token

    def path(self, order_id: str | None = ORDER_ID, token: str | None = None) -> str:
        path = f"/gooten/webhook/{self.token if token is None else token}"
        return path if order_id is None else f"{path}?orderid={order_id}"

    def send(
        self,
        head: str,
        body: bytes | Iterable[bytes] = b"",
        *,
        headers: dict[str, str] | None = None,
        stall_after_body: bool = False,
    ) -> Answer:
        """Send a raw request (``head`` is ``"METHOD /path"``) and read the answer, even if sending broke."""
        fields = {"Host": "relay.example", "Content-Type": "application/json", **(headers or {})}
        if isinstance(body, bytes):
            fields.setdefault("Content-Length", str(len(body)))
            chunks: Iterable[bytes] = [body]
        else:
            fields["Transfer-Encoding"] = "chunked"
            chunks = (b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in [*body, b""])
        request = f"{head} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
        with socket.create_connection(("127.0.0.1", self.relay.port), timeout=10) as sock:
            try:
                sock.sendall(request.encode("latin-1"))
                for chunk in chunks:
                    sock.sendall(chunk)
            except OSError:
                pass  # the relay answered and closed before the whole body was sent
            return _read_answer(sock)

    def stored(self) -> int:
        stats = self.relay.outbox.stats()
        return stats.pending + stats.delivered

    def stop(self) -> None:
        self.relay.stop()


def _read_answer(sock: socket.socket) -> Answer:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before an answer: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Answer(int(lines[0].split()[1]), headers, json.loads(rest[:length] or b"{}"))


def body(order_id: str = ORDER_ID, statuses: tuple[str, ...] = ("Shipped",), **fields: Any) -> bytes:
    return json.dumps(order_json(order_id, list(statuses), **fields)).encode()


def run_main(env: Env, argv: list[str], environ: dict[str, str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the command line; it must exit 2 before serving. Return what it wrote to stderr."""
    assert main(["--outbox", str(env.tmp_path / "never.sqlite3"), *argv], environ) == 2
    return capsys.readouterr().err.strip()


# -- the catalogue -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad input and what it gets.

    :param run: gives the input; returns an :class:`Answer` (requests), stderr (settings) or an exception.
    :param result: the HTTP status, ``"exit code 2"`` or an exception class name.
    :param stored: changes in the outbox afterwards (requests only).
    """

    id: str
    section: str
    given: str
    run: Callable[..., Any]
    result: int | str
    message: str
    stored: int | None = None
    note: str = ""
    check: Callable[[Any], None] | None = field(default=None, compare=False)


SECTIONS = {
    "request": "Webhook relay: requests to `/gooten/webhook/<token>?orderid=`",
    "settings": "Webhook relay: settings of `python -m gooten_provider.webhooks`",
    "asset": "The `gooten` asset URI",
}

TOO_LARGE = "The body is over 1048576 bytes (1 MiB); a Gooten order JSON is a few KiB."
NO_TOKEN_HINT = "`python -m gooten_provider.webhooks --new-token`"


def _allow_post(answer: Answer) -> None:
    assert answer.headers.get("allow") == "POST"


def _asset(uri: str) -> Callable[..., Any]:
    def run(env: Env, capsys: Any) -> Any:
        from airflow.sdk import Asset

        with pytest.raises(ValueError) as info:
            Asset(name="orders", uri=uri)
        return info.value

    return run


def _settings(argv: list[str], environ: dict[str, str]) -> Callable[..., Any]:
    def run(env: Env, capsys: Any) -> str:
        filled = [PLACEHOLDER.sub(lambda m: env.values[m[1]], arg) for arg in argv]
        return run_main(env, filled, environ, capsys)

    return run


def _missing_token_file(env: Env, capsys: Any) -> str:
    env.values["path"] = str(env.tmp_path / "no-such-token-file")
    return run_main(env, ["--token-file", env.values["path"], "--airflow-url", "http://a:8080"], {}, capsys)


def _outbox_in_use(env: Env, capsys: Any) -> str:
    """A second relay on the outbox of the catalogue's own relay (which holds its lock)."""
    env.values["path"] = str(env.tmp_path / "outbox.sqlite3")
    env.values["pid"] = str(os.getpid())
    argv = ["--outbox", env.values["path"], "--airflow-url", "http://a:8080"]
    return run_main(env, argv, WITH_TOKEN, capsys)


def _argparse_error(argv: list[str]) -> Callable[..., Any]:
    """The command line refused by its parser: exit code 2 and the last line of stderr."""

    def run(env: Env, capsys: Any) -> str:
        with pytest.raises(SystemExit) as exit_:
            main(argv, WITH_TOKEN)
        assert exit_.value.code == 2
        return capsys.readouterr().err.strip().splitlines()[-1]

    return run


def _deep_json(levels: int) -> bytes:
    order = json.loads(body())
    return json.dumps(order)[:-1].encode() + b', "Meta": ' + b"[" * levels + b"]" * levels + b"}"


def _no_redirect(answer: Answer) -> None:
    assert "location" not in answer.headers


def _assert(condition: bool) -> None:
    assert condition


def _stall(env: Env) -> Answer:
    """Send the head and 10 of the 100 bytes announced, then wait for the relay's answer."""
    head = (
        f"POST {env.path()} HTTP/1.1\r\nHost: relay.example\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", env.relay.port), timeout=10) as sock:
        sock.sendall(head.encode() + b'{"Id": "10')
        return _read_answer(sock)


CREDENTIALS = {"GOOTEN_RELAY_AIRFLOW_USERNAME": "relay", "GOOTEN_RELAY_AIRFLOW_PASSWORD": "pw"}
WITH_TOKEN = {"GOOTEN_RELAY_TOKEN": TOKEN, **CREDENTIALS}

CASES: tuple[Case, ...] = (
    Case(
        "relay-no-token",
        "request",
        "no token in the path: `POST /gooten/webhook?orderid=…`",
        lambda env: env.send("POST /gooten/webhook?orderid=1", body()),
        404,
        "No token in the webhook URL: Gooten must post to /gooten/webhook/<token>?orderid= "
        "(register that URL in the Gooten Admin).",
        0,
    ),
    Case(
        "relay-wrong-token",
        "request",
        "a wrong token",
        lambda env: env.send("POST " + env.path(token="w" * 43), body()),
        403,
        "Wrong token in the webhook URL.",
        0,
        "compared in constant time; the relay logs the refusal with the path as `/gooten/webhook/<token>`",
    ),
    Case(
        "relay-method",
        "request",
        "another method than POST (here GET)",
        lambda env: env.send("GET " + env.path()),
        405,
        "GET is not accepted here: Gooten POSTs the order JSON.",
        0,
        "with `Allow: POST`",
        check=_allow_post,
    ),
    Case(
        "relay-body-too-large",
        "request",
        "a body over 1 MiB, announced by `Content-Length`",
        lambda env: env.send("POST " + env.path(), headers={"Content-Length": str(2 * 1024 * 1024)}),
        413,
        TOO_LARGE,
        0,
        "refused before a byte of the body is read",
    ),
    Case(
        "relay-body-too-large-chunked",
        "request",
        "a chunked body that grows over 1 MiB",
        lambda env: env.send("POST " + env.path(), (b" " * 65536 for _ in range(20))),
        413,
        TOO_LARGE,
        0,
        "refused as soon as the limit is passed",
    ),
    Case(
        "relay-read-timeout",
        "request",
        "a body that stalls (10 of 100 announced bytes, then nothing)",
        lambda env: _stall(env),
        408,
        f"The request body did not arrive within {READ_TIMEOUT:g} s.",
        0,
        "`--read-timeout`, 10 s by default, for the whole body",
    ),
    Case(
        "relay-not-json",
        "request",
        "a body that is not JSON",
        lambda env: env.send("POST " + env.path(), b"orderid=1001&status=Shipped"),
        400,
        "The body is not JSON (Expecting value: line 1 column 1 (char 0)); Gooten sends the order as a JSON "
        "object.",
        0,
    ),
    Case(
        "relay-not-an-object",
        "request",
        "JSON that is not an object (here a list)",
        lambda env: env.send("POST " + env.path(), b'[{"Id": "1001-a"}]'),
        400,
        "The body is JSON but not an object (a list); Gooten sends the order as a JSON object.",
        0,
    ),
    Case(
        "relay-no-orderid",
        "request",
        "no `orderid` in the query string",
        lambda env: env.send("POST " + env.path(order_id=None), body()),
        400,
        "No orderid in the query string: the URL registered in the Gooten Admin must end with '?orderid=' "
        "(Gooten appends the order id).",
        0,
        "the URL registered in the Gooten Admin must end with `?orderid=`",
    ),
    Case(
        "relay-no-id",
        "request",
        "an order JSON without `Id`",
        lambda env: env.send("POST " + env.path(), json.dumps({"Items": [{"Status": "Shipped"}]}).encode()),
        422,
        "The order JSON has no 'Id' (Gooten's order id, a string).",
        0,
    ),
    Case(
        "relay-id-mismatch",
        "request",
        "an order JSON whose `Id` is not the URL's `orderid`",
        lambda env: env.send("POST " + env.path(order_id="1002-b"), body()),
        422,
        f"The order JSON's Id '{ORDER_ID}' does not match orderid '1002-b' of the URL.",
        0,
    ),
    Case(
        "relay-no-item-statuses",
        "request",
        "an order JSON without items, or an item without `Status`",
        lambda env: env.send("POST " + env.path(), body(items=[{"Status": "Shipped"}, {"Status": None}])),
        422,
        "The order JSON has no 'Items' list with a 'Status' for each item (Gooten keeps status per item).",
        0,
    ),
    Case(
        "relay-path-after-token",
        "request",
        "a `/` (or more path) after the token: `POST /gooten/webhook/<token>/?orderid=…`",
        lambda env: env.send(f"POST /gooten/webhook/{env.token}/?orderid={ORDER_ID}", body()),
        404,
        "The webhook URL goes on after the token ('/...'): Gooten must post to "
        "/gooten/webhook/<token>?orderid= (no '/' after the token; fix the URL in the Gooten Admin).",
        0,
        "never a redirect: its `Location` would repeat the token",
        check=_no_redirect,
    ),
    Case(
        "relay-nested-too-deeply",
        "request",
        "JSON nested more than 32 levels deep (objects and lists)",
        lambda env: env.send("POST " + env.path(), _deep_json(5000)),
        400,
        "The body's JSON nests objects and lists more than 32 levels deep; a Gooten order JSON is a few "
        "levels deep.",
        0,
        "a Gooten order JSON is about 5 levels deep (the order, its items, their images)",
    ),
    Case(
        "relay-nul-or-lone-surrogate",
        "request",
        "a NUL (`\\u0000`) or a lone surrogate (`\\ud800`) in any string of the JSON",
        lambda env: env.send("POST " + env.path(), body(NiceId="Richa7-\ud800")),
        400,
        "The order JSON holds a NUL character or a lone surrogate (an unpaired \\ud800-\\udfff escape); "
        "Gooten sends UTF-8 text.",
        0,
        "anywhere, keys and fields the relay does not keep included",
    ),
    Case(
        "relay-id-not-safe-id",
        "request",
        "an `Id` that is not a Gooten Safe ID (`{number}-{GUID}`), e.g. an e-mail address",
        lambda env: env.send(
            "POST " + env.path(order_id="jane%40example.com"), body(order_id="jane@example.com")
        ),
        422,
        "The order JSON's Id 'jane@example.com' is not a Gooten Safe ID: the order number, a dash and a "
        "GUID, such as '115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4'.",
        0,
        "nothing but a Safe ID is stored or reaches Airflow",
    ),
    Case(
        "relay-bad-item-status",
        "request",
        "an item status that is not a status name: over 64 characters, or other than letters, digits, "
        "spaces, `-` and `_` (a name, an address)",
        lambda env: env.send("POST " + env.path(), body(statuses=("Shipped", "Jane Doe, 1 Main St"))),
        422,
        "The item status 'Jane Doe, 1 Main St' is not a status name: at most 64 letters, digits, spaces, "
        "hyphens or underscores (Gooten's are words such as 'InProduction').",
        0,
        "surrounding blanks are dropped first",
    ),
    Case(
        "relay-bad-nice-id",
        "request",
        "a `NiceId` over 64 characters or with a control character",
        lambda env: env.send("POST " + env.path(), body(NiceId="Richa7-5f3\n" + "x" * 10)),
        422,
        "The order JSON's NiceId is not a short reference: at most 64 printable characters (Gooten's are "
        "such as 'Richa13-cd4').",
        0,
    ),
    Case(
        "relay-outbox-unwritable",
        "request",
        "an order change the outbox cannot store (disk full, file gone)",
        lambda env: (env.relay.outbox.close(), env.send("POST " + env.path(), body()))[1],
        503,
        "The relay could not store the change; send it again later.",
        None,
        "logged as an error; Gooten documents no retry, so watch the relay's log. Concurrent webhooks "
        "share a commit; when it fails, their changes are committed one by one, so only a change the "
        "outbox refuses is answered 503",
    ),
    Case(
        "relay-duplicate",
        "request",
        "the same order with the same item statuses again, within the dedupe window",
        lambda env: [env.send("POST " + env.path(), body()) for _ in range(2)][-1],
        200,
        "",
        1,
        'not an error: answered `{"accepted": true, "duplicate": true}`; one event reaches Airflow',
        check=lambda answer: _assert(answer.body == {"accepted": True, "duplicate": True}),
    ),
    Case(
        "relay-orderid-case",
        "request",
        "`?OrderId=` instead of `?orderid=`",
        lambda env: env.send(f"POST /gooten/webhook/{env.token}?OrderId={ORDER_ID}", body()),
        200,
        "",
        1,
        "not an error: the parameter's name is matched case-insensitively",
    ),
    Case(
        "settings-no-token",
        "settings",
        "no webhook token set",
        _settings(["--airflow-url", "http://a:8080"], CREDENTIALS),
        "exit code 2",
        "error: No webhook token: set GOOTEN_RELAY_TOKEN, or name a file holding it with --token-file or "
        f"GOOTEN_RELAY_TOKEN_FILE (generate one with {NO_TOKEN_HINT}).",
    ),
    Case(
        "settings-short-token",
        "settings",
        "a token shorter than 32 characters, or with characters a URL path would encode",
        _settings(["--airflow-url", "http://a:8080"], {**CREDENTIALS, "GOOTEN_RELAY_TOKEN": "s3cret/+"}),
        "exit code 2",
        "error: The webhook token must be at least 32 characters of A-Z, a-z, 0-9, '-' and '_' (the one "
        f"given has 8 characters); generate one with {NO_TOKEN_HINT}.",
        note="the message never repeats the token",
    ),
    Case(
        "settings-token-file-missing",
        "settings",
        "`--token-file` naming a file that cannot be read",
        _missing_token_file,
        "exit code 2",
        "error: Cannot read the secret file {path}: FileNotFoundError.",
    ),
    Case(
        "settings-no-airflow-url",
        "settings",
        "no Airflow URL",
        _settings([], WITH_TOKEN),
        "exit code 2",
        "error: No Airflow URL: pass --airflow-url or set GOOTEN_RELAY_AIRFLOW_URL (e.g. http://127.0.0.1:8080).",
    ),
    Case(
        "settings-airflow-url-scheme",
        "settings",
        "an Airflow URL that is not http(s)",
        _settings(["--airflow-url", "airflow.example:8080"], WITH_TOKEN),
        "exit code 2",
        "error: The Airflow URL must start with http:// or https://, got 'airflow.example:8080' (the address "
        "of Airflow's UI and REST API, e.g. http://127.0.0.1:8080).",
    ),
    Case(
        "settings-no-credentials",
        "settings",
        "no Airflow credentials",
        _settings(["--airflow-url", "http://a:8080"], {"GOOTEN_RELAY_TOKEN": TOKEN}),
        "exit code 2",
        "error: No Airflow credentials: set GOOTEN_RELAY_AIRFLOW_TOKEN (or GOOTEN_RELAY_AIRFLOW_TOKEN_FILE, "
        "--airflow-token-file) to an API token, or GOOTEN_RELAY_AIRFLOW_USERNAME (--airflow-username) and "
        "GOOTEN_RELAY_AIRFLOW_PASSWORD (or GOOTEN_RELAY_AIRFLOW_PASSWORD_FILE, --airflow-password-file).",
    ),
    Case(
        "settings-password-without-username",
        "settings",
        "an Airflow password without a username",
        _settings(
            ["--airflow-url", "http://a:8080"],
            {"GOOTEN_RELAY_TOKEN": TOKEN, "GOOTEN_RELAY_AIRFLOW_PASSWORD": "pw"},
        ),
        "exit code 2",
        "error: An Airflow password is set but no username: set GOOTEN_RELAY_AIRFLOW_USERNAME or "
        "--airflow-username.",
    ),
    Case(
        "settings-retry-order",
        "settings",
        "`--retry-initial` above `--retry-max`",
        _settings(["--airflow-url", "http://a:8080", "--retry-initial", "90"], WITH_TOKEN),
        "exit code 2",
        "error: The first retry delay (90 s) must not exceed the longest (60 s): lower --retry-initial or "
        "raise --retry-max.",
    ),
    Case(
        "settings-outbox-in-use",
        "settings",
        "a second relay on an outbox another relay uses",
        _outbox_in_use,
        "exit code 2",
        "error: Another relay already uses the outbox {path} (process {pid}): one outbox takes one relay, "
        "or every change would be delivered twice. Stop that relay, or give this one its own --outbox. "
        "(Lock file: {path}.lock.)",
        note="a lock on `<outbox>.lock`, released however the relay ends (SIGKILL included)",
    ),
    Case(
        "settings-secret-as-argument",
        "settings",
        "a secret as an argument (`--token VALUE`, `--airflow-password=VALUE`)",
        _argparse_error(["--token", TOKEN]),
        "exit code 2",
        "python -m gooten_provider.webhooks: error: unrecognized arguments: --token and 1 value(s), not "
        "shown. Secrets are never arguments (every user of the machine can read command lines): see --help "
        "for the environment variables and files the relay reads them from.",
        note="after the usage; no value the parser did not understand is repeated",
    ),
    Case(
        "settings-park-after",
        "settings",
        "`--park-after` below 1",
        _argparse_error(["--park-after", "0"]),
        "exit code 2",
        "python -m gooten_provider.webhooks: error: argument --park-after: must be 1 or more refusals, got 0",
        note="after the usage",
    ),
    Case(
        "asset-uri-unknown",
        "asset",
        '`Asset(uri="gooten://shipments")`',
        _asset("gooten://shipments"),
        "ValueError",
        "Invalid Gooten asset URI 'gooten://shipments/': use 'gooten://orders' (known resources: orders).",
        note="raised when the DAG is parsed: an import error of the DAG file",
    ),
    Case(
        "asset-uri-path",
        "asset",
        '`Asset(uri="gooten://orders/1001")`',
        _asset("gooten://orders/1001"),
        "ValueError",
        "Invalid Gooten asset URI 'gooten://orders/1001': it takes no path, query, user or port; use "
        "'gooten://orders'.",
        note="one asset stands for every order: filter by `extra['order_id']` in the DAG",
    ),
    Case(
        "asset-uri-case",
        "asset",
        '`Asset(uri="gooten://Orders/")`',
        lambda env, capsys: __import__("airflow.sdk", fromlist=["Asset"]).Asset(
            name="o", uri="gooten://Orders/"
        ),
        "none",
        "",
        note="not an error: normalised to `gooten://orders`",
        check=lambda asset: _assert(asset.uri == "gooten://orders"),
    ),
)


# -- the tests -----------------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    environment = Env(tmp_path)
    try:
        yield environment
    finally:
        environment.stop()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_webhook_case(case: Case, env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    if case.section == "request":
        answer = case.run(env)
        assert answer.status == case.result, answer
        assert answer.body.get("error", "") == case.message
        assert env.token not in json.dumps(answer.body) + json.dumps(answer.headers)
        if case.stored is not None:
            assert env.stored() == case.stored
        returned: Any = answer
    else:
        returned = case.run(env, capsys)
        expected = PLACEHOLDER.sub(lambda m: env.values[m[1]], case.message)
        if case.section == "settings":
            assert returned == expected
            assert TOKEN not in returned
        elif case.result != "none":
            assert type(returned).__name__ == case.result
            assert str(returned) == expected
    if case.check is not None:
        case.check(returned)


def test_case_ids_are_unique_and_every_section_is_used() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert {case.section for case in CASES} == set(SECTIONS)


def test_every_refusal_reason_of_the_relay_has_a_case() -> None:
    source = (Path(__file__).resolve().parents[2] / "gooten_provider" / "webhooks").glob("*.py")
    statuses = {
        int(status)
        for path in source
        for status in re.findall(r"WebhookRefused\(\s*(\d{3})", path.read_text())
    }
    assert statuses <= {case.result for case in CASES if case.section == "request"}


# -- the doc -------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    shown = PLACEHOLDER.sub(r"<\1>", text)
    fence = "``" if "`" in shown else "`"
    return f"{fence}{shown}{fence}" if shown else ""


def render_catalogue() -> str:
    """The section's tables, one per :data:`SECTIONS` entry, one row per case."""
    lines = [BEGIN]
    for section, title in SECTIONS.items():
        requests = section == "request"
        columns = ["Id", "Bad input", "Result", "Message", *(["Stored"] if requests else []), "Notes"]
        lines += ["", f"### {title}", "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        for case in (case for case in CASES if case.section == section):
            result = (
                f"`{case.result}`"
                if isinstance(case.result, int) or case.result[0].isupper()
                else case.result
            )
            stored = "n/a" if case.stored is None else ("none" if case.stored == 0 else str(case.stored))
            cells = [f"`{case.id}`", case.given, result, _code(case.message), *([stored] if requests else [])]
            cells.append(case.note)
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    lines += ["", END]
    return "\n".join(lines)


def test_webhook_docs_section_is_generated_from_cases() -> None:
    doc = DOC.read_text(encoding="utf-8")
    expected = render_catalogue()
    if os.environ.get("UPDATE_ERRORS_DOC"):
        if BEGIN not in doc:
            doc = doc.rstrip("\n") + "\n\n" + BEGIN + "\n" + END + "\n"
        start, end = doc.index(BEGIN), doc.index(END) + len(END)
        DOC.write_text(doc[:start] + expected + doc[end:], encoding="utf-8")
        doc = DOC.read_text(encoding="utf-8")
    start, end = doc.index(BEGIN), doc.index(END) + len(END)
    assert doc[start:end] == expected, (
        "docs/errors.md is out of date: run UPDATE_ERRORS_DOC=1 .venv/bin/pytest tests/errors -k docs"
    )
