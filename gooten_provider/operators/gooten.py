"""Change the status of Gooten orders from an Airflow task: hold, cancel, reset (New) or test-flag."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    BaseOperator,
)

from gooten_provider.hooks.gooten import GootenHook
from gooten_provider.links import GootenOrderLink, order_url
from gooten_provider.order_ids import parse_order_ids
from gooten_provider.order_status_change import (
    DRY_RUN,
    FAILING_OUTCOMES,
    INELIGIBLE,
    UNCHANGED,
    UPDATED,
    change_order_statuses,
    count_outcomes,
)
from gooten_provider.statuses import normalize_target_status

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

_TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
# No empty text and no "none": a missing conf key or param renders to those, and a dry run must never turn
# into a real run because a value went missing.
_FALSE_WORDS = frozenset({"false", "0", "no", "n", "off"})
# Failures are listed one per line in the task's error; past this many the rest are counted.
_MAX_FAILURES_IN_MESSAGE = 20


def _is_template(value: object) -> bool:
    return isinstance(value, str) and "{{" in value


def _as_bool(value: object, name: str) -> bool:
    """Read a boolean given as text by a template or a trigger form; anything unclear is an error."""
    if isinstance(value, bool):
        return value
    word = value.strip().lower() if isinstance(value, str) else None
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    hint = (
        " (a missing value: did a template or a trigger form leave it empty?)"
        if value is None or word in ("", "none", "null")
        else ""
    )
    raise ValueError(
        f"Invalid {name} {value!r}{hint}: use true or false (a boolean, or text such as 'true' or 'false')."
    )


class GootenOrderStatusOperator(BaseOperator):
    """Set Gooten orders to a status (``Hold``, ``Cancelled``, ``New`` or ``Test``), safely and in bulk.

    Each order is read first. Orders already at the target end ``unchanged`` and orders Gooten cannot
    change any more (in production, on ``Hold``, ...) end ``ineligible``, without a write. The others are
    written once; a write whose response is lost is settled by reading the order again, and re-sent only
    when the order shows it never took effect. So a retry or a rerun of the task is safe: orders already
    done come back ``unchanged``.

    The task returns (XCom ``return_value``) one record per order::

        {"order_id": "1-ab...", "outcome": "updated", "previous_statuses": ["New"], "status": "Hold",
         "error": None, "reason": "address check failed"}

    ``outcome`` is one of ``updated``, ``unchanged``, ``ineligible``, ``failed``, ``unknown`` (a write whose
    answer was lost and that reading the order could not settle; see docs/reference.md) and, in a dry run,
    ``dry_run`` (with ``dry_run_outcome`` telling what would have happened). Every order is attempted; then
    the task fails if any order ``failed`` or is ``unknown`` (or was ``ineligible`` with
    ``fail_on_ineligible``), naming each one and why, after the records are pushed to XCom, so downstream
    tasks read them either way.

    :param order_ids: one Gooten order id (Safe ID) or a list of them; templated, so it takes Jinja,
        ``params`` or an ``XComArg``. A rendered string holding a list literal, or ids separated by commas
        or newlines, is split. Duplicates are dropped (letter case ignored). An empty list skips the task.
        Each id must have the shape of a Gooten Safe ID (``{number}-{GUID}``), checked before any request.
    :param status: the target status, one of ``Cancelled``, ``New``, ``Test``, ``Hold`` (any case);
        templated. A literal invalid status fails when the DAG is parsed.
    :param gooten_conn_id: the Gooten connection; templated.
    :param dry_run: read every order and report what would happen, without writing; templated (a trigger
        form's boolean or ``"true"``/``"false"`` text). Anything else, ``None`` and empty text included, is
        an error before any request: a missing value never turns a dry run into a real one.
    :param max_workers: orders in flight at once, sharing one pooled HTTP session.
    :param fail_on_ineligible: also fail the task when an order could not be changed any more.
    :param reason: free text recorded with each change in the log and the results (Gooten has no field for
        it); templated.
    :param requests_per_second: an optional cap on the request rate to Gooten for this task.
    :param throttle_timeout: seconds each request keeps being retried while Gooten answers 429 (throttling)
        before its order fails; default: the connection's ``throttle_timeout`` extra, else 300. Requests are
        paced at a rate learnt from the 429s unless the connection sets ``adaptive_rate`` to false.
    :param check_order_ids: require Gooten's Safe ID shape of every id (default); turn it off for an account
        whose ids have another shape.
    """

    template_fields: Sequence[str] = ("order_ids", "status", "gooten_conn_id", "dry_run", "reason")
    template_fields_renderers: ClassVar[dict[str, str]] = {"order_ids": "json"}
    operator_extra_links = (GootenOrderLink(),)
    ui_color = "#ffd8a8"

    def __init__(
        self,
        *,
        order_ids: str | Sequence[str] | Any,
        status: str,
        gooten_conn_id: str = GootenHook.default_conn_name,
        dry_run: bool | str = False,
        max_workers: int = 4,
        fail_on_ineligible: bool = False,
        reason: str | None = None,
        requests_per_second: float | None = None,
        throttle_timeout: float | None = None,
        check_order_ids: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if order_ids is None:
            raise ValueError(f"{self.task_id}: order_ids is required: one order id or a list of them.")
        if not _is_template(status):
            status = normalize_target_status(status)
        if not _is_template(dry_run):
            _as_bool(dry_run, "dry_run")
        if not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(
                f"{self.task_id}: max_workers must be a whole number of at least 1, got {max_workers!r}."
            )
        if requests_per_second is not None and (
            isinstance(requests_per_second, bool)
            or not isinstance(requests_per_second, (int, float))
            or not 0 < requests_per_second < float("inf")
        ):
            raise ValueError(
                f"{self.task_id}: requests_per_second must be a positive number or None, got "
                f"{requests_per_second!r}."
            )
        if throttle_timeout is not None and (
            isinstance(throttle_timeout, bool)
            or not isinstance(throttle_timeout, (int, float))
            or not 0 <= throttle_timeout < float("inf")
        ):
            raise ValueError(
                f"{self.task_id}: throttle_timeout must be 0 or more seconds, or None, got "
                f"{throttle_timeout!r}."
            )
        self.order_ids = order_ids
        self.status = status
        self.gooten_conn_id = gooten_conn_id
        self.dry_run = dry_run  # type: ignore[assignment,method-assign]  # the templated field's name
        self.max_workers = max_workers
        self.fail_on_ineligible = fail_on_ineligible
        self.reason = reason
        self.requests_per_second = requests_per_second
        self.check_order_ids = check_order_ids
        self.throttle_timeout = throttle_timeout
        #: The Gooten Admin URL of the order, once a run has handled exactly one (see GootenOrderLink).
        self.order_url: str | None = None

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Change every order; return one record per order (see the class docstring)."""
        target = normalize_target_status(self.status)
        dry_run = _as_bool(self.dry_run, "dry_run")
        reason: str | None = str(self.reason).strip() if self.reason is not None else ""
        reason = reason or None
        order_ids = parse_order_ids(self.order_ids, check_shape=self.check_order_ids)
        if not order_ids:
            raise AirflowSkipException("No order ids given: nothing to change, so the task is skipped.")

        hook = GootenHook(
            self.gooten_conn_id,
            pool_maxsize=max(self.max_workers, 4),
            requests_per_second=self.requests_per_second,
            throttle_timeout=self.throttle_timeout,
        )
        client = hook.get_conn()  # a wrong connection fails the task here, before any order is touched
        # One call that needs the Recipe ID and the billing key: a dead host, a wrong scheme or a refused key
        # fails the task once, here, instead of costing every order its retries. Reads alone need no key, so
        # this also proves a dry run's real run would be let in.
        client.check_credentials()
        workers = min(self.max_workers, len(order_ids))
        self.log.info(
            "%s %d order(s) to %s%s%s.",
            "Dry run: reading" if dry_run else "Changing",
            len(order_ids),
            target,
            f", {workers} at a time" if workers > 1 else "",
            f", reason: {reason}" if reason else "",
        )
        try:
            results = change_order_statuses(
                client,
                order_ids,
                target,
                max_workers=workers,
                dry_run=dry_run,
                reason=reason,
                resend_backoff=client.backoff_factor,
                settle_window=2 * client.timeout,  # a change queued at Gooten lands within it
            )
        finally:
            client.close()
        if len(order_ids) == 1:  # read by the "Gooten order" link when the task ends
            self.order_url = order_url(hook.admin_order_url, order_ids[0])
        self._log_summary(results)

        failures = [
            result
            for result in results
            if result["outcome"] in FAILING_OUTCOMES
            or (self.fail_on_ineligible and result["outcome"] == INELIGIBLE)
        ]
        if not failures:
            return results
        # Push the records first, so that downstream tasks read them the same way whether this task failed.
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key="return_value", value=results)
        lines = [
            f"  {r['order_id']} ({r['outcome']}): {r['error']}" for r in failures[:_MAX_FAILURES_IN_MESSAGE]
        ]
        if len(failures) > _MAX_FAILURES_IN_MESSAGE:
            lines.append(f"  ... and {len(failures) - _MAX_FAILURES_IN_MESSAGE} more (see the task's XCom).")
        message = (
            f"{len(failures)} of {len(results)} Gooten order(s) could not be set to {target}:\n"
            + "\n".join(lines)
        )
        if all(result["outcome"] == INELIGIBLE for result in failures):
            raise AirflowFailException(message)  # retrying cannot make an order eligible again
        raise AirflowException(message)

    def _log_summary(self, results: list[dict[str, Any]]) -> None:
        counts = count_outcomes(results)
        self.log.info(
            "Gooten status summary: %s.", ", ".join(f"{outcome} {count}" for outcome, count in counts.items())
        )
        for result in results:
            outcome = result["outcome"]
            previous = ", ".join(result["previous_statuses"]) or "status not read"
            why = f", reason: {result['reason']}" if result["reason"] else ""
            if outcome == UPDATED:
                self.log.info("%s: %s -> %s%s", result["order_id"], previous, result["status"], why)
            elif outcome in FAILING_OUTCOMES or (outcome == INELIGIBLE and self.fail_on_ineligible):
                self.log.error(
                    "%s: %s, not set to %s (%s): %s",
                    result["order_id"],
                    previous,
                    result["status"],
                    outcome,
                    result["error"],
                )
            elif outcome == UNCHANGED and result["error"]:
                self.log.info("%s: %s, unchanged: %s", result["order_id"], previous, result["error"])
            elif outcome == INELIGIBLE:
                self.log.warning("%s: %s, not changed: %s", result["order_id"], previous, result["error"])
            elif outcome == DRY_RUN:
                self.log.info(
                    "%s: %s -> %s would be %s%s",
                    result["order_id"],
                    previous,
                    result["status"],
                    result["dry_run_outcome"],
                    why,
                )
