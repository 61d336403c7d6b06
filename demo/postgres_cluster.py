"""A throwaway PostgreSQL cluster on 127.0.0.1, for ``make airflow EXECUTOR=celery`` and the benchmarks.

Debian's server (``postgresql``: ``/usr/lib/postgresql/<version>/bin``) runs ``initdb`` and ``pg_ctl`` in a
temporary folder, listening on 127.0.0.1 only (its Unix socket in that folder too), with password
authentication (scram-sha-256) for one database and one role, ``airflow``. PostgreSQL refuses to run as
root, so as root it runs as the unprivileged user ``gooten-postgres`` (``scripts/install-stack-deps.sh``
creates it), through ``runuser``; as anyone else, as that user.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"
#: The unprivileged user PostgreSQL runs as when this runs as root.
SERVER_USER = "gooten-postgres"
DATABASE = "airflow"
ROLE = "airflow"
POSTGRES_ROOT = Path("/usr/lib/postgresql")


def postgres_bin() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb``.

    :raises FileNotFoundError: PostgreSQL's server is not installed.
    """
    found = sorted(
        (p for p in POSTGRES_ROOT.glob("*/bin") if (p / "initdb").is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not found:
        raise FileNotFoundError(
            f"No PostgreSQL server under {POSTGRES_ROOT}: install Debian's postgresql package "
            "(scripts/install-stack-deps.sh does it)."
        )
    return found[-1]


class PostgresCluster:
    """One PostgreSQL cluster in a temporary folder, started by :meth:`start`, removed by :meth:`stop`.

    :param port: the TCP port on 127.0.0.1.
    :param log_path: where the output of ``initdb`` and the other programs goes, and the server's own log
        once it stops (the server writes it in the cluster's folder meanwhile: ``log_path`` may be in a
        folder the server's user cannot enter).
    """

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self.password = secrets.token_urlsafe(24)
        self.bin = postgres_bin()
        self._folder: Path | None = None
        self._as_root = os.geteuid() == 0

    @property
    def sqlalchemy_url(self) -> str:
        """The metadata database's URL for Airflow (``postgresql+psycopg2://...``, password included)."""
        return f"postgresql+psycopg2://{ROLE}:{self.password}@{HOST}:{self.port}/{DATABASE}"

    def _run(self, *command: str, env: dict[str, str] | None = None) -> None:
        """Run a PostgreSQL program as the server's user; its output goes to the log."""
        full = [str(self.bin / command[0]), *command[1:]]
        if self._as_root:
            full = ["runuser", "-u", SERVER_USER, "--", *full]
        with self.log_path.open("ab") as log:
            done = subprocess.run(  # noqa: S603 - PostgreSQL's own programs, fixed arguments
                full,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd="/",
                check=False,
            )
        if done.returncode != 0:
            text = self.log_path.read_text(errors="replace") + self._server_log()
            tail = "\n".join(text.splitlines()[-20:])
            raise RuntimeError(f"{command[0]} failed (exit code {done.returncode}):\n{tail}")

    def _server_log(self) -> str:
        """The server's log so far ('' before it started)."""
        try:
            return (self._folder / "server.log").read_text(errors="replace") if self._folder else ""
        except OSError:
            return ""

    def start(self) -> PostgresCluster:
        """``initdb``, start the server on 127.0.0.1, and create the ``airflow`` database.

        :raises RuntimeError: a step failed (the log's tail is in the message).
        """
        self._folder = Path(tempfile.mkdtemp(prefix="gooten-postgres-"))
        try:
            self._create_and_start(self._folder)
        except BaseException:
            self.stop()  # a half-made cluster is removed too
            raise
        return self

    def _create_and_start(self, folder: Path) -> None:
        password_file = folder / "pwfile"
        password_file.write_text(self.password + "\n", encoding="utf-8")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        if self._as_root:
            shutil.chown(folder, SERVER_USER)
            shutil.chown(password_file, SERVER_USER)
        password_file.chmod(0o600)
        data = folder / "data"
        self._run(
            "initdb", "-D", str(data), "-U", ROLE, "-A", "scram-sha-256", f"--pwfile={password_file}",
            "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        password_file.unlink()
        options = f"-c listen_addresses={HOST} -p {self.port} -k {folder} -c fsync=off"
        server_log = str(folder / "server.log")
        self._run("pg_ctl", "-D", str(data), "-l", server_log, "-o", options, "-w", "start")
        self._run(
            "createdb", "-h", HOST, "-p", str(self.port), "-U", ROLE, DATABASE,
            env={"PGPASSWORD": self.password},
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the server (fast shutdown), keep its log in ``log_path``, and remove the cluster."""
        folder = self._folder
        if folder is None:
            return
        if (folder / "data" / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(folder / "data"), "-m", "fast", "-w", "stop")
            except RuntimeError as exc:
                print(f"  PostgreSQL did not stop cleanly: {exc}", flush=True)
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(self._server_log())
        self._folder = None
        shutil.rmtree(folder, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
