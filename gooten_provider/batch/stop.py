"""Why a batch of order changes stops early, shared by every worker and by whoever asks it to stop.

A batch stops for one of two kinds of reason, and the first reason given wins:

* **Gooten** (credentials refused, Gooten unreachable for several orders in a row): the orders not yet
  started are not attempted; the orders in flight go on as usual, since their next step may still succeed.
* **the task** (``on_kill()`` on SIGTERM, an ``execution_timeout``, an interrupt): no order is started
  after it and the orders in flight finish only the step they are in. A write already sent is settled by
  the usual reads, but only until :attr:`BatchStop.grace` seconds after the stop: the task must end before
  Airflow's SIGTERM grace is over (the supervisor sends SIGKILL 5 seconds after SIGTERM by default).
"""

from __future__ import annotations

import threading
import time

#: Seconds after a task stop during which a write already sent may still be settled by reading.
DEFAULT_STOP_GRACE = 3.0


class BatchStop:
    """A thread-safe stop flag with its reason; see the module docstring for the two kinds of stop."""

    def __init__(self, grace: float = DEFAULT_STOP_GRACE) -> None:
        self.grace = grace
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._task_stopped_at: float | None = None
        #: The exception that interrupted the batch (an ``AirflowTaskTimeout``, ...), if one did.
        self.interruption: BaseException | None = None

    @property
    def reason(self) -> str | None:
        """Why the batch stopped, or ``None`` while it goes on."""
        return self._reason

    @property
    def requested(self) -> bool:
        """Whether the batch has stopped starting orders."""
        return self._reason is not None

    @property
    def task_stopped(self) -> bool:
        """Whether the task itself was stopped (then orders in flight only finish their current step)."""
        return self._task_stopped_at is not None

    def stop_for_gooten(self, reason: str) -> None:
        """Stop starting orders because of what Gooten answered; orders in flight go on."""
        with self._lock:
            if self._reason is None:
                self._reason = reason

    def stop_task(self, reason: str, interruption: BaseException | None = None) -> None:
        """Stop the task's batch: no order is started, orders in flight finish only their current step."""
        with self._lock:
            if self._task_stopped_at is None:
                self._task_stopped_at = time.monotonic()
                self.interruption = interruption
            if self._reason is None:
                self._reason = reason

    def settle_deadline(self) -> float | None:
        """When a write in flight stops being settled (monotonic clock); ``None`` without a task stop."""
        return None if self._task_stopped_at is None else self._task_stopped_at + self.grace

    def past_grace(self) -> bool:
        """Whether the task was stopped more than :attr:`grace` seconds ago."""
        deadline = self.settle_deadline()
        return deadline is not None and time.monotonic() >= deadline
