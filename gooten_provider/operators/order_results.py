"""Reading the records of a :class:`~gooten_provider.operators.gooten.GootenOrderStatusOperator` task back.

The task returns either every record (without ``results_path``) or a summary pointing at its results files
(with ``results_path``, see :mod:`gooten_provider.results`). :func:`read_order_results` takes either, so a
downstream task reads the records the same way::

    from gooten_provider.operators.order_results import read_order_results

    @task
    def audit(returned):
        for record in read_order_results(returned):
            ...
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from airflow.providers.common.compat.sdk import ObjectStoragePath

from gooten_provider.results import iter_records, newest_attempt

_LOCAL_SCHEMES = ("file://", "local://")


def storage_path(value: Any) -> Any:
    """An ``ObjectStoragePath`` for a results path given as a URI (``file:///...``, ``s3://conn@b/p``).

    A path object (``ObjectStoragePath``, ``pathlib.Path``, ``UPath``) is used as it is.
    """
    if not isinstance(value, str) and hasattr(value, "iterdir") and hasattr(value, "open"):
        return value
    text = str(value).strip() if value is not None else ""
    if "://" not in text:
        raise ValueError(
            f"Invalid results_path {value!r}: use an ObjectStoragePath or a URI with a scheme, such as "
            "'file:///data/gooten/{{ run_id }}' or 's3://aws_default@bucket/gooten/{{ run_id }}'."
        )
    try:
        return ObjectStoragePath(text)
    except TypeError:
        if not text.startswith(_LOCAL_SCHEMES):
            raise
        # Airflow 3.0's ObjectStoragePath refuses local paths with universal-pathlib 0.3, which it installs
        from upath import UPath

        return UPath(text)


def read_order_results(source: Any) -> Iterator[dict[str, Any]]:
    """Yield every order's record from what the operator returned, or from a results path.

    ``source`` is the operator's return value (a list of records, or the summary it returns with
    ``results_path``), a results path (``ObjectStoragePath`` or URI: the newest try that recorded every
    order), or one try's folder under it. Records are read lazily, one at a time.
    """
    if isinstance(source, Mapping):
        if "results_path" not in source:
            raise ValueError("Not a Gooten results summary: it has no 'results_path'.")
        folder = storage_path(source["results_path"]) / source["attempt"]
        yield from iter_records(folder)
        return
    if isinstance(source, Sequence) and not isinstance(source, str):
        yield from source
        return
    path = storage_path(source)
    folder = path if path.name.startswith("attempt-") else newest_attempt(path)
    if folder is None:
        raise FileNotFoundError(
            f"No complete Gooten results under {path}: no try recorded every order there."
        )
    yield from iter_records(folder)
