"""Test settings shared by the whole suite.

Airflow reads its configuration once, at first import, so the environment is set here, before any test
module imports Airflow: a throwaway AIRFLOW_HOME (SQLite metadata DB inside it), no example DAGs, and the
project's ``dags/`` folder as the DAG bundle.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DAGS_FOLDER = REPO_ROOT / "dags"

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="gooten-tests-airflow-home-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ.pop("AIRFLOW_CONN_GOOTEN_DEFAULT", None)


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[None]:
    """A fresh SQLite metadata DB for tests that run DAGs with ``dag.test()``."""
    from airflow.utils import db

    db.resetdb()
    yield
