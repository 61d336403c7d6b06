"""What ``python -m gooten_provider.testing`` prints once it listens: a ready connection line, the orders.

The ``export`` line points Airflow's ``gooten_default`` connection at the server. With the default fake
test key it holds that key (a public test value, accepted by this local API only); with
``--billing-key-env VAR`` it holds no key at all, but ``"$VAR"``, which the shell fills in when the line
is run, so the key is never printed.
"""

from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gooten_provider.testing.server import GootenApiServer

#: At most this many orders are listed; the rest are counted.
MAX_LISTED_ORDERS = 20
_KEY_MARKER = "__billing_key_from_the_environment__"


def export_line(server: GootenApiServer, conn_id: str, billing_key_env: str | None = None) -> str:
    """A POSIX shell line ``export AIRFLOW_CONN_<CONN_ID>='<connection JSON>'`` for ``server``.

    :param billing_key_env: a variable holding the key: the line reads it from there instead of holding
        it (the key must then need no JSON escaping, as Gooten's base64 keys do not).
    """
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    config = server.connection_config(conn_id)
    if billing_key_env is None:
        return f"export {name}={shlex.quote(json.dumps(config))}"
    config["password"] = _KEY_MARKER
    before, after = json.dumps(config).split(json.dumps(_KEY_MARKER))
    return (
        f'export {name}={shlex.quote(before + chr(34))}"${{{billing_key_env}}}"{shlex.quote(chr(34) + after)}'
    )


def startup_text(server: GootenApiServer, billing_key_env: str | None = None) -> str:
    """The lines printed after the "listening" line: the connection and the orders the server holds."""
    key = f"the key in ${billing_key_env}" if billing_key_env else "a fake test key, for this local API only"
    lines = [f"Airflow connection ({key}):", export_line(server, "gooten_default", billing_key_env)]
    order_ids = server.order_ids()
    if not order_ids:
        lines.append("No orders yet: add some with --demo-orders or --orders-file.")
        return "\n".join(lines)
    lines.append(f"{len(order_ids)} order(s) (id: item statuses):")
    lines += [
        f"  {order_id}: {', '.join(server.item_statuses(order_id))}"
        for order_id in order_ids[:MAX_LISTED_ORDERS]
    ]
    if len(order_ids) > MAX_LISTED_ORDERS:
        lines.append(f"  ... and {len(order_ids) - MAX_LISTED_ORDERS} more")
    return "\n".join(lines)
