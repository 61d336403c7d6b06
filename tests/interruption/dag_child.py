"""A DAG run by Airflow's own task runner (``dag.test()``) in a process of its own, for tests that signal it.

``python -m tests.interruption.dag_child '<json>'`` with ``dag_id``, ``order_ids``, ``status``,
``max_workers`` and optionally ``results_path``. It uses the metadata DB of ``AIRFLOW_HOME`` from the
environment (the test suite's, already created), and prints the run id as JSON once the run has ended.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    args = json.loads(sys.argv[1])
    import pendulum
    from airflow.sdk import DAG

    from gooten_provider.operators.gooten import GootenOrderStatusOperator
    from tests.integration.dag_runs import run_dag

    with DAG(args["dag_id"], schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        GootenOrderStatusOperator(
            task_id="hold",
            order_ids=args["order_ids"],
            status=args["status"],
            max_workers=args["max_workers"],
            results_path=args.get("results_path"),
        )
    dag_run = run_dag(dag)
    print(json.dumps({"run_id": dag_run.run_id, "state": str(dag_run.state)}), flush=True)


if __name__ == "__main__":
    main()
