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
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.ipc as ipc

from ..errors import DataError, UsageError
from .schema import manifest_vocab_size, schema_for

MANIFEST = "manifest.json"
CARD = "README.md"
TMP_MARK = ".tmp-"
SHARD_RE = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.arrow$")


def shard_name(split: str, i: int, n: int) -> str:
    return f"{split}-{i:05d}-of-{n:05d}.arrow"


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


def read_shard(path: Path) -> pa.Table:
    try:
        with pa.memory_map(str(path), "r") as source:
            return ipc.open_file(source).read_all()
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: not a readable Arrow shard ({e})") from None


# ---------------------------------------------------------------------------------------------

_SHARD_PATH = re.compile(r"data/[^/]+/[^/]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _count(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def check_manifest(manifest: dict, where: str) -> None:
    """Raise DataError naming the first entry of a parsed manifest whose type or form is wrong
    (so that no reader trips over it later): ``configs`` a table of configs, each with a
    ``rendering`` name, a ``rows`` count and a ``shards`` list of ``{path, rows, sha256, bytes}``
    whose path is ``data/<config>/<file>``; ``vocab`` a table or null."""
    def bad(what: str) -> DataError:
        return DataError(f"{where}: {what} (the manifest is damaged; regenerate the dataset)")

    configs = manifest.get("configs")
    if not isinstance(configs, dict):
        raise bad("'configs' is not a table")
    if manifest.get("vocab") is not None and not isinstance(manifest["vocab"], dict):
        raise bad("'vocab' is not a table")
    for name, cfg in configs.items():
        if not isinstance(cfg, dict) or not isinstance(cfg.get("shards"), list):
            raise bad(f"config {name!r} has no 'shards' list")
        if not isinstance(cfg.get("rendering"), str) or not _count(cfg.get("rows")):
            raise bad(f"config {name!r} needs a 'rendering' name and a 'rows' count")
        for i, shard in enumerate(cfg["shards"]):
            path = shard.get("path") if isinstance(shard, dict) else None
            if not isinstance(path, str) or not _SHARD_PATH.fullmatch(path) or ".." in path.split("/"):
                raise bad(f"config {name!r}, shard {i}: path {path!r} is not data/<config>/<file>")
            if not (_count(shard.get("rows")) and _count(shard.get("bytes"))
                    and isinstance(shard.get("sha256"), str) and _SHA256.fullmatch(shard["sha256"])):
                raise bad(f"{path}: needs 'rows' and 'bytes' counts and a hex 'sha256'")


@dataclass
class Dataset:
    """An open dataset folder: its manifest, and tables per config."""

    root: Path
    manifest: dict

    @classmethod
    def open(cls, root: str | Path) -> Dataset:
        root = Path(root)
        path = root / MANIFEST
        if not path.is_file():
            raise DataError(f"{root}: not a memgen dataset (no {MANIFEST})")
        try:
            manifest = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: malformed JSON ({e})") from None
        if not isinstance(manifest, dict) or "configs" not in manifest:
            raise DataError(f"{path}: not a memgen manifest (no 'configs')")
        if manifest.get("status") != "complete":
            raise DataError(f"{root}: generation did not finish; re-run the same generate command to resume")
        check_manifest(manifest, str(path))
        return cls(root, manifest)

    @property
    def configs(self) -> list[str]:
        return list(self.manifest["configs"])

    @property
    def vocab(self) -> dict | None:
        return self.manifest.get("vocab")

    def config(self, name: str) -> dict:
        try:
            return self.manifest["configs"][name]
        except KeyError:
            raise UsageError(f"{self.root}: no config {name!r}; it has: {', '.join(self.configs)}") from None

    def shard_paths(self, name: str) -> list[Path]:
        return [self.root / s["path"] for s in self.config(name)["shards"]]

    def iter_tables(self, name: str) -> Iterator[pa.Table]:
        for path in self.shard_paths(name):
            yield read_shard(path)

    def table(self, name: str) -> pa.Table:
        tables = list(self.iter_tables(name))
        if tables:
            return pa.concat_tables(tables)
        return schema_for(self.config(name)["rendering"], manifest_vocab_size(self.manifest)).empty_table()


def verify(root: str | Path) -> list[str]:
    """Every problem found in a dataset folder, one line each (empty: the folder is sound).

    Checks that the manifest parses, every shard it lists exists with the recorded sha256,
    size, row count and the rendering's schema, that no shard or temporary file is present
    that the manifest does not list, and that the card lists the same configs."""
    root = Path(root)
    try:
        ds = Dataset.open(root)
    except DataError as e:
        return [e.message]
    problems: list[str] = []
    listed: set[Path] = set()
    for cfg in ds.manifest["configs"].values():
        expected = schema_for(cfg["rendering"], manifest_vocab_size(ds.manifest))
        for s in cfg["shards"]:
            path = root / s["path"]
            listed.add(path.resolve())
            if not path.is_file():
                problems.append(f"{s['path']}: missing")
                continue
            if path.stat().st_size != s["bytes"]:
                problems.append(f"{s['path']}: size {path.stat().st_size} != {s['bytes']} in manifest")
                continue
            if sha256_file(path) != s["sha256"]:
                problems.append(f"{s['path']}: sha256 mismatch (corrupted or modified)")
                continue
            try:
                with pa.memory_map(str(path), "r") as src:
                    reader = ipc.open_file(src)
                    rows = sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
                    schema = reader.schema
            except (pa.ArrowInvalid, OSError) as e:
                problems.append(f"{s['path']}: unreadable ({e})")
                continue
            if not schema.equals(expected):
                problems.append(f"{s['path']}: schema differs from the {cfg['rendering']} rendering's")
            if rows != s["rows"]:
                problems.append(f"{s['path']}: {rows} rows, manifest says {s['rows']}")
    data = root / "data"
    if data.is_dir():
        for path in sorted(data.rglob("*")):
            if path.is_file() and path.resolve() not in listed:
                problems.append(f"{path.relative_to(root)}: not listed in the manifest")
    card = root / CARD
    if not card.is_file():
        problems.append(f"{CARD}: missing")
    else:
        from .card import card_configs

        try:
            names = card_configs(card.read_text())
        except ValueError as e:
            problems.append(f"{CARD}: {e}")
        else:
            if sorted(names) != sorted(ds.configs):
                problems.append(f"{CARD}: configs {sorted(names)} differ from the manifest's {sorted(ds.configs)}")
    return problems


def open_verified(root: str | Path, check: bool = True) -> Dataset:
    """Open a dataset folder that passes :func:`verify` (skipped with ``check=False``);
    DataError naming the first problem."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such dataset folder")
    problems = verify(root) if check else []
    if problems:
        more = f" (and {len(problems) - 1} more; run memgen verify {root})" if len(problems) > 1 else ""
        raise DataError(f"{root}: fails verification: {problems[0]}{more}")
    return Dataset.open(root)
