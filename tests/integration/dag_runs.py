"""Running a DAG defined in a test with a real ``dag.test()`` on the throwaway SQLite metadata DB."""

from __future__ import annotations

from typing import Any


def run_dag(dag: Any, **test_kwargs: Any) -> Any:
    """Serialize ``dag`` into the metadata DB (Airflow 3 runs only serialized DAGs) and run it."""
    from tests.airflow_compat import run_inline_dag

    return run_inline_dag(dag, **test_kwargs)


def run_xcoms(dag_id: str, run_id: str) -> dict[tuple[str, str, int], Any]:
    """Every XCom of a run, deserialized: ``{(task_id, key, map_index): value}``."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id=dag_id, run_id=run_id).all()
        return {(r.task_id, r.key, r.map_index): XComModel.deserialize_value(r) for r in rows}


def xcom_values(dag_run: Any, task_id: str, key: str = "return_value") -> list[Any]:
    """Every XCom value a task pushed under ``key`` in a run, by map index."""
    xcoms = run_xcoms(dag_run.dag_id, dag_run.run_id)
    return [xcoms[found] for found in sorted(k for k in xcoms if k[:2] == (task_id, key))]


def task_states(dag_run: Any) -> dict[tuple[str, int], str]:
    """``{(task_id, map_index): state}`` of a finished run."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id).all()
        return {(ti.task_id, ti.map_index): str(ti.state) for ti in tis}


def reschedule_count(dag_run: Any, task_id: str) -> int:
    """How many times a sensor in reschedule mode gave its slot back during a run."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = (
            session.query(TaskInstance)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id)
            .one()
        )
        return session.query(TaskReschedule).filter_by(ti_id=ti.id).count()
