"""Export Gooten orders to object storage from an Airflow task: JSON Lines parts and a manifest."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from gooten_provider import __version__
from gooten_provider.hooks.gooten import GootenHook
from gooten_provider.hooks.rate_limit_connection import check_rate_limit_conn_id
from gooten_provider.transfers.export_folder import ExportFolder
from gooten_provider.transfers.export_window import DEFAULT_MAX_WINDOW_DAYS, resolve_window
from gooten_provider.transfers.order_fields import DEFAULT_FIELDS, compile_fields
from gooten_provider.transfers.orders_export import ExportPlan, export_orders
from gooten_provider.transfers.prefetch import prefetched

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from gooten_provider.client import SearchPage

#: Orders per part file unless told otherwise (rounded up to whole pages).
DEFAULT_ORDERS_PER_PART = 50_000
#: Search pages read ahead of the one being written (about 0.3 MB of JSON each): a slow write of one page
#: does not hold up the reading of the next ones, paced at the account's rate.
PAGES_READ_AHEAD = 2
#: The search filters the operator takes in ``filters`` (the window has its own arguments).
EXPORT_FILTERS = ("email", "last_name", "postal_code", "unique_user_id", "generic_values", "partner_id")


class GootenExportInputError(AirflowFailException, ValueError):
    """An export's argument is wrong (window, filters, fields, output path); no request was made.

    It fails the task without retries: a retry would render the same arguments.
    """


def _whole_number(value: Any, name: str, minimum: int, maximum: float = math.inf) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        bounds = f"from {minimum} to {maximum:g}" if math.isfinite(maximum) else f"of at least {minimum}"
        raise ValueError(f"Invalid {name} {value!r}: use a whole number {bounds}.")
    return value


def _export_filters(filters: Any) -> dict[str, str]:
    """The other search filters, checked: names from :data:`EXPORT_FILTERS`, values as text."""
    if filters is None:
        return {}
    if not isinstance(filters, Mapping):
        raise ValueError(
            f"filters must be a mapping such as {{'email': 'ada@example.com'}}, got {filters!r}."
        )
    window_names = sorted(set(filters) & {"start_date", "end_date", "startDate", "endDate"})
    if window_names:
        raise ValueError(
            f"filters {', '.join(window_names)}: give the window as created_from and created_to instead."
        )
    unknown = sorted(set(filters) - set(EXPORT_FILTERS))
    if unknown:
        raise ValueError(
            f"Unknown search filter(s) {', '.join(unknown)}; allowed: {', '.join(EXPORT_FILTERS)}."
        )
    return {name: str(value) for name, value in filters.items() if value not in (None, "")}


def _output_folder(value: Any) -> Any:
    """The export's folder: an ``ObjectStoragePath`` (or another path object) or a URI with a scheme."""
    from gooten_provider.operators.order_results import storage_path

    if value is None or (isinstance(value, str) and "://" not in value):
        raise ValueError(
            f"Invalid output_path {value!r}: use an ObjectStoragePath or a URI with a scheme, such as "
            "'s3://aws_default@lake/gooten/orders/{{ ds }}/' or 'file:///data/gooten/orders/{{ ds }}/'."
        )
    try:
        path = storage_path(value)
        path.fs  # noqa: B018 - fails now, before any request, when no filesystem serves the scheme
    except (ValueError, TypeError) as error:
        scheme = str(value).split("://", 1)[0] if "://" in str(value) else getattr(value, "protocol", "?")
        raise ValueError(
            f"Invalid output_path {value!r}: Airflow has no filesystem for its scheme {scheme!r}; "
            "install the provider that registers it (s3: apache-airflow-providers-amazon; gs, gcs: "
            "apache-airflow-providers-google; abfs: apache-airflow-providers-microsoft-azure), or use "
            f"file:// ({error})."
        ) from None
    return path


