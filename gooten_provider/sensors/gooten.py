"""Wait for a Gooten order to reach a status (released from hold, shipped, ...)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseSensorOperator

from gooten_provider.exceptions import GootenConnectionError, GootenHttpError
from gooten_provider.hooks.gooten import GootenHook
from gooten_provider.order_ids import normalize_order_id
from gooten_provider.statuses import KNOWN_STATUSES, normalize_known_status

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


def _status_names(
    value: str | Iterable[str], what: str, log: Any, *, allow_empty: bool = False
) -> tuple[str, ...]:
    """Check status names at parse time: known names get Gooten's spelling, unknown ones only a warning."""
    names = [value] if isinstance(value, str) else list(value)
    if not names and not allow_empty:
        raise ValueError(f"{what} is empty: give at least one Gooten status, e.g. 'Shipped'.")
    checked = []
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"Invalid status {name!r} in {what}: a status is a non-empty string.")
        known = normalize_known_status(name)
        if known is None:
            log.warning(
                "%s: %r is not a Gooten status known to this provider (Gooten's list is not fully "
                "documented, so it is kept as given). Known statuses: %s.",
                what,
                name,
                ", ".join(sorted(KNOWN_STATUSES)),
            )
        checked.append(known or name.strip())
    return tuple(dict.fromkeys(checked))


class GootenOrderStatusSensor(BaseSensorOperator):
    """Succeed when every item of a Gooten order is in one of ``target_statuses``.

    Fails at once when any item reaches one of ``failure_statuses``. Network trouble and Gooten 5xx answers
    only make a poke return false (the sensor tries again at the next poke); refused credentials fail.
    Use ``mode="reschedule"`` to free the worker slot between pokes.

    :param order_id: the Gooten order id (Safe ID); templated.
    :param target_statuses: the statuses to wait for, e.g. ``["Shipped", "Delivered"]``.
    :param failure_statuses: statuses that end the wait with a failure; default ``("Cancelled",)``.
    :param gooten_conn_id: the Gooten connection.
    """

    template_fields: Sequence[str] = ("order_id", "gooten_conn_id")

    def __init__(
        self,
        *,
        order_id: str,
        target_statuses: str | Iterable[str],
        failure_statuses: str | Iterable[str] = ("Cancelled",),
        gooten_conn_id: str = GootenHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.order_id = order_id
        self.target_statuses = _status_names(target_statuses, "target_statuses", self.log)
        self.failure_statuses = _status_names(
            failure_statuses, "failure_statuses", self.log, allow_empty=True
        )
        overlap = set(self.target_statuses) & set(self.failure_statuses)
        if overlap:
            raise ValueError(
                f"{self.task_id}: {', '.join(sorted(overlap))} cannot be both a target and a failure status."
            )
        self.gooten_conn_id = gooten_conn_id

    @cached_property
    def hook(self) -> GootenHook:
        """One hook, and so one pooled session, for every poke of this task run."""
        return GootenHook(self.gooten_conn_id)

    def poke(self, context: Context) -> bool:
        """Read the order's item statuses once."""
        order_id = normalize_order_id(self.order_id)
        try:
            statuses = self.hook.get_order_status(order_id)
        except (GootenConnectionError, GootenHttpError) as exc:
            self.log.warning("Could not read order %s this time, will try again: %s", order_id, exc)
            return False
        failed = sorted({status for status in statuses if status in self.failure_statuses})
        if failed:
            raise AirflowFailException(
                f"Gooten order {order_id} reached {', '.join(failed)} (items: {', '.join(statuses)}) while "
                f"waiting for {', '.join(self.target_statuses)}."
            )
        done = all(status in self.target_statuses for status in statuses)
        self.log.info(
            "Order %s items: %s; %s %s.",
            order_id,
            ", ".join(statuses),
            "done, every item is in" if done else "waiting for",
            ", ".join(self.target_statuses),
        )
        return done
