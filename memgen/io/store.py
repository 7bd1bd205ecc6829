"""Where a dataset folder lives: a local folder, or any fsspec / pyarrow URL.

``generate`` writes through a :class:`Store`, so ``--out`` may be ``ds``, ``file:///data/ds``,
``s3://bucket/ds`` (with s3fs, or pyarrow's own S3 filesystem), ``memory://ds`` (tests) and
whatever else fsspec or ``pyarrow.fs.FileSystem.from_uri`` understands.  Every write goes to a
temporary name in the same folder (containing :data:`~memgen.io.dataset.TMP_MARK`) and is then
renamed into place, so a reader never sees a half file and an interrupted run leaves only
complete files plus temporaries that the next run removes.

A store is picklable: it travels to worker processes and Ray tasks as its URL and reopens its
filesystem there.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from memgen.format.errors import UsageError
from memgen.io.atomic import TMP_MARK, PendingFile, atomic_write_bytes, pending_file, sha256_file
from memgen.io.shards import DEFAULT_FORMAT, encode_shard

#: fsspec protocols whose files live in one process's memory: other workers cannot see them
PROCESS_LOCAL = ("memory",)


class Store(ABC):
    """A dataset folder addressed by paths relative to its root (``data/x/test-00000-of-00001.parquet``)."""

    url: str
    #: files written by another process (a worker, a Ray task) are visible here
    shared: bool = True

    @abstractmethod
    def exists(self) -> bool:
        """The root exists (as a folder or, on object stores, as a prefix with objects)."""

    @abstractmethod
    def is_empty(self) -> bool:
        """The root is missing or holds nothing (UsageError if it is a file or cannot be read)."""

    @abstractmethod
    def is_file(self, rel: str) -> bool:
        ...

    @abstractmethod
    def size(self, rel: str) -> int | None:
        """Size in bytes, or None when there is no such file."""

    @abstractmethod
    def sha256(self, rel: str) -> str:
        ...

    @abstractmethod
    def read_bytes(self, rel: str) -> bytes:
        ...

    @abstractmethod
    def files(self) -> list[str]:
        """Every file under the root, as sorted relative paths."""

    @abstractmethod
    def remove(self, rel: str) -> None:
        """Remove a file if it is there."""

    @abstractmethod
    def make_root(self) -> None:
        """Create the root and check that a file can be written there (UsageError if not)."""

    @abstractmethod
    def remove_tree(self) -> None:
        """Remove the root and everything under it."""

    @abstractmethod
    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a whole file atomically (temporary name, then rename)."""

    @abstractmethod
    def open_pending(self, rel: str) -> PendingFile:
        """A file for ``rel`` at a temporary name: renamed into place by its ``commit()``."""

    def write_shard(self, rel: str, tables: pa.Table | Iterable[pa.Table],
                    fmt: str = DEFAULT_FORMAT) -> tuple[str, int]:
        """Write a table, or the blocks of one in order (each block one or more row groups or
        record batches), as a shard of format ``fmt``, atomically; returns (sha256, bytes)."""
        with self.open_pending(rel) as out:
            return encode_shard(out, tables, fmt)

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode()

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode())

    def lock(self) -> contextlib.AbstractContextManager:
        """Held while a job writes here, so that a second job into the same place stops with one
        line instead of interleaving its files.  Object stores have no lock (a no-op)."""
        return contextlib.nullcontext()

    def __str__(self) -> str:
        return self.url


