"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

This dict is the single source of truth for the connection form: Airflow 3.2+ renders it directly, and
:class:`~gooten_provider.hooks.gooten.GootenHook` derives the legacy form methods from it for older UIs.
"""

from __future__ import annotations

from typing import Any

from gooten_provider import __version__

CONNECTION_TYPE: dict[str, Any] = {
    "connection-type": "gooten",
    "hook-class-name": "gooten_provider.hooks.gooten.GootenHook",
    "hook-name": "Gooten",
    "ui-field-behaviour": {
        "hidden-fields": ["schema", "extra"],
        "relabeling": {"login": "Recipe ID", "password": "Partner Billing Key", "host": "API base URL"},
        "placeholders": {
            "login": "Recipe ID from the Gooten Admin",
            "password": "Partner Billing Key, unencoded, exactly as the Gooten Admin shows it",
            "host": "https://api.print.io (default)",
            "port": "443 (the default; enter it to use the Test button on Airflow 3.3.1-3.3.2)",
        },
    },
    "conn-fields": {
        "timeout": {
            "label": "Timeout (seconds)",
            "description": "Seconds to wait for Gooten to connect and to answer each request. Default 30.",
            "schema": {"type": ["number", "null"], "minimum": 0.001},
        },
        "max_retries": {
            "label": "Max retries",
            "description": "Retries of reads that fail on the network or with a 5xx (429s are retried within "
            "throttle_timeout instead); writes are never replayed blindly. 0 to 10; default 3.",
            "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 10},
        },
        "backoff_factor": {
            "label": "Retry backoff factor",
            "description": "Retry delays grow as factor x 2^n seconds, plus jitter. Default 0.5.",
            "schema": {"type": ["number", "null"], "minimum": 0},
        },
        "adaptive_rate": {
            "label": "Adaptive rate",
            "description": "Pace requests at a rate learnt from Gooten's 429 answers, shared by every "
            "thread, and pause them all for a Retry-After. Default on.",
            "schema": {"type": ["boolean", "null"], "default": True},
        },
        "throttle_timeout": {
            "label": "Throttle timeout (seconds)",
            "description": "With adaptive rate: seconds a request keeps being retried while Gooten answers "
            "429, before it fails. Default 300.",
            "schema": {"type": ["number", "null"], "minimum": 0},
        },
        "rate_limit_conn_id": {
            "label": "Shared pace (Redis connection id)",
            "description": "Optional: the id of a connection of type redis. Every task on this account "
            "then shares one pace, kept in that Redis (one rate, one Retry-After pause). Unset: each task "
            "paces itself.",
            "schema": {"type": ["string", "null"]},
        },
        "admin_order_url": {
            "label": "Admin order URL",
            "description": "Optional link template for the task's 'Gooten order' button, with {order_id} "
            "where the order id goes.",
            "schema": {"type": ["string", "null"]},
        },
    },
}


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata for Airflow."""
    return {
        "package-name": "airflow-provider-gooten",
        "name": "Gooten",
        "description": (
            "Gooten print-on-demand API: hold, cancel, reset or test-flag orders, and export them, "
            "from Airflow."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Gooten",
                "external-doc-url": "https://www.gooten.com/api-documentation/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "Gooten", "python-modules": ["gooten_provider.hooks.gooten"]}],
        "operators": [
            {
                "integration-name": "Gooten",
                "python-modules": [
                    "gooten_provider.operators.gooten",
                    "gooten_provider.operators.item_cancel",
                ],
            }
        ],
        "sensors": [{"integration-name": "Gooten", "python-modules": ["gooten_provider.sensors.gooten"]}],
        "triggers": [{"integration-name": "Gooten", "python-modules": ["gooten_provider.triggers.gooten"]}],
        "transfers": [
            {
                "source-integration-name": "Gooten",
                "target-integration-name": "Common IO",
                "python-module": "gooten_provider.transfers.orders_to_object_storage",
            }
        ],
        "extra-links": ["gooten_provider.links.GootenOrderLink"],
        "connection-types": [CONNECTION_TYPE],
        # gooten://orders, the asset the webhook relay posts events to (gooten_provider.assets)
        "asset-uris": [{"schemes": ["gooten"], "handler": "gooten_provider.asset_uri.normalize_gooten_uri"}],
    }
