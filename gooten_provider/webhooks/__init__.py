"""A relay from Gooten's order webhooks to Airflow asset events: ``python -m gooten_provider.webhooks``.

Gooten POSTs the order JSON to ``https://<host>/gooten/webhook/<token>?orderid=<id>`` each time an order
item changes. The relay checks the token, keeps only the order id, NiceId and item statuses, stores the
change in a SQLite outbox, and creates an event on the asset ``gooten://orders``
(:data:`gooten_provider.assets.gooten_orders_asset`) through Airflow's REST API. See ``docs/webhooks.md``.

Modules: :mod:`~gooten_provider.webhooks.app` (the ASGI app), :mod:`~gooten_provider.webhooks.order_change`
(what is kept of a webhook, and refusals), :mod:`~gooten_provider.webhooks.outbox` (SQLite),
:mod:`~gooten_provider.webhooks.outbox_lock` (one relay per outbox),
:mod:`~gooten_provider.webhooks.group_commit` (one fsync for concurrent webhooks),
:mod:`~gooten_provider.webhooks.delivery` (outbox to Airflow, with backoff),
:mod:`~gooten_provider.webhooks.airflow_client` (Airflow's REST API),
:mod:`~gooten_provider.webhooks.settings` (settings and secrets). Nothing here imports Airflow.
"""
