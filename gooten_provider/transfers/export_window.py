"""The creation-date window of an orders export: checked, and taken from a run's data interval by default.

Gooten's order search filters on whole creation dates (``startDate``/``endDate``, ``yyyy-mm-dd``, both
inclusive). An export's window is therefore two inclusive dates. By default it is the run's data interval,
whose end is exclusive, as Airflow's always is: the interval 2025-03-01T00:00 to 2025-03-02T00:00 (a daily
run) is the window 2025-03-01 to 2025-03-01. The dates are read in UTC, the time zone Gooten's dates are
taken to be in (inferred: Gooten documents none).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

#: The widest window an export accepts unless told otherwise (a quarter): a typo in a year must not page
#: through years of orders.
DEFAULT_MAX_WINDOW_DAYS = 92

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class ExportWindow:
    """Creation dates from ``first`` to ``last``, both included."""

    first: dt.date
    last: dt.date

    @property
    def days(self) -> int:
        """How many days the window spans."""
        return (self.last - self.first).days + 1

    def as_json(self) -> dict[str, str]:
        """``{"created_from": "2025-03-01", "created_to": "2025-03-01"}``."""
        return {"created_from": self.first.isoformat(), "created_to": self.last.isoformat()}


def parse_export_date(value: Any, name: str) -> dt.date:
    """A date given as a ``date`` or as ``yyyy-mm-dd`` text (a template's rendering, a trigger form's field).

    :raises ValueError: anything else, naming the argument and the form expected.
    """
    if isinstance(value, dt.datetime):
        raise ValueError(
            f"Invalid {name} {value.isoformat()!r}: give a date (yyyy-mm-dd), not a date and time; "
            "Gooten's search filters whole creation dates."
        )
    if isinstance(value, dt.date):
        return value
    text = value.strip() if isinstance(value, str) else None
    if text and _ISO_DATE.match(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass  # 2025-02-30: the shape is right, the date is not
    raise ValueError(f"Invalid {name} {value!r}: give a date as yyyy-mm-dd (such as '2025-03-01').")


def _utc_midnight(moment: dt.datetime, name: str) -> dt.date:
    utc = moment.astimezone(dt.UTC) if moment.tzinfo is not None else moment
    if utc.time() != dt.time(0):
        raise ValueError(
            f"The run's {name} {moment.isoformat()} is not at midnight UTC, and Gooten's search filters "
            "whole dates: give created_from and created_to, or schedule the DAG daily with a data interval "
            "(CronDataIntervalTimetable('@daily', timezone='UTC'))."
        )
    return utc.date()


def window_from_interval(start: dt.datetime | None, end: dt.datetime | None) -> ExportWindow:
    """The window of a run's data interval: from its start's date to the day before its (exclusive) end.

    :raises ValueError: the run has no data interval, or an empty one, or one not on UTC day boundaries.
    """
    if start is None or end is None:
        raise ValueError(
            "No window: give created_from and created_to (yyyy-mm-dd), since this run has no data interval "
            "to take them from (a manual or asset-triggered run of a DAG without a data-interval schedule)."
        )
    if end <= start:
        raise ValueError(
            f"No window: this run's data interval is empty ({start.isoformat()} to {end.isoformat()}), as "
            "with a CronTriggerTimetable or an '@daily' schedule on Airflow 3's defaults: give created_from "
            "and created_to (yyyy-mm-dd), or schedule with "
            "CronDataIntervalTimetable('@daily', timezone='UTC')."
        )
    first = _utc_midnight(start, "data_interval_start")
    return ExportWindow(first, _utc_midnight(end, "data_interval_end") - dt.timedelta(days=1))


def resolve_window(
    created_from: Any,
    created_to: Any,
    *,
    interval_start: dt.datetime | None,
    interval_end: dt.datetime | None,
    max_days: int = DEFAULT_MAX_WINDOW_DAYS,
) -> ExportWindow:
    """The export's window: the given dates (both, or neither), else the run's data interval.

    :raises ValueError: one date without the other, a malformed date, an end before the start, a window of
        more than ``max_days`` days, or no window at all; each message says what is allowed.
    """
    given = [value not in (None, "") for value in (created_from, created_to)]
    if any(given) and not all(given):
        missing = "created_to" if given[0] else "created_from"
        raise ValueError(
            f"{missing} is missing: give both created_from and created_to (inclusive dates, yyyy-mm-dd), "
            "or neither to export the run's data interval."
        )
    if all(given):
        window = ExportWindow(
            parse_export_date(created_from, "created_from"), parse_export_date(created_to, "created_to")
        )
    else:
        window = window_from_interval(interval_start, interval_end)
    if window.last < window.first:
        raise ValueError(
            f"Invalid window: created_to {window.last.isoformat()} is before created_from "
            f"{window.first.isoformat()} (both dates are included; one day is from D to D)."
        )
    if window.days > max_days:
        raise ValueError(
            f"Window too wide: {window.first.isoformat()} to {window.last.isoformat()} is {window.days} "
            "days, "
            f"more than max_window_days={max_days}; export it in smaller windows, or raise max_window_days."
        )
    return window
