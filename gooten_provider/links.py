"""The "Gooten order" button on a task: a link to the order in the Gooten Admin."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow.providers.common.compat.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator, TaskInstanceKey


def order_url(template: str | None, order_id: str) -> str | None:
    """Fill ``{order_id}`` in the connection's ``admin_order_url`` template; ``None`` without a template."""
    if not template:
        return None
    return template.replace("{order_id}", quote(order_id, safe=""))


class GootenOrderLink(BaseOperatorLink):
    """Links a task to the order it changed, from the connection's ``admin_order_url`` template.

    Airflow 3 asks for the link on the worker when the task ends, from the task that just ran, and stores
    it for the UI; the task sets ``order_url`` when it handled exactly one order, otherwise there is none.
    """

    name = "Gooten order"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """Return the order URL the task recorded, or an empty string (no link)."""
        return getattr(operator, "order_url", None) or ""
