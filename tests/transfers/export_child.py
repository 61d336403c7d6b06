"""An export try in a process of its own, for the test that kills it.

Run as ``python -m tests.transfers.export_child``.

Reads its arguments as JSON from argv[1]: the operator's keyword arguments. The connection comes from
``AIRFLOW_CONN_GOOTEN_DEFAULT`` in the environment.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    from gooten_provider.transfers.orders_to_object_storage import GootenOrdersToObjectStorageOperator

    operator = GootenOrdersToObjectStorageOperator(task_id="export", **json.loads(sys.argv[1]))
    print(json.dumps({"started": True}), flush=True)
    print(json.dumps({"returned": operator.execute({})}), flush=True)


if __name__ == "__main__":
    main()
