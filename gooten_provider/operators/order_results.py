"""Reading the records of a :class:`~gooten_provider.operators.gooten.GootenOrderStatusOperator` task back.

The task returns either every record (without ``results_path``) or a summary pointing at its results
files (with ``results_path``, see :mod:`gooten_provider.batch.results`). :func:`read_order_results` takes
either, so a downstream task reads the records the same way::

    from gooten_provider.operators.order_results import read_order_results

    @task
    def audit(returned):
        for record in read_order_results(returned):
            ...
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import ObjectStoragePath

from gooten_provider.batch.records import OrderRecord
from gooten_provider.batch.results import SUMMARY_NAME
from gooten_provider.batch.results_reader import is_complete, iter_records, newest_attempt

_LOCAL_SCHEMES = ("file", "local")


def _refuse_a_host(text: str) -> None:
    """A local URI names no host: ``file://tmp/x`` would quietly be ``tmp/x`` under the working directory."""
    parts = urlsplit(text)
    if parts.scheme.lower() in _LOCAL_SCHEMES and parts.netloc:
        host_free = parts.path if parts.netloc.lower() == "localhost" else f"/{parts.netloc}{parts.path}"
        local = f"{parts.scheme}://{host_free}"
        raise ValueError(
            f"Invalid results_path {text!r}: {parts.netloc!r} stands where a {parts.scheme}:// URI has its "
            f"host, and a local path takes none. Give the whole path after three slashes, such as {local!r}."
        )


def storage_path(value: Any, *, plain_paths: bool = False) -> Any:
    """An ``ObjectStoragePath`` for a results path given as a URI (``file:///...``, ``s3://conn@b/p``).

    A path object (``ObjectStoragePath``, ``pathlib.Path``, ``UPath``) is used as it is. With
    ``plain_paths``, a local path without a scheme (``/data/gooten/run-1``) is taken too.
    """
    if not isinstance(value, str) and hasattr(value, "iterdir") and hasattr(value, "open"):
        return value
    text = str(value).strip() if value is not None else ""
    if plain_paths and text and "://" not in text:
        text = Path(text).resolve().as_uri()
    if "://" not in text:
        raise ValueError(
            f"Invalid results_path {value!r}: use an ObjectStoragePath or a URI with a scheme, such as "
            "'file:///data/gooten/{{ run_id }}' or 's3://aws_default@bucket/gooten/{{ run_id }}'."
        )
    _refuse_a_host(text)
    try:
        return ObjectStoragePath(text)
    except TypeError:
        if not text.startswith(tuple(f"{scheme}://" for scheme in _LOCAL_SCHEMES)):
            raise
        # Airflow 3.0's ObjectStoragePath refuses local paths with universal-pathlib 0.3, which it installs
        from upath import UPath

        return UPath(text)


def _complete_folder(folder: Any) -> Any:
    if not is_complete(folder):
        raise FileNotFoundError(
            f"The Gooten results in {folder} are incomplete: it has no {SUMMARY_NAME}, so that try did not "
            "record every order (it was killed, or its results could not be written). Read the results path "
            "above it for the newest complete try, or run the task again: a retry completes them."
        )
    return folder


def read_order_results(source: Any) -> Iterator[OrderRecord]:
    """Yield every order's record from what the operator returned, or from a results path.

    ``source`` is the operator's return value (a list of records, or the summary it returns with
    ``results_path``), a results path (``ObjectStoragePath``, URI or local path: the newest try that
    recorded every order), or one try's folder under it (which must be complete). Records are read lazily,
    one at a time.

    :raises FileNotFoundError: the try named is incomplete, or no try under the path is complete.
    """
    if isinstance(source, Mapping):
        if "results_path" not in source:
            raise ValueError("Not a Gooten results summary: it has no 'results_path'.")
        folder = storage_path(source["results_path"], plain_paths=True) / source["attempt"]
        yield from iter_records(_complete_folder(folder))
        return
    if isinstance(source, Sequence) and not isinstance(source, str):
        yield from source
        return
    if source is None or not str(source).strip():
        raise ValueError(
            f"Invalid Gooten results {source!r}: give what the operator returned, a results path (a local "
            "path, an ObjectStoragePath or a URI such as 's3://aws_default@bucket/gooten/run-1'), or one "
            "try's folder under it."
        )
    path = storage_path(source, plain_paths=True)
    if path.name.startswith("attempt-"):
        yield from iter_records(_complete_folder(path))
        return
    folder = newest_attempt(path)
    if folder is None:
        raise FileNotFoundError(
            f"No complete Gooten results under {path}: no try recorded every order there."
        )
    yield from iter_records(folder)
