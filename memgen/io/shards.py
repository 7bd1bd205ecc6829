"""Shards: Parquet files (the default) or Arrow IPC files, zstd-compressed, encoded block by block
(each block one row group or record batch) while their sha256 is computed, written atomically,
and read memory-mapped.  The file's suffix names its format (:data:`~memgen.format.names.SHARD_FORMATS`)."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.ipc as ipc

from memgen.format.errors import DataError, UsageError
from memgen.format.names import SHARD_FORMATS
from memgen.io.atomic import pending_file

#: Traps repeat a lot (other keys' values per query), so zstd makes shards ~7x smaller and faster
#: to write and hash; pyarrow and ``datasets`` read both formats transparently.
IPC_OPTIONS = ipc.IpcWriteOptions(compression="zstd", use_threads=False)
#: Parquet writer options: zstd, dictionaries for the repeated strings (ops, probes, families);
#: the file records the Arrow schema, so uint16 ids read back as uint16
PARQUET_OPTIONS = {"compression": "zstd", "use_dictionary": True, "store_schema": True}
#: the default shard format
DEFAULT_FORMAT = "parquet"


def check_format(fmt: str) -> str:
    if fmt not in SHARD_FORMATS:
        raise UsageError(f"--format {fmt!r}: choose from {', '.join(SHARD_FORMATS)}")
    return fmt


def shard_format(path: str | Path) -> str:
    """The format of a shard, named by its suffix (``.parquet`` or ``.arrow``)."""
    suffix = Path(path).suffix.lstrip(".")
    return suffix if suffix in SHARD_FORMATS else "arrow"


class ShardEncoder:
    """A shard's file, encoded a block at a time straight into ``out`` (a binary file, usually a
    :class:`PendingFile`) and hashed as it is written.

    One row group (Parquet) or record batch (Arrow) per chunk of each table added: a shard's
    chunks are its build blocks, fixed by the config, so the bytes are too.  Streaming block by
    block keeps no copy of the shard in memory, and the hashing and the file writes of each block
    overlap building the next: when the last block is encoded only the footer is left."""

    def __init__(self, out: BinaryIO, fmt: str = DEFAULT_FORMAT) -> None:
        self._sink = _HashingSink(out)
        self._fmt = check_format(fmt)
        self._writer = None
        self._broken = False

    def add(self, table: pa.Table) -> None:
        if self._broken:
            raise RuntimeError("an earlier block of this shard failed to encode")
        try:
            if self._writer is None:
                self._writer = self._open(table.schema)
            if self._fmt == "parquet":
                for batch in table.to_batches():  # one row group per block, as Arrow's one batch
                    self._writer.write_batch(batch, row_group_size=max(1, batch.num_rows))
            else:
                self._writer.write_table(table)
        except BaseException:
            self._broken = True
            raise

    def _open(self, schema: pa.Schema):
        if self._fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetWriter(self._sink, schema, **PARQUET_OPTIONS)
        return ipc.new_file(self._sink, schema, options=IPC_OPTIONS)

    def finish(self) -> tuple[str, int]:
        """Write the footer; returns the file's sha256 and size (the caller commits ``out``)."""
        if self._broken or self._writer is None:
            raise RuntimeError("a block of this shard failed to encode: the shard is not written")
        self._writer.close()
        return self._sink.sha256.hexdigest(), self._sink.size


class _HashingSink:
    """The file object pyarrow's writers write to (through ``pyarrow.PythonFile``): every write
    goes to ``out`` and into the running sha256."""

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


def encode_shard(out: BinaryIO, tables: pa.Table | Iterable[pa.Table], fmt: str = DEFAULT_FORMAT) -> tuple[str, int]:
    """Encode a table, or the blocks of one in order, as a shard of format ``fmt`` into ``out``;
    returns the sha256 and size of what was written."""
    enc = ShardEncoder(out, fmt)
    for table in [tables] if isinstance(tables, pa.Table) else tables:
        enc.add(table)
    return enc.finish()


def shard_bytes(table: pa.Table, fmt: str = DEFAULT_FORMAT) -> tuple[bytes, str]:
    """The shard file bytes of ``table`` (one row group / record batch per chunk) and their sha256."""
    out = io.BytesIO()
    digest, _ = encode_shard(out, table, fmt)
    return out.getvalue(), digest


def write_shard(path: Path, table: pa.Table) -> tuple[str, int]:
    """Write one shard atomically (temporary name, then rename), in the format its suffix names;
    returns (sha256, bytes)."""
    with pending_file(path) as f:
        return encode_shard(f, table, shard_format(path))


def map_shard(path: Path) -> pa.MemoryMappedFile:
    """``path`` memory-mapped for reading; DataError unless it is a regular file (a FIFO would
    block the reader forever, a device has no end).  Raises OSError as ``pa.memory_map`` does."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise DataError(f"{path}: not a regular file (a FIFO, device or folder); not a shard")
    return pa.memory_map(str(path), "r")


def shard_info(path: Path) -> tuple[pa.Schema, int]:
    """The schema and row count of the shard at ``path``, from its footer (no data is decoded);
    DataError for anything that is not a readable shard of the format its suffix names."""
    try:
        with map_shard(path) as source:
            if shard_format(path) == "parquet":
                import pyarrow.parquet as pq

                f = pq.ParquetFile(source)
                return f.schema_arrow, f.metadata.num_rows
            reader = ipc.open_file(source)
            return reader.schema, sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: not a readable {shard_format(path)} shard ({e})") from None


def read_shard(path: Path, columns: Sequence[str] | None = None, prompt: bool = True) -> pa.Table:
    """The table of the shard at ``path`` (memory-mapped), in either format; with ``columns``,
    only those columns are read and decompressed (each must exist).  Text rows get their
    ``prompt`` back (``prompt_head + context + prompt_tail``,
    :func:`memgen.render.columns.with_prompt`) unless ``prompt=False`` or ``columns`` leaves it
    out.  DataError for anything that is not a readable shard, or a column it lacks."""
    from memgen.render.columns import STORED_PROMPT, with_prompt

    want = None if columns is None else list(columns)
    if want is not None and "prompt" in want:  # read what the prompt is built from
        want = [c for c in want if c != "prompt"] + [c for c in STORED_PROMPT if c not in want]
    try:
        with map_shard(path) as source:
            if shard_format(path) == "parquet":
                import pyarrow.parquet as pq

                f = pq.ParquetFile(source)
                _check_columns(path, f.schema_arrow.names, want)
                table = f.read(columns=want, use_threads=False)
            else:
                reader = ipc.open_file(source)
                names = reader.schema.names
                _check_columns(path, names, want)
                if want is not None:
                    opts = ipc.IpcReadOptions(included_fields=sorted(names.index(c) for c in want))
                    reader = ipc.open_file(source, options=opts)
                table = reader.read_all()
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: not a readable {shard_format(path)} shard ({e})") from None
    if prompt and (columns is None or "prompt" in columns):
        table = with_prompt(table)
    return table if columns is None else table.select([c for c in columns if c in table.column_names])


def _check_columns(path: Path, names: list[str], want: list[str] | None) -> None:
    missing = [c for c in want or () if c not in names]
    if missing:
        raise DataError(f"{path}: missing columns {', '.join(missing)}")
