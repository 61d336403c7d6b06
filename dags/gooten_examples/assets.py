"""The Airflow Asset that stands for the warehouse's order tables.

Whatever loads orders into the warehouse (an ELT job, another DAG with ``outlets=[WAREHOUSE_ORDERS]``, or
"Create Asset Event" in the UI) marks it updated; ``gooten_dq_hold_cancel`` and
``gooten_reconcile_order_statuses`` run on those updates.
"""

from __future__ import annotations

from airflow.sdk import Asset

#: The warehouse tables ``orders``, ``order_items`` and ``shipping_addresses``, as one Asset.
WAREHOUSE_ORDERS = Asset(name="gooten_warehouse_orders", uri="gooten-warehouse://orders", group="gooten")