class GootenOrdersToObjectStorageOperator(BaseOperator):
    """Export the Gooten orders created in a window to object storage, as JSON Lines and a manifest.

    The orders come from Gooten's order search (``GET /api/ordersearch``, 100 per page) through the hook's
    client, so the connection's timeout, retries, pacing and secret masking apply. Each order is one line of
    a numbered part file under ``output_path``; ``manifest.json`` is written last and lists the parts::

        <output_path>/manifest.json
        <output_path>/parts-<export id>/part-00001.jsonl.gz

    Read an export with :func:`gooten_provider.transfers.export_reader.read_exported_orders` (or read the
    manifest and the parts it lists). A rerun replaces the export in one step from a reader's point of
    view, and a retry after a crash resumes from the last complete part. The task returns (XCom) the
    manifest's summary, never the orders::

        {"manifest": "s3://.../manifest.json", "export_id": "...", "orders": 1234, "pages": 13, "parts": 1,
         "created_from": "2025-03-01", "created_to": "2025-03-01", ...}

    **Personal data.** By default each line holds only
    :data:`~gooten_provider.transfers.order_fields.DEFAULT_FIELDS`: the order's ids, creation time, items
    (id, SKU, quantity, status, tracking, shipments, prices) and totals; no name, address, e-mail, phone,
    free-form ``Meta`` or artwork URL.
    ``include_personal_data=True`` writes the whole order JSON instead (or lets ``fields`` name personal
    paths): the shipping and billing addresses (names, street, city, postal code, e-mail, phone) then land in
    the lake, and with them the duties that come with holding personal data there.

    :param output_path: the folder of this export: an ``ObjectStoragePath`` or a URI (any fsspec protocol;
        ``file://`` locally), e.g. ``s3://aws_default@lake/gooten/orders/{{ ds }}/``; templated.
    :param created_from: the first creation date exported (``date`` or ``yyyy-mm-dd``); templated.
    :param created_to: the last creation date exported, included; templated. Without both, the window is
        the run's data interval (its end excluded, as Airflow's is); a run without one needs both.
    :param filters: other search filters: ``email``, ``last_name``, ``postal_code``, ``unique_user_id``,
        ``generic_values``, ``partner_id``; templated.
    :param fields: the allowlist of field paths each line keeps (``"Id"``, ``"Items.Status"``, ...); default
        :data:`~gooten_provider.transfers.order_fields.DEFAULT_FIELDS`; templated.
    :param include_personal_data: export the whole order JSON (``fields`` unset), or allow personal paths
        in ``fields``. Not templated on purpose: it is a decision made in code review, not in a trigger form.
    :param compress: gzip the part files (``.jsonl.gz``), default on.
    :param orders_per_part: orders per part file, rounded up to whole search pages.
    :param max_window_days: the widest window accepted (default 92 days).
    :param page_size: orders per search page (1 to 100; 100 makes the fewest requests).
    :param gooten_conn_id: the Gooten connection; templated.
    :param requests_per_second: an optional cap on this task's request rate to Gooten.
    :param rate_limit_conn_id: an Airflow connection of type ``redis`` where every task on this Gooten
        account shares one pace; default: the Gooten connection's ``rate_limit_conn_id`` extra; ``""`` turns
        the extra's off; templated.
    """

    template_fields: Sequence[str] = (
        "output_path",
        "created_from",
        "created_to",
        "filters",
        "fields",
        "gooten_conn_id",
        "rate_limit_conn_id",
    )
    template_fields_renderers = {"filters": "json", "fields": "json"}  # noqa: RUF012 - Airflow's convention
    ui_color = "#d0ebff"

    def __init__(
        self,
        *,
        output_path: Any,
        created_from: Any = None,
        created_to: Any = None,
        filters: Mapping[str, Any] | None = None,
        fields: Sequence[str] | None = None,
        include_personal_data: bool = False,
        compress: bool = True,
        orders_per_part: int = DEFAULT_ORDERS_PER_PART,
        max_window_days: int = DEFAULT_MAX_WINDOW_DAYS,
        page_size: int = 100,
        gooten_conn_id: str = GootenHook.default_conn_name,
        requests_per_second: float | None = None,
        rate_limit_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rate_limit_conn_id = check_rate_limit_conn_id(rate_limit_conn_id, self.task_id)
        if not isinstance(include_personal_data, bool):
            raise ValueError(f"include_personal_data must be True or False, got {include_personal_data!r}.")
        self.output_path = output_path
        self.created_from = created_from
        self.created_to = created_to
        self.filters = filters
        self.fields = fields
        self.include_personal_data = include_personal_data
        self.compress = bool(compress)
        self.orders_per_part = _whole_number(orders_per_part, "orders_per_part", 1)
        self.max_window_days = _whole_number(max_window_days, "max_window_days", 1)
        self.page_size = _whole_number(page_size, "page_size", 1, 100)
        self.gooten_conn_id = gooten_conn_id
        self.requests_per_second = requests_per_second

    def plan(self, context: Context | Mapping[str, Any]) -> ExportPlan:
        """Check every argument (after templating) and return what the export writes; no request is made.

        :raises ValueError: a bad window, filter, field or size; the message says what is allowed.
        """
        window = resolve_window(
            self.created_from,
            self.created_to,
            interval_start=context.get("data_interval_start"),
            interval_end=context.get("data_interval_end"),
            max_days=self.max_window_days,
        )
        whole_order = self.fields is None and self.include_personal_data
        fields = None if whole_order else list(self.fields if self.fields is not None else DEFAULT_FIELDS)
        tree = (
            None
            if fields is None
            else compile_fields(fields, include_personal_data=self.include_personal_data)
        )
        return ExportPlan(
            window=window,
            filters=_export_filters(self.filters),
            fields=fields,
            field_tree=tree,
            include_personal_data=self.include_personal_data,
            compress=self.compress,
            page_size=self.page_size,
            pages_per_part=math.ceil(self.orders_per_part / self.page_size),
        )

    def execute(self, context: Context) -> dict[str, Any]:
        """Export the window's orders; return the manifest's summary (see the class docstring)."""
        try:
            plan = self.plan(context)
            folder = ExportFolder(_output_folder(self.output_path))
        except ValueError as error:
            raise GootenExportInputError(str(error)) from None
        client = GootenHook(
            self.gooten_conn_id,
            requests_per_second=self.requests_per_second,
            rate_limit_conn_id=self.rate_limit_conn_id,
        ).get_conn()
        search: dict[str, str | dt.date | None] = {
            **plan.filters,
            "start_date": plan.window.first,
            "end_date": plan.window.last,
        }

        def read_pages(first_page: int) -> Iterator[SearchPage]:
            # the next page is read while this one is written: a page costs the longer of the two
            return prefetched(
                client.search_order_pages(page_size=plan.page_size, first_page=first_page, **search),
                depth=PAGES_READ_AHEAD,
            )

        self.log.info(
            "Exporting the Gooten orders created %s to %s (both included) to %s: %s.",
            plan.window.first,
            plan.window.last,
            folder.manifest_path.parent,
            "the whole order JSON, personal data included"
            if plan.fields is None
            else f"{len(plan.fields)} field(s)"
            + (", personal data included" if plan.include_personal_data else ""),
        )
        manifest = export_orders(read_pages, folder, plan, provider_version=__version__, log=self.log)
        self.log.info(
            "Exported %d order(s) from %d page(s) into %d part(s); manifest %s.",
            manifest["orders"],
            manifest["pages"],
            len(manifest["parts"]),
            folder.manifest_path,
        )
        return export_summary(manifest, str(folder.root), str(folder.manifest_path))


def export_summary(manifest: Mapping[str, Any], output_path: str, manifest_uri: str) -> dict[str, Any]:
    """The XCom of an export: its manifest without the list of parts (counted instead), and where it is."""
    summary = {key: value for key, value in manifest.items() if key not in ("parts", "window")}
    return {
        "output_path": output_path,
        "manifest": manifest_uri,
        **manifest["window"],
        **summary,
        "parts": len(manifest["parts"]),
    }
