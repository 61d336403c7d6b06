"""Airflow internals the tests use whose place changed between the admitted 3.x lines.

Imported lazily (inside the functions), so that ``tests/conftest.py`` sets Airflow's environment first.
"""

from __future__ import annotations

from typing import Any


def dag_bag(**kwargs: Any) -> Any:
    """A ``DagBag``, from ``airflow.dag_processing.dagbag`` (3.1+) or ``airflow.models.dagbag`` (3.0)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag
    return DagBag(**kwargs)


def testable(dag: Any) -> Any:
    """The DAG with a ``test()`` method: itself, except on early 3.0 patches.

    There a DAG parsed from a file is the Task SDK's, which has no ``test()``; ``airflow dags test`` runs
    it as core's DAG, and so does this.
    """
    if hasattr(dag, "test"):
        return dag
    from airflow.models.dag import DAG

    return DAG.from_sdk_dag(dag)


def sync_bag_to_db(bag: Any, bundle_name: str = "dags-folder") -> None:
    """Serialize a bag's DAGs into the metadata DB: a function from Airflow 3.1 on, a method on 3.0."""
    try:
        from airflow.dag_processing.dagbag import sync_bag_to_db  # 3.2+
    except ImportError:
        try:
            from airflow.models.dagbag import sync_bag_to_db  # 3.1
        except ImportError:  # 3.0: a method, which needs each DAG's file relative to the bundle
            for dag in bag.dags.values():
                if dag.relative_fileloc is None:  # a DAG defined in a test: as 3.0's DagBag sets it then
                    dag.relative_fileloc = dag.fileloc
            bag.sync_to_db(bundle_name, None)
            return
    sync_bag_to_db(bag, bundle_name, None)


def run_inline_dag(dag: Any, **test_kwargs: Any) -> Any:
    """Run a DAG defined in a test (not in a DAG file) with ``test()``; return its DagRun.

    The Task SDK's ``dag.test()`` runs only DAGs serialized into the metadata DB, in a bundle; core's
    DAG (early 3.0 patches, see :func:`testable`) serializes itself in ``test()``.
    """
    if not hasattr(dag, "test"):
        return testable(dag).test(**test_kwargs)
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()
    bag = dag_bag(dag_folder="/nonexistent", collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag)
    return dag.test(**test_kwargs)


def dag_test_runs_the_task_sdk() -> bool:
    """Whether ``dag.test()`` runs tasks as a deployment does, through the Task SDK's task runner.

    Not on early 3.0 patches: there core's ``DAG.test()`` runs them through its legacy task path, which
    neither stores operator extra links nor expands a mapped ``@task`` (Airflow's bug, not the
    provider's: deployments run tasks through the task runner).
    """
    from airflow.sdk import DAG

    return hasattr(DAG, "test")


def airflow_at_least(release: str) -> bool:
    """Whether the installed Airflow (``apache-airflow-core``) is ``release`` or later, e.g. ``"3.1"``."""
    from importlib.metadata import version

    from packaging.version import Version

    return Version(version("apache-airflow-core")) >= Version(release)
