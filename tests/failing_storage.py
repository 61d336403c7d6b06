"""Storage that really fails, for the results files' tests: a small tmpfs that fills up, and object storage.

:class:`SmallDisk` mounts a tmpfs of its own (root only: a test without it is skipped, saying why). Writes on
it fail with ``ENOSPC`` once :meth:`SmallDisk.fill` has taken every free block, and work again after
:meth:`SmallDisk.free`: a disk that fills for a few seconds, for real.

:func:`object_storage` gives a path whose protocol is not ``file``, so the results journal treats it as
object storage (buffered, one object per flush); its objects are files, so on a :class:`SmallDisk` an
upload fails when the disk is full, like a failed part upload.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import threading
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem

OBJECT_PROTOCOL = "gootentestobjects"


class SmallDisk:
    """A tmpfs mounted at ``path``; :meth:`fill` makes every write on it fail, :meth:`free` ends that."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._filler = path / ".filler"

    def fill(self) -> None:
        """Take every free block: from now on, writes on the disk fail with ``ENOSPC``."""
        chunk = b"\0" * 4096
        with self._filler.open("ab", buffering=0) as handle:
            while True:
                try:
                    handle.write(chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    return

    def free(self) -> None:
        """Give the blocks back: writes work again."""
        self._filler.unlink(missing_ok=True)

    def free_after(self, seconds: float) -> threading.Timer:
        """Free the disk ``seconds`` from now (a disk full for a while)."""
        timer = threading.Timer(seconds, self.free)
        timer.start()
        return timer


@contextlib.contextmanager
def small_disk(where: Path, size_kib: int = 1024) -> Iterator[SmallDisk]:
    """Mount a tmpfs of ``size_kib`` KiB at ``where`` for the block; skip the test if that is not allowed."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs (a disk that really fills) needs root and mount(8)")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "gooten-test", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"could not mount a small tmpfs (a disk that really fills): {mounted.stderr.strip()}")
    try:
        yield SmallDisk(where)
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=False)


class _ObjectStorageOverFiles(LocalFileSystem):
    """Local files under a protocol of their own, so that the journal writes them as object storage."""

    protocol = (OBJECT_PROTOCOL,)

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        text = str(path)
        if text.startswith(f"{OBJECT_PROTOCOL}://"):
            text = text[len(OBJECT_PROTOCOL) + 3 :]
        return str(LocalFileSystem._strip_protocol(text))


def object_storage(local: Path) -> Any:
    """A path under ``local`` that the results journal sees as object storage (one object per flush)."""
    fsspec.register_implementation(OBJECT_PROTOCOL, _ObjectStorageOverFiles, clobber=True)
    from upath import UPath

    with warnings.catch_warnings():  # universal-pathlib's note that it has no class of its own for it
        warnings.simplefilter("ignore", UserWarning)
        return UPath(f"{OBJECT_PROTOCOL}://{local}/{uuid.uuid4().hex[:8]}")
