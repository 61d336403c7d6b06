"""``python -m gooten_provider.webhooks``: help, token generation, secrets from files or the environment only.

Bad settings (exit code 2 with a message) are cases of ``tests/errors/test_webhook_catalogue.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gooten_provider.webhooks.__main__ import build_parser, settings_from
from gooten_provider.webhooks.settings import check_token


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gooten_provider.webhooks", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_explains_the_tls_proxy_and_where_secrets_come_from() -> None:
    result = run_cli("--help")

    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for expected in (
        "binds 127.0.0.1 unless told otherwise",
        "Put it behind the TLS proxy you already run",
        "location /gooten/webhook/ { proxy_pass http://127.0.0.1:8095; }",
        "https://<your host>/gooten/webhook/<token>?orderid=",
        "never arguments",
        "$GOOTEN_RELAY_TOKEN",
        "$GOOTEN_RELAY_AIRFLOW_PASSWORD",
        "never the addresses, names or e-mails",
    ):
        assert expected in text, expected


def test_no_secret_can_be_given_as_an_argument() -> None:
    result = run_cli("--token", "x" * 40, "--airflow-url", "http://127.0.0.1:8080")

    assert result.returncode == 2
    assert "unrecognized arguments: --token and 1 value(s), not shown. Secrets are never arguments" in (
        result.stderr
    )
    options = {option for action in build_parser({})._actions for option in action.option_strings}
    assert not {"--token", "--airflow-token", "--airflow-password", "--password"} & options


def test_new_token_prints_a_fresh_valid_token_each_time() -> None:
    tokens = [run_cli("--new-token").stdout.strip() for _ in range(2)]

    assert tokens[0] != tokens[1]
    assert all(check_token(token) == token and len(token) == 43 for token in tokens)


def test_secrets_are_read_from_files_first_then_the_environment(tmp_path: Path) -> None:
    token_file, password_file = tmp_path / "token", tmp_path / "password"
    token_file.write_text("f" * 40 + "\n", encoding="utf-8")  # a file's final newline is not part of it
    password_file.write_text("file-password\n", encoding="utf-8")
    environ = {
        "GOOTEN_RELAY_TOKEN": "e" * 40,
        "GOOTEN_RELAY_AIRFLOW_URL": "http://127.0.0.1:8080",
        "GOOTEN_RELAY_AIRFLOW_USERNAME": "relay",
        "GOOTEN_RELAY_AIRFLOW_PASSWORD": "env-password",
    }
    parser = build_parser(environ)

    from_env = settings_from(parser.parse_args([]), environ)
    from_files = settings_from(
        parser.parse_args(["--token-file", str(token_file), "--airflow-password-file", str(password_file)]),
        environ,
    )

    assert (from_env.token, from_env.airflow_credentials.password) == ("e" * 40, "env-password")
    assert (from_files.token, from_files.airflow_credentials.password) == ("f" * 40, "file-password")
    assert from_files.airflow_url == "http://127.0.0.1:8080"
    assert "f" * 40 not in repr(from_files) and "file-password" not in repr(from_files)


def test_a_secret_given_as_an_argument_by_mistake_is_never_repeated() -> None:
    secret = "-Zq9" + "s3cr3t" * 6  # a token from --new-token may start with '-'
    for argv, shown in [
        (["--token", secret], "--token and 1 value(s)"),
        ([f"--token={secret}"], "--token and 1 value(s)"),
        ([f"--airflow-password={secret}", "--port", "1"], "--airflow-password and 1 value(s)"),
        (["--airflow-url", "http://a:8080", secret], "(none shown) and 1 value(s)"),
        (["--omit-nice-id", secret[1:]], "(none shown) and 1 value(s)"),
        (["parked", "--outbox", "x", secret[1:]], None),
        (["parked", "--token", secret], "--token and 1 value(s)"),
    ]:
        result = run_cli(*argv)

        assert result.returncode == 2, argv
        assert secret[1:] not in result.stderr, argv
        if shown:
            assert f"unrecognized arguments: {shown}, not shown." in result.stderr, argv
        else:
            assert "argument ROW_ID: not the number of a change, as `parked` lists them (not shown)" in (
                result.stderr
            )
