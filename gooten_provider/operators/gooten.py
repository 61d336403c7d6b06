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
    FAILED,
    INELIGIBLE,
    UPDATED,
    change_order_statuses,
    count_outcomes,
)
from gooten_provider.statuses import normalize_target_status

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

_TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "n", "off", "", "none"})
# Failures are listed one per line in the task's error; past this many the rest are counted.
_MAX_FAILURES_IN_MESSAGE = 20


def _is_template(value: object) -> bool:
    return isinstance(value, str) and "{{" in value


def _as_bool(value: object, name: str) -> bool:
    """Read a boolean that may come from a template or a trigger form as text."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError(f"Invalid {name} {value!r}: use true or false (a boolean, or text such as 'true').")


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

    ``outcome`` is one of ``updated``, ``unchanged``, ``ineligible``, ``failed`` and, in a dry run,
    ``dry_run`` (with ``dry_run_outcome`` telling what would have happened). Every order is attempted; then
    the task fails if any order ``failed`` (or was ``ineligible`` with ``fail_on_ineligible``), naming each
    one and why, after the records are pushed to XCom, so downstream tasks read them either way.

    :param order_ids: one Gooten order id (Safe ID) or a list of them; templated, so it takes Jinja,
        ``params`` or an ``XComArg``. A rendered string holding a list literal, or ids separated by commas
        or newlines, is split. Duplicates are dropped. An empty list skips the task.
    :param status: the target status, one of ``Cancelled``, ``New``, ``Test``, ``Hold`` (any case);
        templated. A literal invalid status fails when the DAG is parsed.
    :param gooten_conn_id: the Gooten connection; templated.
    :param dry_run: read every order and report what would happen, without writing; templated (a trigger
        form's boolean or ``"true"``/``"false"`` text).
    :param max_workers: orders in flight at once, sharing one pooled HTTP session.
    :param fail_on_ineligible: also fail the task when an order could not be changed any more.
    :param reason: free text recorded with each change in the log and the results (Gooten has no field for
        it); templated.
    :param requests_per_second: an optional cap on the request rate to Gooten for this task.
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
        if requests_per_second is not None and requests_per_second <= 0:
            raise ValueError(
                f"{self.task_id}: requests_per_second must be a positive number or None, got "
                f"{requests_per_second!r}."
            )
        self.order_ids = order_ids
        self.status = status
        self.gooten_conn_id = gooten_conn_id
        self.dry_run = dry_run  # type: ignore[assignment,method-assign]  # the templated field's name
        self.max_workers = max_workers
        self.fail_on_ineligible = fail_on_ineligible
        self.reason = reason
        self.requests_per_second = requests_per_second
        #: The Gooten Admin URL of the order, once a run has handled exactly one (see GootenOrderLink).
        self.order_url: str | None = None

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Change every order; return one record per order (see the class docstring)."""
        target = normalize_target_status(self.status)
        dry_run = _as_bool(self.dry_run, "dry_run")
        reason: str | None = str(self.reason).strip() if self.reason is not None else ""
        reason = reason or None
        order_ids = parse_order_ids(self.order_ids)
        if not order_ids:
            raise AirflowSkipException("No order ids given: nothing to change, so the task is skipped.")

        hook = GootenHook(
            self.gooten_conn_id,
            pool_maxsize=max(self.max_workers, 4),
            requests_per_second=self.requests_per_second,
        )
        client = hook.get_conn()  # a wrong connection fails the task here, before any order is touched
        if dry_run:  # reads need no billing key: check it, so a dry run proves the real run would be let in
            client.check_credentials()
        self.log.info(
            "%s %d order(s) to %s with %d worker(s)%s.",
            "Dry run: reading" if dry_run else "Changing",
            len(order_ids),
            target,
            self.max_workers,
            f", reason: {reason}" if reason else "",
        )
        try:
            results = change_order_statuses(
                client,
                order_ids,
                target,
                max_workers=self.max_workers,
                dry_run=dry_run,
                reason=reason,
                resend_backoff=client.backoff_factor,
            )
        finally:
            client.close()
        if len(order_ids) == 1:  # read by the "Gooten order" link when the task ends
            self.order_url = order_url(hook.admin_order_url, order_ids[0])
        self._log_summary(results)

        failures = [
            result
            for result in results
            if result["outcome"] == FAILED or (self.fail_on_ineligible and result["outcome"] == INELIGIBLE)
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
            previous = ", ".join(result["previous_statuses"]) or "?"
            why = f", reason: {result['reason']}" if result["reason"] else ""
            if outcome == UPDATED:
                self.log.info("%s: %s -> %s%s", result["order_id"], previous, result["status"], why)
            elif outcome == FAILED or (outcome == INELIGIBLE and self.fail_on_ineligible):
                self.log.error(
                    "%s: %s -/-> %s (%s): %s",
                    result["order_id"],
                    previous,
                    result["status"],
                    outcome,
                    result["error"],
                )
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
