"""Files that appear whole or not at all: every output is written under a temporary name in its
own folder (``TMP_MARK``) and renamed into place when complete; sha256 of files as they are read."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from memgen.format.errors import UsageError

TMP_MARK = ".tmp-"


def output_file(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as an output file: absent, or a regular file (resumed or replaced whole by its
    writer); a folder, a device, a FIFO or a socket is refused with one line, never opened,
    truncated or renamed over.  Links are followed to what they name."""
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return path
    except OSError as e:
        raise UsageError(f"{flag} {path}: cannot use it ({e.strerror or e})") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"{flag} {path}: is a folder; give a file name")
    if not stat.S_ISREG(mode):
        raise UsageError(f"{flag} {path}: is not a regular file (a device, FIFO or socket); give a file name")
    return path


def write_folder(out: str | Path, write: Callable[[Path], None], own: Callable[[str], bool],
                 flag: str = "--out") -> Path:
    """Make the folder ``out`` whole or not at all: ``write(tmp)`` fills a fresh temporary
    sibling, which then takes ``out``'s place (an earlier folder is moved aside and removed
    only after).  A kill, a full disk or an error leaves the earlier folder as it was and no
    mix of old and new files.  ``out`` may hold only names that ``own`` accepts (what this
    writer makes): a folder with anything else in it is refused, never replaced."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"{flag} {out}: exists and is not a folder")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if not own(p.name))
        if foreign:
            raise UsageError(f"{flag} {out}: holds files this command did not write ({', '.join(foreign[:3])}); "
                             "choose an empty or new folder")
    tmp = out.with_name(f".{out.name}{TMP_MARK}{os.getpid()}")
    old = out.with_name(f".{out.name}{TMP_MARK}old-{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        write(tmp)
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not out.exists():
            os.replace(old, out)
        raise UsageError(f"{flag} {out}: cannot write there ({e.strerror or e}); nothing was changed") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return out


def sha256_file(path: Path, block: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


class PendingFile:
    """A file being written under a temporary name: ``commit()`` renames it into place and
    ``abort()`` removes it, so a reader never sees a half file.  As a context manager it
    commits on a clean exit and aborts on an error.  A failed write or rename (a full disk, a
    file too large) removes the temporary file and raises OSError naming ``target``, the file
    that was being written, not its temporary name."""

    def __init__(self, raw: BinaryIO, commit: Callable[[], None], discard: Callable[[], None],
                 target: str | None = None):
        self._raw, self._commit, self._discard = raw, commit, discard
        self.target = target
        self.done = False  # committed or aborted

    def write(self, data) -> int:
        try:
            return self._raw.write(data)
        except OSError as e:
            self.abort()
            raise self._named(e) from None

    def commit(self) -> None:
        try:
            self._raw.close()
            self._commit()
        except OSError as e:
            self.abort()
            raise self._named(e) from None
        except BaseException:
            self.abort()
            raise
        self.done = True

    def _named(self, e: OSError) -> OSError:
        return OSError(e.errno, e.strerror or str(e), self.target) if self.target and e.errno else e

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
    """A :class:`PendingFile` for ``path``: a temporary name in the same folder, renamed on commit.
    ``path`` must be absent or a regular file (a folder, device, FIFO or socket is refused with
    UsageError: never renamed over); OSError (naming ``path``) if the folder cannot be written."""
    path = Path(path)
    output_file(path, "output")
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        raw = open(tmp, "wb")
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None
    return PendingFile(raw, lambda: os.replace(tmp, path), lambda: tmp.unlink(missing_ok=True), str(path))


def atomic_write_bytes(path: Path, data: bytes | memoryview | pa.Buffer) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    with pending_file(path) as f:
        f.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())
