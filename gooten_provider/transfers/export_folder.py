"""The folder of one orders export on object storage: numbered part files, their markers, the manifest.

::

    <output_path>/
        manifest.json                 written last; the only file a reader needs to trust
        _pending.json                 while an export is under way: its id and what it exports
        parts-<export id>/
            part-00001.jsonl.gz       one order per line (JSON Lines, gzip optional)
            part-00001.done.json      written once the part is complete: its orders, pages and size

A reader opens ``manifest.json`` and reads the parts it lists, nothing else. An export writes its parts in a
folder of its own (a new id each time), then replaces ``manifest.json`` in one step (a rename on a local
disk, a single PUT on object storage), so a rerun replaces the export atomically from a reader's point of
view: the manifest names either every part of the old export or every part of the new one, never a mix.
The previous export's parts are kept until the next export is published, so a reader that opened the old
manifest just before can finish reading it; older ones are deleted.

A part counts as written only once its marker exists and parses: a crash leaves at most one part without
a marker, which a retry writes again. Paths are ``pathlib``-like objects (an Airflow
``ObjectStoragePath``, a ``UPath``); this module does not import Airflow.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

MANIFEST_NAME = "manifest.json"
PENDING_NAME = "_pending.json"
PARTS_PREFIX = "parts-"
_MARKER_SUFFIX = ".done.json"


def _write_json(path: Any, value: dict[str, Any]) -> None:
    path.write_text(json.dumps(value, indent=1, sort_keys=False) + "\n", encoding="utf-8")


def read_json(path: Any) -> dict[str, Any] | None:
    """A JSON object file, or ``None`` when it is missing, cut short or not an object.

    Any other failure to read it (storage unreachable, access refused) is raised.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        value = json.loads(text)
    except ValueError:  # cut short by a crash while it was written
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True)
class PartRecord:
    """A complete part file: where it is (relative to the export folder) and what it holds."""

    path: str
    orders: int
    first_page: int
    last_page: int
    bytes: int
    #: The ids of the orders on its last page, so that a resumed export still drops an order that a
    #: shifting search repeats across the page boundary.
    last_page_ids: list[str] = field(default_factory=list)

    def manifest_entry(self) -> dict[str, Any]:
        """The part as the manifest lists it."""
        return {
            "path": self.path,
            "orders": self.orders,
            "pages": [self.first_page, self.last_page],
            "bytes": self.bytes,
        }


class ExportFolder:
    """The files of exports under one folder (``output_path``)."""

    def __init__(self, root: Any) -> None:
        self.root = root

    @property
    def manifest_path(self) -> Any:
        """``<root>/manifest.json``."""
        return self.root / MANIFEST_NAME

    def read_manifest(self) -> dict[str, Any] | None:
        """The published manifest, or ``None``."""
        return read_json(self.manifest_path)

    def read_pending(self) -> dict[str, Any] | None:
        """The export under way (``{"export_id", "plan", ...}``), or ``None``."""
        pending = read_json(self.root / PENDING_NAME)
        return pending if pending and isinstance(pending.get("export_id"), str) else None

    def start(self, plan: dict[str, Any], started_at: str) -> str:
        """Record a new export under way and return its id (its parts go into ``parts-<id>/``)."""
        self.root.mkdir(parents=True, exist_ok=True)
        export_id = uuid.uuid4().hex[:16]
        _write_json(
            self.root / PENDING_NAME, {"export_id": export_id, "plan": plan, "started_at": started_at}
        )
        return export_id

    def parts_folder(self, export_id: str) -> Any:
        """The folder of an export's parts."""
        return self.root / f"{PARTS_PREFIX}{export_id}"

    def part_name(self, export_id: str, number: int, suffix: str) -> str:
        """A part's path relative to the root, e.g. ``parts-<id>/part-00001.jsonl.gz``."""
        return f"{PARTS_PREFIX}{export_id}/part-{number:05d}{suffix}"

    def complete_parts(self, export_id: str) -> list[PartRecord]:
        """The parts of an export that have a valid marker, in order, stopping at the first gap."""
        folder = self.parts_folder(export_id)
        try:
            markers = sorted(child for child in folder.iterdir() if child.name.endswith(_MARKER_SUFFIX))
        except FileNotFoundError:
            return []
        parts: list[PartRecord] = []
        for marker in markers:
            data = read_json(marker)
            try:
                part = PartRecord(**data) if data else None
            except TypeError:
                part = None
            expected_first = parts[-1].last_page + 1 if parts else 1
            if part is None or part.first_page != expected_first:
                break
            parts.append(part)
        return parts

    def open_part(self, relative: str) -> Any:
        """Open a part file for writing (binary), replacing what a crashed try left there."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("wb")

    def mark_complete(self, part: PartRecord) -> None:
        """Write the part's marker, after the part itself is closed."""
        marker = self.root / (part.path.split(".jsonl", 1)[0] + _MARKER_SUFFIX)
        _write_json(marker, asdict(part))

    def publish(self, manifest: dict[str, Any]) -> None:
        """Replace ``manifest.json`` in one step, then forget the pending export and old parts.

        The previous manifest's parts are kept (a reader may be reading them); older ones are deleted.
        """
        previous = self.read_manifest()
        temporary = self.root / f".{MANIFEST_NAME}.{manifest['export_id']}.tmp"
        _write_json(temporary, manifest)
        temporary.fs.mv(temporary.path, self.manifest_path.path)  # a rename on a local disk
        self.forget_pending()
        keep = {manifest["export_id"], (previous or {}).get("export_id")}
        for folder in self._parts_folders():
            if folder.name[len(PARTS_PREFIX) :] not in keep:
                folder.fs.rm(folder.path, recursive=True)

    def forget_pending(self) -> None:
        """Remove ``_pending.json`` (the export it names is published)."""
        (self.root / PENDING_NAME).unlink(missing_ok=True)

    def discard(self, export_id: str) -> None:
        """Delete an abandoned export's parts (one whose plan no longer matches)."""
        folder = self.parts_folder(export_id)
        if folder.exists():
            folder.fs.rm(folder.path, recursive=True)

    def _parts_folders(self) -> Iterator[Any]:
        for child in self.root.iterdir():
            if child.name.startswith(PARTS_PREFIX) and child.is_dir():
                yield child
