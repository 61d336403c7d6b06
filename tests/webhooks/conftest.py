"""Fixtures of the relay tests: a real Airflow REST API in-process, and relays on threads.

``airflow_api`` serves Airflow's own FastAPI app (``airflow.api_fastapi.app.create_app``) with uvicorn on
a loopback port, on the session's SQLite metadata DB, with the simple auth manager and a user of the
relay's own. A DAG scheduled on ``gooten_orders_asset`` is written to the DB, so the asset exists, as it
does once a deployed Airflow has parsed such a DAG. The relay then talks to Airflow as in production:
``POST /auth/token``, ``GET /api/v2/assets``, ``POST /api/v2/assets/events``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .harness import Relay, ServedApp, relay_settings

USERNAME = "gooten-relay"
PASSWORD = "relay-password-4b7e1c"


@dataclass
class AirflowApi:
    """Airflow's REST API served in-process; :meth:`events` reads the asset's events from the metadata DB."""

    served: ServedApp
    username: str = USERNAME
    password: str = PASSWORD

    @property
    def url(self) -> str:
        return self.served.url

    def events(self, order_id: str | None = None) -> list[dict[str, Any]]:
        """The ``extra`` of every event on ``gooten://orders`` (of one order), oldest first."""
        from airflow.models.asset import AssetEvent, AssetModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            rows = session.scalars(
                select(AssetEvent)
                .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                .where(AssetModel.uri == "gooten://orders")
                .order_by(AssetEvent.id)
            ).all()
            extras = [dict(row.extra) for row in rows]
        return [extra for extra in extras if order_id is None or extra.get("order_id") == order_id]


def _register_the_asset() -> None:
    """Write a DAG scheduled on the orders asset to the metadata DB, which creates the asset."""
    import pendulum
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    from gooten_provider.assets import gooten_orders_asset

    with DAG(
        "gooten_relay_test_consumer", schedule=[gooten_orders_asset], start_date=pendulum.datetime(2025, 1, 1)
    ) as dag:
        EmptyOperator(task_id="noop")
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder="/nonexistent", collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


@pytest.fixture(scope="session")
def airflow_api(airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowApi]:
    """Airflow's REST API on a loopback port, with a user for the relay (role op) and the orders asset."""
    from airflow.configuration import conf

    passwords = tmp_path_factory.mktemp("airflow-auth") / "passwords.json"
    passwords.write_text(json.dumps({USERNAME: PASSWORD}), encoding="utf-8")
    settings = {
        ("core", "simple_auth_manager_users"): f"{USERNAME}:op",  # the least role that may create events
        ("core", "simple_auth_manager_passwords_file"): str(passwords),
        ("core", "simple_auth_manager_all_admins"): "False",
        ("api_auth", "jwt_secret"): "relay-tests-" + "x" * 64,
    }
    previous = {key: conf.get(*key, fallback=None) for key in settings}
    for (section, key), value in settings.items():
        conf.set(section, key, value)
    from airflow.api_fastapi.app import create_app, purge_cached_app

    _register_the_asset()
    served = ServedApp(create_app(apps="core")).start()
    try:
        yield AirflowApi(served)
    finally:
        served.stop()
        purge_cached_app()
        for (section, key), value in previous.items():
            if value is None:
                conf.remove_option(section, key)
            else:
                conf.set(section, key, value)


@pytest.fixture
def start_relay(tmp_path: Path, airflow_api: AirflowApi) -> Iterator[Callable[..., Relay]]:
    """Start relays on threads (delivering to ``airflow_api`` unless told otherwise); all stop at teardown."""
    relays: list[Relay] = []

    def start(port: int = 0, **changes: Any) -> Relay:
        changes.setdefault("outbox_path", tmp_path / "outbox.sqlite3")
        settings = relay_settings(
            changes.pop("outbox_path"),
            changes.pop("airflow_url", airflow_api.url),
            USERNAME,
            PASSWORD,
            **changes,
        )
        relay = Relay(settings, port).start()
        relays.append(relay)
        return relay  # type: ignore[return-value]

    yield start
    for relay in reversed(relays):
        relay.stop()
