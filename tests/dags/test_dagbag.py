"""The DAG folder parses cleanly: exactly the example DAGs, and the support package is ignored."""

from __future__ import annotations

from pathlib import Path

from tests.airflow_compat import dag_bag

from . import DAG_IDS, DAGS_FOLDER


def test_dags_folder_imports_without_errors_and_holds_the_examples() -> None:
    bag = dag_bag(dag_folder=str(DAGS_FOLDER))

    assert bag.import_errors == {}
    assert set(bag.dag_ids) == DAG_IDS
    # dags/.airflowignore keeps the processor out of the support package: only the DAG files are parsed.
    # (3.0 names them "/x.py", later lines "x.py")
    assert {Path(stat.file).name for stat in bag.dagbag_stats} == {f"{dag_id}.py" for dag_id in DAG_IDS}


def test_every_dag_is_documented_and_tagged() -> None:
    bag = dag_bag(dag_folder=str(DAGS_FOLDER))
    for dag_id in DAG_IDS:
        dag = bag.dags[dag_id]
        assert dag.doc_md and dag.doc_md.strip().startswith("###"), dag_id
        assert "gooten" in dag.tags and "example" in dag.tags
        assert dag.catchup is False
        module = __import__(dag_id)
        assert module.__doc__ and "gooten_default" in module.__doc__, dag_id


def test_scheduled_dags_default_to_real_changes_and_manual_to_dry_run() -> None:
    bag = dag_bag(dag_folder=str(DAGS_FOLDER))
    assert bag.dags["gooten_dq_hold_cancel"].params["dry_run"] is False
    assert bag.dags["gooten_manual_order_status"].params["dry_run"] is True
    assert bag.dags["gooten_manual_order_status"].timetable.can_be_scheduled is False
