"""The "Gooten order" button on a task: a link to the order in the Gooten Admin."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator, TaskInstanceKey

#: XCom key under which a task stores the URL of the order it handled.
ORDER_URL_XCOM_KEY = "gooten_order_url"


def order_url(template: str | None, order_id: str) -> str | None:
    """Fill ``{order_id}`` in the connection's ``admin_order_url`` template; ``None`` without a template."""
    if not template:
        return None
    return template.replace("{order_id}", quote(order_id, safe=""))


class GootenOrderLink(BaseOperatorLink):
    """Links a task to the order it changed, from the connection's ``admin_order_url`` template.

    The task stores the URL in XCom when it handled exactly one order; otherwise there is no link.
    """

    name = "Gooten order"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """Return the stored order URL, or an empty string (no link)."""
        return XCom.get_value(ti_key=ti_key, key=ORDER_URL_XCOM_KEY) or ""
