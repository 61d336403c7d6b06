"""Change Gooten orders from an Airflow task: set their status (hold, cancel, reset to New, test-flag).

:class:`GootenOrderBatchOperator` holds what every batch of writes to Gooten shares (the arguments, and the
execute phases: plan, open the client, run the batch engine, conclude); :class:`GootenOrderStatusOperator`
sets a status with it. :class:`~gooten_provider.operators.item_cancel.GootenCancelOrderItemsOperator`, the
item cancellation built on the same base, is importable from here too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, NoReturn, cast

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    BaseOperator,
)

from gooten_provider.batch.records import BatchSummary, OrderRecord, Outcome, is_failing
from gooten_provider.client.settings import ClientSettings, bool_from_word
from gooten_provider.exceptions import GootenConfigurationError
from gooten_provider.hooks.gooten import GootenHook
from gooten_provider.hooks.rate_limit_connection import check_rate_limit_conn_id
from gooten_provider.links import GootenOrderLink, order_url
from gooten_provider.order_ids import is_template, parse_task_order_ids
from gooten_provider.statuses import normalize_target_status

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from gooten_provider.batch.action import EarlierWrite, OrderAction
    from gooten_provider.batch.report import BatchLog, BatchTally
    from gooten_provider.batch.results import ResultsJournal, ResultsWriteError
    from gooten_provider.batch.results_reader import EarlierResults
    from gooten_provider.batch.stop import BatchStop
    from gooten_provider.client.sync_client import GootenClient
    from gooten_provider.operators.item_cancel import GootenCancelOrderItemsOperator  # noqa: F401  # __getattr__

#: Builds a batch's action once the client is open (an operator checks its arguments before that).
ActionFactory = Callable[["GootenClient"], "OrderAction[Any]"]

# Failures are listed one per line in the task's error; past this many the rest are counted.
_MAX_FAILURES_IN_MESSAGE = 20
#: Above this many orders without ``results_path``, the task warns: the XCom and memory grow with the batch.
LARGE_BATCH_WITHOUT_RESULTS_PATH = 10_000
_ON_KILL_REASON = (
    "the task was stopped by on_kill() (Airflow asked it to stop: an execution_timeout, 'mark failed', "
    "or the worker shutting down)"
)


def _as_bool(value: object, name: str) -> bool:
    """Read a boolean given as text by a template or a trigger form; anything unclear is an error."""
    if isinstance(value, bool):
        return value
    read = bool_from_word(value) if isinstance(value, str) else None
    if read is not None:
        return read
    hint = (
        " (a missing value: did a template or a trigger form leave it empty?)"
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null"))
        else ""
    )
    raise ValueError(
        f"Invalid {name} {value!r}{hint}: use true or false (a boolean, or text such as 'true' or 'false')."
    )


@dataclass(frozen=True)
class _Plan:
    """One run's rendered and checked arguments."""

    target: str
    dry_run: bool
    reason: str | None
    order_ids: list[str]
    #: An ObjectStoragePath (or ``pathlib.Path``), or ``None`` to return every record in XCom.
    results_path: Any


@dataclass
class _Run:
    """What one run's batch leaves: the tally and log of its records, where they went, and its stop."""

    target: str
    tally: BatchTally
    stop: BatchStop
    log: BatchLog
    journal: ResultsJournal | None
    records: list[OrderRecord] = field(default_factory=list)

    def keep(self, record: OrderRecord) -> None:
        """Count, log and keep one order's final record (called from the batch's worker threads)."""
        self.tally.add(record)  # counted even if it cannot be written: the task's message tells the truth
        self.log.order(record)
        if self.journal is not None:
            self.journal.add(record)
        else:
            self.records.append(record)

    def before_write(self, order_id: str, previous: Sequence[str]) -> None:
        """Make the write's entry durable before it is sent (with ``results_path``)."""
        if self.journal is not None:
            self.journal.write_sent(order_id, previous, self.target)

    def summary(self, plan: _Plan) -> BatchSummary:
        """The summary returned with ``results_path``."""
        folder = self.journal.folder.name if self.journal is not None else ""
        return self.tally.summary(str(plan.results_path), folder)

    def value(self, plan: _Plan) -> list[OrderRecord] | BatchSummary:
        """What the task returns: the summary, once every record is written, or the records in input order.

        :raises ResultsWriteError: the records or the summary could not be written.
        """
        if self.journal is not None:
            summary = self.summary(plan)
            self.journal.close(summary)  # written only if every record is
            return summary
        position = {order_id: index for index, order_id in enumerate(plan.order_ids)}
        return sorted(self.records, key=lambda record: position[record["order_id"]])


