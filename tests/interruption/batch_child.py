"""A task try in a process of its own, for tests that kill it: ``python -m tests.interruption.batch_child``.

Reads its arguments as JSON from argv[1]: ``order_ids``, ``status`` (or ``"cancel_items"``: cancel every
item of each order instead), ``results_path``, ``try_number``, and ``max_workers``. The connection comes from
``AIRFLOW_CONN_GOOTEN_DEFAULT`` in the environment.
"""

from __future__ import annotations

import json
import sys


class _TaskInstance:
    def __init__(self, try_number: int) -> None:
        self.try_number = try_number

    def xcom_push(self, key: str, value: object) -> None:
        print(json.dumps({"xcom": key, "value": value}), flush=True)


def main() -> None:
    args = json.loads(sys.argv[1])
    from gooten_provider.operators.gooten import GootenCancelOrderItemsOperator, GootenOrderStatusOperator

    common = {"order_ids": args["order_ids"], "results_path": args["results_path"]}
    operator = (
        GootenCancelOrderItemsOperator(task_id="cancel", max_workers=args["max_workers"], **common)
        if args["status"] == "cancel_items"
        else GootenOrderStatusOperator(
            task_id="hold", status=args["status"], max_workers=args["max_workers"], **common
        )
    )
    print(json.dumps({"started": True}), flush=True)
    value = operator.execute({"ti": _TaskInstance(args["try_number"])})
    print(json.dumps({"returned": value}), flush=True)


if __name__ == "__main__":
    main()
