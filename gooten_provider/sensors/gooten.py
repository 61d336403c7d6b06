"""Wait for Gooten orders to reach a status (released from hold, shipped, ...), on a worker or deferred."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from gooten_provider.batch.order_wait import (
    ReadRound,
    failed_orders,
    failure_message,
    is_done,
    read_error_message,
)
from gooten_provider.exceptions import GootenApiError
from gooten_provider.hooks.gooten import GootenHook
from gooten_provider.hooks.rate_limit_connection import check_rate_limit_conn_id
from gooten_provider.order_ids import parse_task_order_ids
from gooten_provider.statuses import KNOWN_STATUSES, did_you_mean, is_other_spelling, match_status
from gooten_provider.triggers.gooten import SUCCESS, TIMEOUT, GootenOrderStatusTrigger

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

#: The default ``failure_statuses`` (compared by identity, to tell it from the same value passed on purpose).
DEFAULT_FAILURE_STATUSES: tuple[str, ...] = ("Cancelled",)
# The triggerer's deadline comes first; Airflow's own deferral timeout is only a backstop after it.
_DEFERRAL_TIMEOUT_MARGIN = 60.0


def _status_names(
    value: str | Iterable[str], what: str, log: Any, *, allow_unknown: bool, allow_empty: bool = False
) -> dict[str, str]:
    """Check status names when the DAG is parsed: ``{Gooten's spelling: the name as given}``.

    The rule is the operator's (:func:`~gooten_provider.statuses.match_status`): Gooten's spelling, in
    any letter case; another spelling (``Canceled``) is refused with the status it stands for.

    :raises ValueError: empty, not a name, another spelling of a status, or (unless ``allow_unknown``) a
        name this provider does not know.
    """
    names = [value] if isinstance(value, str) else list(value)
    if not names and not allow_empty:
        raise ValueError(f"{what} is empty: give at least one Gooten status, e.g. 'Shipped'.")
    checked: dict[str, str] = {}
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"Invalid status {name!r} in {what}: a status is a non-empty string.")
        known = match_status(name, KNOWN_STATUSES)
        suggestion = did_you_mean(name, KNOWN_STATUSES) if known is None else ""
        if known is None and is_other_spelling(name):  # never Gooten's own: waiting for it would never end
            raise ValueError(f"{what}: {name!r} is not how Gooten's API spells the status.{suggestion}")
        if known is None and not allow_unknown:
            raise ValueError(
                f"{what}: {name!r} is not a Gooten status known to this provider (a typo?).{suggestion} "
                f"Known statuses: {', '.join(sorted(KNOWN_STATUSES))}. Gooten's list is not fully "
                "documented: to wait for a status missing here, pass allow_unknown_statuses=True."
            )
        if known is None:
            log.warning(
                "%s: %r is not a Gooten status known to this provider; kept as given "
                "(allow_unknown_statuses=True).%s Known statuses: %s.",
                what,
                name,
                suggestion,
                ", ".join(sorted(KNOWN_STATUSES)),
            )
        checked.setdefault(known or name.strip(), name)
    return checked


class GootenOrderStatusSensor(BaseSensorOperator):
    """Succeed when every item of every given Gooten order is in one of ``target_statuses``.

    Fails as soon as any order has an item in one of ``failure_statuses``, naming each such order. Network
    trouble, throttling and Gooten 5xx answers only leave an order unread until the next poke; an answer
    that waiting will not change (a 404 from a wrong base URL, refused credentials, an unknown order) fails
    at once with the reason. Returns (XCom ``return_value``) ``{order_id: [item statuses]}`` of every order.

    Orders are read concurrently (``max_concurrency`` at once) through one client, whose adaptive rate
    controller paces them all; an order already done is not read again in later pokes of the same run.

    With ``deferrable=True`` the sensor pokes once on the worker and, if not done, hands the wait to the
    triggerer (:class:`~gooten_provider.triggers.gooten.GootenOrderStatusTrigger`): no worker slot is held
    and no task starts per poke. The trigger keeps the sensor's ``timeout`` as an absolute deadline.
    Otherwise ``mode="reschedule"`` frees the worker slot between pokes, ``mode="poke"`` holds it.

    :param order_ids: one Gooten order id (Safe ID) or a list of them; templated (Jinja, ``params`` or an
        ``XComArg``), parsed with the operator's rules: a rendered list literal or ids separated by commas
        or newlines are split, duplicates dropped. An empty list skips the task.
    :param order_id: one order id, the earlier spelling of ``order_ids``; templated. Give one of the two.
    :param target_statuses: the statuses to wait for, e.g. ``["Shipped", "Delivered"]``.
    :param failure_statuses: statuses that end the wait with a failure; default ``("Cancelled",)``.
    :param gooten_conn_id: the Gooten connection; templated.
    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable`` (else false).
    :param max_concurrency: order reads in flight at once, on the worker and in the triggerer.
    :param allow_unknown_statuses: accept status names this provider does not know (a warning instead of
        an error when the DAG is parsed); Gooten's list of statuses is not fully documented.
    :param check_order_ids: require Gooten's Safe ID shape of every id (default), as the operator does.
    :param rate_limit_conn_id: an Airflow connection of type ``redis`` where every task on this Gooten
        account shares one pace, on the worker and in the triggerer; default: the Gooten connection's
        ``rate_limit_conn_id`` extra; ``""`` turns the extra's off; templated.
    """

    template_fields: Sequence[str] = ("order_ids", "order_id", "gooten_conn_id", "rate_limit_conn_id")
    template_fields_renderers: ClassVar[dict[str, str]] = {"order_ids": "json"}

    def __init__(
        self,
        *,
        order_ids: str | Sequence[str] | Any = None,
        order_id: str | None = None,
        target_statuses: str | Iterable[str],
        failure_statuses: str | Iterable[str] = DEFAULT_FAILURE_STATUSES,
        gooten_conn_id: str = GootenHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_concurrency: int = 8,
        allow_unknown_statuses: bool = False,
        check_order_ids: bool = True,
        rate_limit_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rate_limit_conn_id = check_rate_limit_conn_id(rate_limit_conn_id, self.task_id)
        if (order_ids is None) == (order_id is None):
            raise ValueError(
                f"{self.task_id}: give the orders to wait for as order_ids (one id or a list) or as order_id "
                f"(one id), not {'both' if order_id is not None else 'neither'}."
            )
        if not isinstance(max_concurrency, int) or isinstance(max_concurrency, bool) or max_concurrency < 1:
            raise ValueError(
                f"{self.task_id}: max_concurrency must be a whole number of at least 1, got "
                f"{max_concurrency!r}."
            )
        self.order_ids = order_ids
        self.order_id = order_id
        # Which one was given: a template may render it None, which must not read as "the other one".
        self._one_order = order_ids is None
        targets = _status_names(
            target_statuses, "target_statuses", self.log, allow_unknown=allow_unknown_statuses
        )
        failures = _status_names(
            failure_statuses,
            "failure_statuses",
            self.log,
            allow_unknown=allow_unknown_statuses,
            allow_empty=True,
        )
        overlap = sorted(set(targets) & set(failures))
        if overlap:
            given = ", ".join(
                name if targets[name] == name else f"{name} (given as {targets[name]!r})" for name in overlap
            )
            if failure_statuses is DEFAULT_FAILURE_STATUSES:
                raise ValueError(
                    f"{self.task_id}: target_statuses has {given}, which the default failure_statuses "
                    f"{DEFAULT_FAILURE_STATUSES!r} also holds. To wait for it, pass failure_statuses= "
                    "explicitly, e.g. failure_statuses=() (or other statuses that should end the wait)."
                )
            raise ValueError(f"{self.task_id}: {given} cannot be both a target and a failure status.")
        self.target_statuses = tuple(targets)
        self.failure_statuses = tuple(failures)
        self.gooten_conn_id = gooten_conn_id
        self.deferrable = deferrable
        self.max_concurrency = max_concurrency
        self.allow_unknown_statuses = allow_unknown_statuses
        self.check_order_ids = check_order_ids
        # Orders already read in this run (an order done is not read again by later pokes of poke mode).
        self._statuses: dict[str, list[str]] = {}

    @cached_property
    def hook(self) -> GootenHook:
        """One hook, and so one pooled session and rate controller, for every poke of this task run."""
        return GootenHook(
            self.gooten_conn_id, pool_maxsize=self.max_concurrency, rate_limit_conn_id=self.rate_limit_conn_id
        )

    def _order_id_list(self) -> list[str]:
        if not self._one_order:
            return parse_task_order_ids(
                self.order_ids, task_id=self.task_id, argument="order_ids", check_shape=self.check_order_ids
            )
        # order_id is one id: an empty rendering is an error, not an empty list
        return parse_task_order_ids(
            [self.order_id], task_id=self.task_id, argument="order_id", check_shape=self.check_order_ids
        )

    def execute(self, context: Context) -> Any:
        """Poke on the worker; deferrable, poke once and then wait in the triggerer."""
        if not self.deferrable:
            return super().execute(context)
        started = time.time()
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        order_ids = self._order_id_list()
        self.defer(
            trigger=GootenOrderStatusTrigger(
                order_ids=order_ids,
                target_statuses=self.target_statuses,
                failure_statuses=self.failure_statuses,
                gooten_conn_id=self.gooten_conn_id,
                poke_interval=float(self.poke_interval),
                end_time=started + float(self.timeout),
                max_concurrency=self.max_concurrency,
                known_statuses=self._statuses,
                not_before=started + float(self.poke_interval),
            ),
            method_name="execute_complete",
            timeout=timedelta(
                seconds=float(self.timeout) + float(self.poke_interval) + _DEFERRAL_TIMEOUT_MARGIN
            ),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, list[str]]:
        """Resume after the trigger: return the statuses, or fail, time out (or skip with ``soft_fail``)."""
        status, message = event.get("status"), event.get("message", "")
        if status == SUCCESS:
            self.log.info("%s", message)
            return dict(event.get("statuses") or {})
        if status == TIMEOUT:
            if self.soft_fail:
                raise AirflowSkipException(f"{message} (soft_fail: skipped)")
            raise AirflowSensorTimeout(message)
        raise AirflowFailException(message or f"The Gooten order status trigger ended with {event!r}.")

    def poke(self, context: Context) -> PokeReturnValue:
        """Read each order not yet done, concurrently; fail at once on a failure status or a lasting error."""
        order_ids = self._order_id_list()
        if not order_ids:
            raise AirflowSkipException(
                f"{self.task_id}: no order ids given (an empty list): nothing to wait for."
            )
        targets, failures = set(self.target_statuses), set(self.failure_statuses)
        pending = [o for o in order_ids if not is_done(o, self._statuses, targets)]
        read = ReadRound.sort(dict(zip(pending, self._read_all(pending), strict=True)))
        if read.fatal:
            raise AirflowFailException(read_error_message(read.fatal))
        read.log_transient(self.log)
        self._statuses.update(read.statuses)
        failed = failed_orders({o: self._statuses[o] for o in order_ids if o in self._statuses}, failures)
        if failed:
            raise AirflowFailException(failure_message(failed, failures, self.target_statuses))
        waiting = [o for o in order_ids if not is_done(o, self._statuses, targets)]
        for order_id in pending if len(order_ids) <= 10 else ():  # one line per order, for a few orders
            if order_id in self._statuses:
                done = order_id not in waiting
                self.log.info(
                    "Order %s items: %s; %s %s.",
                    order_id,
                    ", ".join(self._statuses[order_id]),
                    "done, every item is in" if done else "waiting for",
                    ", ".join(self.target_statuses),
                )
        if len(order_ids) > 1:
            self.log.info(
                "%d of %d order(s) done, waiting for %s.",
                len(order_ids) - len(waiting),
                len(order_ids),
                ", ".join(self.target_statuses),
            )
        statuses = {o: list(self._statuses[o]) for o in order_ids if o in self._statuses}
        return PokeReturnValue(is_done=not waiting, xcom_value=statuses if not waiting else None)

    def _read_all(self, order_ids: list[str]) -> list[list[str] | GootenApiError]:
        """Each order's item statuses, or the error of its read; threads share the hook's pacing."""

        def read(order_id: str) -> list[str] | GootenApiError:
            try:
                return self.hook.get_order_status(order_id)
            except GootenApiError as exc:
                return exc

        if len(order_ids) <= 1:
            return [read(order_id) for order_id in order_ids]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(order_ids))) as pool:
            return list(pool.map(read, order_ids))
