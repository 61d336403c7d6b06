"""Airflow assets of the Gooten provider, for DAGs to schedule on.

``gooten_orders_asset`` changes whenever Gooten reports an order change: the webhook relay
(``python -m gooten_provider.webhooks``, see ``docs/webhooks.md``) turns each of Gooten's webhooks into an
asset event on it, whose ``extra`` holds :data:`EVENT_EXTRA_KEYS`::

    from airflow.sdk import dag, task
    from gooten_provider.assets import gooten_orders_asset

    @dag(schedule=[gooten_orders_asset])
    def on_order_changes():
        @task
        def changed_orders(*, triggering_asset_events=None):
            return [event.extra["order_id"] for event in triggering_asset_events[gooten_orders_asset]]

Several events may be consumed by one run, and a change may be delivered more than once: read every
event, and re-read the order from Gooten before acting on it.
"""

from __future__ import annotations

from airflow.sdk import Asset

from gooten_provider.asset_uri import ORDERS_URI

#: Every order of the Gooten account; one event per order change reported by Gooten.
gooten_orders_asset = Asset(name="gooten_orders", uri=ORDERS_URI, group="gooten")

#: The keys of an event's ``extra``, as the relay sets them (Airflow adds ``from_rest_api``).
EVENT_EXTRA_KEYS: tuple[str, ...] = ("change_id", "order_id", "nice_id", "item_statuses", "received_at")
