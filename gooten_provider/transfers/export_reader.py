"""Reading an orders export back: the manifest, then exactly the parts it lists.

::

    from gooten_provider.transfers.export_reader import read_exported_orders

    for order in read_exported_orders("s3://aws_default@lake/gooten/orders/2025-03-01/"):
        ...

A reader that goes through the manifest never sees a half export: parts being written by a later export
are not listed until that export is complete (see :mod:`gooten_provider.transfers.export_folder`).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

from gooten_provider.transfers.export_folder import ExportFolder
from gooten_provider.transfers.orders_export import MANIFEST_FORMAT


def read_manifest(output_path: Any) -> dict[str, Any]:
    """The manifest of the export in ``output_path`` (an ``ObjectStoragePath``, ``UPath`` or URI).

    :raises FileNotFoundError: no complete export there (no readable manifest of this format).
    """
    from gooten_provider.operators.order_results import storage_path

    folder = ExportFolder(storage_path(output_path))
    manifest = folder.read_manifest()
    if manifest is None or manifest.get("format") != MANIFEST_FORMAT:
        raise FileNotFoundError(
            f"No complete Gooten orders export in {output_path}: no {MANIFEST_FORMAT} manifest."
        )
    return manifest


def read_exported_orders(
    output_path: Any, manifest: dict[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Yield every exported order, part after part as the manifest lists them, one line at a time."""
    from gooten_provider.operators.order_results import storage_path

    root = storage_path(output_path)
    for part in (manifest or read_manifest(root))["parts"]:
        path = root / part["path"]
        with path.open("rb") as raw:
            stream: Any = gzip.GzipFile(fileobj=raw, mode="rb") if part["path"].endswith(".gz") else raw
            for line in stream:
                if line.strip():
                    yield json.loads(line)
