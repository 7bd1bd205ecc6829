"""A memgen dataset folder on disk: shards, manifest, card; atomic writes; verification.

Layout (a Hugging Face dataset repo as it stands)::

    DIR/README.md                                   dataset card, YAML ``configs:``
    DIR/manifest.json                               versions, full config, vocab, sha256s
    DIR/data/<config>/<split>-NNNNN-of-NNNNN.arrow  Arrow IPC file shards

Every file is written under a temporary name in the same folder and renamed into place, so an
interrupted run leaves complete files only; re-running the same command skips the shards that
exist and produces the same bytes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

TMP_MARK = ".tmp-"


def sha256_file(path: Path, block: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


class PendingFile:
    """A file being written under a temporary name: ``commit()`` renames it into place and
    ``abort()`` removes it, so a reader never sees a half file.  As a context manager it
    commits on a clean exit and aborts on an error."""

    def __init__(self, raw: BinaryIO, commit: Callable[[], None], discard: Callable[[], None]):
        self._raw, self._commit, self._discard = raw, commit, discard
        self.done = False  # committed or aborted

    def write(self, data) -> int:
        return self._raw.write(data)

    def commit(self) -> None:
        try:
            self._raw.close()
            self._commit()
        except BaseException:
            self.abort()
            raise
        self.done = True

    def abort(self) -> None:
        """Remove the temporary file (a no-op once committed or aborted)."""
        if self.done:
            return
        self.done = True
        try:
            self._raw.close()
        except Exception:  # the file is discarded anyway: its close error (a full disk) is moot
            pass
        self._discard()

    def __enter__(self) -> PendingFile:
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def pending_file(path: Path) -> PendingFile:
    """A :class:`PendingFile` for ``path``: a temporary name in the same folder, renamed on commit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    return PendingFile(open(tmp, "wb"), lambda: os.replace(tmp, path), lambda: tmp.unlink(missing_ok=True))


def atomic_write_bytes(path: Path, data: bytes | memoryview | pa.Buffer) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    with pending_file(path) as f:
        f.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())
