import json

import pytest

from gooten_provider.testing import GootenApiServer


class RecordingTaskInstance:
    """The one part of a task instance the operator uses outside a DAG run: ``xcom_push``."""

    def __init__(self) -> None:
        self.xcoms: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcoms[key] = value


@pytest.fixture
def ti():
    return RecordingTaskInstance()


@pytest.fixture
def api(monkeypatch):
    """A local Gooten API with fast retries; ``gooten_default`` points at it."""
    with GootenApiServer(retry_after=0.05, slow_seconds=1.0) as server:
        point_connection_at(server, monkeypatch)
        yield server


def point_connection_at(server, monkeypatch, **extra):
    config = server.connection_config()
    config["extra"].update({"backoff_factor": 0.01, **extra})
    monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", json.dumps(config))
