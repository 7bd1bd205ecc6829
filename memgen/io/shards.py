"""Shards: Arrow IPC files with zstd-compressed buffers, encoded block by block (each block one
record batch) while their sha256 is computed, written atomically, and read memory-mapped."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.ipc as ipc

from memgen.format.errors import DataError
from memgen.io.atomic import pending_file

#: Shards are Arrow IPC files with zstd-compressed buffers: traps repeat a lot (other keys'
#: values per query), so shards are ~7x smaller and faster to write and hash; pyarrow and
#: ``datasets`` read them transparently.
IPC_OPTIONS = ipc.IpcWriteOptions(compression="zstd", use_threads=False)


class ShardEncoder:
    """A shard's Arrow IPC file, encoded a block at a time straight into ``out`` (a binary
    file, usually a :class:`PendingFile`) and hashed as it is written.

    One record batch per chunk of each table added (a shard's chunks are its build blocks,
    fixed by the config: deterministic).  Streaming block by block keeps no copy of the shard
    in memory, and the hashing and the file writes of each block overlap building the next:
    when the last block is encoded only the footer is left."""

    def __init__(self, out: BinaryIO) -> None:
        self._sink = _HashingSink(out)
        self._writer = None
        self._broken = False

    def add(self, table: pa.Table) -> None:
        if self._broken:
            raise RuntimeError("an earlier block of this shard failed to encode")
        try:
            if self._writer is None:
                self._writer = ipc.new_file(self._sink, table.schema, options=IPC_OPTIONS)
            self._writer.write_table(table)
        except BaseException:
            self._broken = True
            raise

    def finish(self) -> tuple[str, int]:
        """Write the footer; returns the file's sha256 and size (the caller commits ``out``)."""
        if self._broken or self._writer is None:
            raise RuntimeError("a block of this shard failed to encode: the shard is not written")
        self._writer.close()
        return self._sink.sha256.hexdigest(), self._sink.size


class _HashingSink:
    """The file object pyarrow's IPC writer writes to (through ``pyarrow.PythonFile``):
    every write goes to ``out`` and into the running sha256."""

    closed = False

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self._out.write(data)
        n = memoryview(data).nbytes
        self.size += n
        return n

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass

    def close(self) -> None:  # pyarrow closes its wrapper; ``out`` is committed by its owner
        pass


def encode_shard(out: BinaryIO, tables: pa.Table | Iterable[pa.Table]) -> tuple[str, int]:
    """Encode a table, or the blocks of one in order, as a shard into ``out``; returns the
    sha256 and size of what was written."""
    enc = ShardEncoder(out)
    for table in [tables] if isinstance(tables, pa.Table) else tables:
        enc.add(table)
    return enc.finish()


def shard_bytes(table: pa.Table) -> tuple[bytes, str]:
    """The Arrow IPC file bytes of ``table`` (one record batch per chunk) and their sha256."""
    out = io.BytesIO()
    digest, _ = encode_shard(out, table)
    return out.getvalue(), digest


def write_shard(path: Path, table: pa.Table) -> tuple[str, int]:
    """Write one shard atomically (temporary name, then rename); returns (sha256, bytes)."""
    with pending_file(path) as f:
        return encode_shard(f, table)


def map_shard(path: Path) -> pa.MemoryMappedFile:
    """``path`` memory-mapped for reading; DataError unless it is a regular file (a FIFO would
    block the reader forever, a device has no end).  Raises OSError as ``pa.memory_map`` does."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise DataError(f"{path}: not a regular file (a FIFO, device or folder); not a shard")
    return pa.memory_map(str(path), "r")


def read_shard(path: Path) -> pa.Table:
    """The table of the shard at ``path`` (memory-mapped); DataError for anything that is not a
    readable Arrow IPC file."""
    try:
        with map_shard(path) as source:
            return ipc.open_file(source).read_all()
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: not a readable Arrow shard ({e})") from None