class LocalStore(Store):
    """A folder on this machine (or on a filesystem mounted here, e.g. NFS)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.url = str(root)

    def exists(self) -> bool:
        return self.root.exists()

    def is_empty(self) -> bool:
        if not self.root.exists():
            return True
        if not self.root.is_dir():
            raise UsageError(f"--out {self.root}: exists and is not a folder")
        try:
            return not any(self.root.iterdir())
        except OSError as e:
            raise UsageError(f"--out {self.root}: cannot read it ({e.strerror or e})") from None

    def is_file(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    def size(self, rel: str) -> int | None:
        try:
            return (self.root / rel).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    def sha256(self, rel: str) -> str:
        return sha256_file(self.root / rel)

    def read_bytes(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def files(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())

    def remove(self, rel: str) -> None:
        (self.root / rel).unlink(missing_ok=True)

    def make_root(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise UsageError(f"--out {self.root}: exists and is not a folder")
        probe = self.root / f".write-test{TMP_MARK}{os.getpid()}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
        except OSError as e:
            raise UsageError(f"--out {self.root}: cannot write there ({e.strerror or e})") from None
        finally:
            with contextlib.suppress(OSError):  # gone already, or the folder was never made
                probe.unlink()

    def remove_tree(self) -> None:
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """An exclusive ``flock`` on the folder itself (created if missing): no file is added to
        it, and the kernel releases the lock when the holder dies, however it dies."""
        import fcntl

        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            raise UsageError(f"--out {self.root}: cannot write there ({e.strerror or e})") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UsageError(f"--out {self.root}: another memgen job is writing there; wait for it to "
                                 "finish or choose another folder") from None
            yield
        finally:
            os.close(fd)

    def write_bytes(self, rel: str, data: bytes) -> None:
        atomic_write_bytes(self.root / rel, data)

    def open_pending(self, rel: str) -> PendingFile:
        return pending_file(self.root / rel)


class FsspecStore(Store):
    """A folder behind an fsspec URL (pyarrow's filesystems are reached through fsspec's wrapper)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.protocol = url.split("://", 1)[0].lower()
        self.shared = self.protocol not in PROCESS_LOCAL
        self._fs: Any = None
        self._root = ""
        self._connect()

    def _connect(self) -> None:
        import fsspec.core

        try:
            self._fs, self._root = fsspec.core.url_to_fs(self.url)
        except ImportError as e:
            # fsspec knows the protocol but its package is missing: pyarrow may have it built in
            self._fs, self._root = _arrow_fs(self.url, str(e))
        except ValueError as e:
            raise UsageError(f"--out {self.url}: {e} (a local folder or an fsspec/pyarrow URL)") from None
        self._root = self._root.rstrip("/")

    def __getstate__(self) -> dict:
        return {"url": self.url, "protocol": self.protocol, "shared": self.shared}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._connect()

    def _p(self, rel: str) -> str:
        return f"{self._root}/{rel}"

    def exists(self) -> bool:
        return bool(self._fs.exists(self._root))

    def is_empty(self) -> bool:
        try:
            if not self._fs.exists(self._root):
                return True
            if self._fs.isfile(self._root):
                raise UsageError(f"--out {self.url}: exists and is not a folder")
            return not self._fs.ls(self._root, detail=False)
        except OSError as e:
            raise UsageError(f"--out {self.url}: cannot read it ({e})") from None

    def is_file(self, rel: str) -> bool:
        return bool(self._fs.isfile(self._p(rel)))

    def size(self, rel: str) -> int | None:
        try:
            return int(self._fs.size(self._p(rel)))
        except FileNotFoundError:
            return None

    def sha256(self, rel: str) -> str:
        h = hashlib.sha256()
        with self._fs.open(self._p(rel), "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
        return h.hexdigest()

    def read_bytes(self, rel: str) -> bytes:
        return bytes(self._fs.cat_file(self._p(rel)))

    def files(self) -> list[str]:
        if not self._fs.exists(self._root):
            return []
        cut = len(self._root.lstrip("/")) + 1
        return sorted(p.lstrip("/")[cut:] for p in self._fs.find(self._root))

    def remove(self, rel: str) -> None:
        try:
            self._fs.rm_file(self._p(rel))
        except FileNotFoundError:
            pass

    def make_root(self) -> None:
        try:
            self._fs.makedirs(self._root, exist_ok=True)
            probe = self._p(f".write-test{TMP_MARK}{os.getpid()}")
            self._fs.pipe_file(probe, b"")
            self._fs.rm_file(probe)
        except (OSError, PermissionError) as e:
            raise UsageError(f"--out {self.url}: cannot write there ({e})") from None
        if self._fs.isfile(self._root):
            raise UsageError(f"--out {self.url}: exists and is not a folder")

    def remove_tree(self) -> None:
        try:
            self._fs.rm(self._root, recursive=True)
        except FileNotFoundError:
            pass

    def _tmp(self, rel: str) -> str:
        head, _, name = rel.rpartition("/")
        tmp = f".{name}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}"
        return self._p(f"{head}/{tmp}" if head else tmp)

    def _discard(self, tmp: str) -> None:
        try:
            self._fs.rm_file(tmp)
        except (FileNotFoundError, OSError):
            pass

    def _commit(self, tmp: str, rel: str) -> None:
        try:
            self._fs.mv(tmp, self._p(rel))
        except BaseException:
            self._discard(tmp)
            raise

    def write_bytes(self, rel: str, data: bytes) -> None:
        tmp = self._tmp(rel)
        self._fs.makedirs(tmp.rpartition("/")[0], exist_ok=True)
        try:
            self._fs.pipe_file(tmp, bytes(data))
        except BaseException:
            self._discard(tmp)
            raise
        self._commit(tmp, rel)

    def open_pending(self, rel: str) -> PendingFile:
        tmp = self._tmp(rel)
        self._fs.makedirs(tmp.rpartition("/")[0], exist_ok=True)
        return PendingFile(self._fs.open(tmp, "wb"), lambda: self._commit(tmp, rel), lambda: self._discard(tmp))


def _arrow_fs(url: str, why: str) -> tuple[Any, str]:
    """An fsspec view of pyarrow's filesystem for ``url``; UsageError naming ``why`` if it has none."""
    import pyarrow.fs as pafs
    from fsspec.implementations.arrow import ArrowFSWrapper

    try:
        fs, path = pafs.FileSystem.from_uri(url)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, ValueError):
        raise UsageError(f"--out {url}: {why}") from None
    return ArrowFSWrapper(fs), path


def open_store(out: str | Path | Store) -> Store:
    """The store for ``--out``: a path or ``file://`` URL is a local folder, any other URL goes
    through fsspec (or pyarrow).  UsageError for an unknown protocol or a missing package."""
    if isinstance(out, Store):
        return out
    s = str(out)
    if "://" not in s:
        return LocalStore(out)
    if s.lower().startswith("file://"):
        return LocalStore(s[len("file://"):])
    return FsspecStore(s)