class Wording(NamedTuple):
    """How an operator's messages name its change (``be set to Hold``, ``already Hold``, ``to Hold``)."""

    #: What an order could not do: "could not {failed}".
    failed: str
    #: An order that needs nothing: "orders {done} are left unchanged".
    done: str
    #: What the task does: "Changing 3 order(s){change}".
    change: str


def _fail_orders(tally: BatchTally, wording: Wording, where: str) -> NoReturn:
    """Fail the task naming the failing orders; ineligible ones alone fail it without retries."""
    lines = [
        f"  {r['order_id']} ({r['outcome']}): {r['error']}" for r in tally.failed[:_MAX_FAILURES_IN_MESSAGE]
    ]
    if tally.failures > _MAX_FAILURES_IN_MESSAGE:
        lines.append(f"  ... and {tally.failures - _MAX_FAILURES_IN_MESSAGE} more (see {where}).")
    message = f"{tally.failures} of {tally.total} Gooten order(s) could not {wording.failed}:\n" + "\n".join(
        lines
    )
    if tally.counts().get(Outcome.INELIGIBLE, 0) == tally.failures:
        raise AirflowFailException(message)  # retrying cannot make an order eligible again
    raise AirflowException(message)


class GootenOrderBatchOperator(BaseOperator):
    """The base of the operators that write to Gooten orders in bulk, one record per order.

    It holds what every such operator shares: the arguments (``order_ids``, ``dry_run``, ``max_workers``,
    ``results_path``, ``reason``, ``fail_on_ineligible``, ...; see :class:`GootenOrderStatusOperator`), and
    the execute phases: plan (render and check the arguments, before any request), open the client, run the
    batch engine with the subclass's action (:mod:`gooten_provider.batch.action`), conclude (the XCom, and
    how the task ends). A subclass gives :meth:`_target`, :meth:`_prepare_action` and :meth:`_wording`.
    """

    template_fields: Sequence[str] = (
        "order_ids",
        "gooten_conn_id",
        "dry_run",
        "reason",
        "results_path",
        "rate_limit_conn_id",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"order_ids": "json"}
    operator_extra_links = (GootenOrderLink(),)
    ui_color = "#ffd8a8"

    def __init__(
        self,
        *,
        order_ids: str | Sequence[str] | Any,
        gooten_conn_id: str = GootenHook.default_conn_name,
        dry_run: bool | str = False,
        max_workers: int = 4,
        fail_on_ineligible: bool = False,
        reason: str | None = None,
        requests_per_second: float | None = None,
        throttle_timeout: float | None = None,
        check_order_ids: bool = True,
        results_path: Any = None,
        rate_limit_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if order_ids is None:
            raise ValueError(f"{self.task_id}: order_ids is required: one order id or a list of them.")
        if not is_template(dry_run):
            _as_bool(dry_run, "dry_run")
        if not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(
                f"{self.task_id}: max_workers must be a whole number of at least 1, got {max_workers!r}."
            )
        try:  # the client's own checks, at DAG parse, so that a wrong value fails before any task runs
            ClientSettings.check_arguments(
                requests_per_second=requests_per_second, throttle_timeout=throttle_timeout
            )
        except GootenConfigurationError as exc:
            raise ValueError(f"{self.task_id}: {exc}") from None
        self.order_ids = order_ids
        self.gooten_conn_id = gooten_conn_id
        self.dry_run = dry_run  # type: ignore[assignment,method-assign]  # the templated field's name
        self.max_workers = max_workers
        self.fail_on_ineligible = fail_on_ineligible
        self.reason = reason
        self.requests_per_second = requests_per_second
        self.check_order_ids = check_order_ids
        self.throttle_timeout = throttle_timeout
        self.rate_limit_conn_id = check_rate_limit_conn_id(rate_limit_conn_id, self.task_id)
        if isinstance(results_path, str) and not is_template(results_path):
            from gooten_provider.operators.order_results import storage_path

            try:
                storage_path(results_path)  # a path without a scheme fails when the DAG is parsed
            except ValueError as exc:
                raise ValueError(f"{self.task_id}: {exc}") from None
        self.results_path = results_path
        self._batch_stop: BatchStop | None = None
        #: The Gooten Admin URL of the order, once a run has handled exactly one (see GootenOrderLink).
        self.order_url: str | None = None

    def execute(self, context: Context) -> list[OrderRecord] | BatchSummary:
        """Change every order; return one record per order, or a summary with ``results_path``.

        Plan (the rendered arguments), open the client, run the batch, conclude (the XCom, and how the task
        ends), as ``HttpOperator.execute`` hands off.
        """
        plan = self._plan()
        make_action = self._prepare_action(plan)
        hook, client = self._open_client()
        try:
            run = self._run(plan, make_action(client), client, context)
        finally:
            client.close()
        if len(plan.order_ids) == 1:  # read by the "Gooten order" link when the task ends
            self.order_url = order_url(hook.admin_order_url, plan.order_ids[0])
        return self._conclude(plan, run, context)

    def _plan(self) -> _Plan:
        """The rendered arguments, checked before any request; no order ids skips the task."""
        from gooten_provider.operators.order_results import storage_path

        target = self._target()
        dry_run = _as_bool(self.dry_run, "dry_run")
        reason = str(self.reason).strip() if self.reason is not None else ""
        order_ids = parse_task_order_ids(
            self.order_ids, task_id=self.task_id, argument="order_ids", check_shape=self.check_order_ids
        )
        if not order_ids:
            raise AirflowSkipException("No order ids given: nothing to change, so the task is skipped.")
        results_path = None if self.results_path is None else storage_path(self.results_path)
        return _Plan(target, dry_run, reason or None, order_ids, results_path)

    def _open_client(self) -> tuple[GootenHook, GootenClient]:
        """The hook and its client, once Gooten has accepted the credentials."""
        hook = GootenHook(
            self.gooten_conn_id,
            pool_maxsize=max(self.max_workers, 4),
            requests_per_second=self.requests_per_second,
            throttle_timeout=self.throttle_timeout,
            rate_limit_conn_id=self.rate_limit_conn_id,
        )
        client = hook.get_conn()  # a wrong connection fails the task here, before any order is touched
        # One call that needs the Recipe ID and the billing key: a dead host, a wrong scheme or a refused key
        # fails the task once, here, instead of costing every order its retries. Reads alone need no key, so
        # this also proves a dry run's real run would be let in.
        try:
            client.check_credentials()
        except BaseException:
            client.close()
            raise
        return hook, client

    def _target(self) -> str:
        """The rendered target, as the records name it (their ``status``)."""
        raise NotImplementedError

    def _prepare_action(self, plan: _Plan) -> ActionFactory:
        """Check what the action needs of the rendered arguments (before any request); build it later."""
        raise NotImplementedError

    def _wording(self, target: str) -> Wording:
        """How the task's messages name the change."""
        raise NotImplementedError

    def _run(self, plan: _Plan, action: OrderAction[Any], client: GootenClient, context: Context) -> _Run:
        """Run the batch (resuming earlier tries under ``results_path``): every order gets its record."""
        from gooten_provider.batch.engine import run_batch
        from gooten_provider.batch.order_change import ChangeSettings
        from gooten_provider.batch.report import BatchLog, BatchTally
        from gooten_provider.batch.stop import BatchStop

        is_failure = partial(is_failing, fail_on_ineligible=self.fail_on_ineligible)
        tally = BatchTally(is_failure)
        stop = self._batch_stop = BatchStop()
        journal: ResultsJournal | None = None
        to_run, earlier_writes = plan.order_ids, cast("dict[str, EarlierWrite]", {})
        if plan.results_path is not None:
            try_number = getattr(context.get("ti"), "try_number", 0) or 0
            journal, to_run, earlier_writes = self._open_results(plan, try_number, tally, stop)
        elif len(plan.order_ids) > LARGE_BATCH_WITHOUT_RESULTS_PATH:
            self.log.warning(
                "%d orders without results_path: every record is kept in memory and pushed to XCom at once. "
                "Set results_path to keep them in files and push a summary (and to resume after a crash).",
                len(plan.order_ids),
            )
        run = _Run(plan.target, tally, stop, BatchLog(self.log, len(to_run), is_failure), journal)
        workers = min(self.max_workers, max(1, len(to_run)))
        self._log_start(plan, len(to_run), workers)
        run_batch(
            action,
            to_run,
            ChangeSettings(
                dry_run=plan.dry_run,
                reason=plan.reason,
                resend_backoff=client.backoff_factor,
                settle_window=2 * client.timeout,  # a change queued at Gooten lands within it
            ),
            max_workers=workers,
            stop=stop,
            earlier_writes=earlier_writes,
            before_write=run.before_write if journal is not None else None,
            on_record=run.keep,
        )
        return run

    def _log_start(self, plan: _Plan, orders: int, workers: int) -> None:
        self.log.info(
            "%s %d order(s)%s%s%s.",
            "Dry run: reading" if plan.dry_run else "Changing",
            orders,
            self._wording(plan.target).change,
            f", {workers} at a time" if workers > 1 else "",
            f", reason: {plan.reason}" if plan.reason else "",
        )

    def _conclude(self, plan: _Plan, run: _Run, context: Context) -> list[OrderRecord] | BatchSummary:
        """Return the records (or the summary); push them first and fail if any order or the results did."""
        from gooten_provider.batch.results import ResultsWriteError

        run.log.finish(run.tally.counts())
        unwritten: ResultsWriteError | None = None
        try:
            value = run.value(plan)
        except ResultsWriteError as exc:
            value, unwritten = run.summary(plan), exc
        if unwritten is None and not run.stop.task_stopped and not run.tally.failures:
            return value
        # Push the records first, so that downstream tasks read them the same way whether this task failed.
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key="return_value", value=value)
        total = len(plan.order_ids)
        if unwritten is not None:
            self._fail_unwritten(unwritten, run.tally, total, plan.results_path, run.journal)
        where = "the task's XCom" if plan.results_path is None else f"the records under {plan.results_path}"
        if run.stop.task_stopped:
            resumes = plan.results_path is not None
            self._fail_stopped(run.stop, run.tally, total, plan.target, where, resumes=resumes)
        _fail_orders(run.tally, self._wording(plan.target), where)

    def _open_results(
        self, plan: _Plan, try_number: int, tally: BatchTally, stop: BatchStop
    ) -> tuple[ResultsJournal, list[str], dict[str, EarlierWrite]]:
        """Open this try's results folder; return it, the orders left to run and the writes to settle."""
        from gooten_provider.batch.results import ResultsJournal, ResultsWriteError, attempt_name
        from gooten_provider.batch.results_reader import load_earlier_results

        results_path = plan.results_path
        # Read before this try's folder exists: it is no earlier try.
        earlier = load_earlier_results(results_path, plan.target, dry_run=plan.dry_run)
        try:
            journal = ResultsJournal(results_path / attempt_name(try_number), give_up=stop.past_grace)
            return (journal, *self._resume(earlier, results_path, plan.order_ids, journal, tally))
        except ResultsWriteError as exc:
            raise AirflowException(
                f"The results could not be written under {results_path} ({exc}); no order was touched. "
                "A retry of the task is safe."
            ) from exc

    def _resume(
        self,
        earlier: EarlierResults,
        results_path: Any,
        order_ids: list[str],
        journal: ResultsJournal,
        tally: BatchTally,
    ) -> tuple[list[str], dict[str, EarlierWrite]]:
        """Carry over the final records of earlier tries; return the orders left and the writes to settle."""
        if not earlier.attempts:
            return order_ids, {}
        to_run: list[str] = []
        writes: dict[str, EarlierWrite] = {}
        carried: list[bytes] = []
        for order_id in order_ids:
            key = order_id.lower()
            line = earlier.done.get(key)
            if line is None:
                to_run.append(order_id)
                if key in earlier.writes:
                    writes[order_id] = earlier.writes[key]
                continue
            carried.append(line)
            tally.add(json.loads(line))
        journal.carry_over(carried)
        self.log.info(
            "Resuming from %d earlier try(s) under %s: %d order(s) already have a final record and are "
            "neither read nor written again; %d write(s) sent without a recorded outcome are settled by "
            "reading first.",
            earlier.attempts,
            results_path,
            len(order_ids) - len(to_run),
            len(writes),
        )
        return to_run, writes

    def _fail_unwritten(
        self,
        error: ResultsWriteError,
        tally: BatchTally,
        total: int,
        results_path: Any,
        journal: ResultsJournal | None,
    ) -> NoReturn:
        folder = journal.folder.name if journal is not None else "this try's folder"
        counts = ", ".join(f"{outcome} {n}" for outcome, n in tally.counts().items() if n)
        raise AirflowException(
            f"The results could not be written under {results_path} ({error}). "
            f"{total - tally.not_attempted} of {total} order(s) were handled ({counts}); "
            f"{tally.not_attempted} were not attempted"
            f"{', as the batch stopped' if tally.not_attempted else ''}. The records in {folder} are "
            "incomplete (it has no summary.json, so read_order_results does not take it for complete); the "
            "counts are in the task's XCom. A retry of the task is safe: it resumes from the records "
            "written, and reads the orders whose record is missing before changing them."
        ) from error

    def _fail_stopped(
        self, stop: BatchStop, tally: BatchTally, total: int, target: str, where: str, *, resumes: bool
    ) -> NoReturn:
        done = total - tally.not_attempted
        retry = (
            "it resumes from these records: orders already done are neither read nor written again"
            if resumes
            else f"every order is read first, and orders {self._wording(target).done} are left unchanged"
        )
        counts = ", ".join(f"{outcome} {n}" for outcome, n in tally.counts().items() if n)
        why = str(stop.reason)
        why = f"{why[0].upper()}{why[1:]}" if why.startswith("the task was stopped") else f"Stopped ({why})"
        message = (
            f"{why}. {done} of {total} order(s) were done before it stopped "
            f"({counts}); {tally.not_attempted} were not attempted. Every order has its record, in {where}. "
            f"A retry of the task is safe: {retry}."
        )
        from airflow.providers.common.compat.sdk import AirflowTaskTimeout

        if isinstance(stop.interruption, AirflowTaskTimeout):
            raise AirflowTaskTimeout(message) from None
        raise AirflowException(message) from stop.interruption

    def on_kill(self) -> None:
        """Stop the batch cleanly (Airflow calls this on SIGTERM, and after an ``execution_timeout``)."""
        if self._batch_stop is not None:
            self._batch_stop.stop_task(_ON_KILL_REASON)


class GootenOrderStatusOperator(GootenOrderBatchOperator):
    """Set Gooten orders to a status (``Hold``, ``Cancelled``, ``New`` or ``Test``), safely and in bulk.

    Each order is read first. Orders already at the target end ``unchanged`` and orders Gooten cannot
    change any more (in production, on ``Hold``, ...) end ``ineligible``, without a write. The others are
    written once; a write whose response is lost is settled by reading the order again, and re-sent only
    when the order shows it never took effect. So a retry or a rerun of the task is safe: orders already
    done come back ``unchanged``.

    Without ``results_path``, the task returns (XCom ``return_value``) one record per order::

        {"order_id": "1-ab...", "outcome": "updated", "previous_statuses": ["New"], "status": "Hold",
         "error": None, "reason": "address check failed"}

    ``outcome`` is one of ``updated``, ``unchanged``, ``ineligible``, ``failed``, ``unknown`` (a write whose
    answer was lost and that reading the order could not settle; see docs/reference.md) and, in a dry run,
    ``dry_run`` (with ``dry_run_outcome`` telling what would have happened). Every order is attempted; then
    the task fails if any order ``failed`` or is ``unknown`` (or was ``ineligible`` with
    ``fail_on_ineligible``), naming each one and why, after the records are pushed to XCom, so downstream
    tasks read them either way.

    With ``results_path``, every record is written as JSON Lines under it while the batch runs, and the task
    returns a summary instead, ``{"total", "counts", "failed" (at most 100 failing records),
    "results_path", "attempt"}``; a retry resumes from the records there. Read the records back with
    :func:`gooten_provider.operators.order_results.read_order_results`, whichever was returned.

    ``on_kill()`` (Airflow's SIGTERM) and an ``execution_timeout`` stop the batch cleanly: no order is
    started after it, orders in flight finish their current step, every order gets its record, the records
    are pushed, and the task fails saying that a retry is safe. See docs/reference.md.

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
    :param results_path: where to keep every order's record durably (an ``ObjectStoragePath``, or a URI
        such as ``file:///data/gooten/{{ run_id }}/{{ ti.task_id }}`` or
        ``s3://aws_default@bucket/gooten/{{ run_id }}``), one per task instance; templated. See
        :mod:`gooten_provider.batch.results`.
    :param rate_limit_conn_id: an Airflow connection of type ``redis`` where every task on this Gooten
        account shares one pace (one rate, one ``Retry-After`` pause); default: the Gooten connection's
        ``rate_limit_conn_id`` extra, else none (the task paces itself); ``""`` turns the extra's off;
        templated. See docs/reference.md, "Throttling".
    """

    template_fields: Sequence[str] = (
        "order_ids",
        "status",
        "gooten_conn_id",
        "dry_run",
        "reason",
        "results_path",
        "rate_limit_conn_id",
    )

    def __init__(self, *, order_ids: str | Sequence[str] | Any, status: str, **kwargs: Any) -> None:
        super().__init__(order_ids=order_ids, **kwargs)
        self.status = status if is_template(status) else normalize_target_status(status)

    def _target(self) -> str:
        return normalize_target_status(self.status)

    def _prepare_action(self, plan: _Plan) -> ActionFactory:
        from gooten_provider.batch.status_change import StatusChange

        return lambda client: StatusChange(client, plan.target)

    def _wording(self, target: str) -> Wording:
        return Wording(f"be set to {target}", f"already {target}", f" to {target}")


def __getattr__(name: str) -> Any:
    """``GootenCancelOrderItemsOperator`` from here, loaded on first use (it builds on this module)."""
    if name == "GootenCancelOrderItemsOperator":
        from gooten_provider.operators.item_cancel import GootenCancelOrderItemsOperator

        return GootenCancelOrderItemsOperator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
