"""Where the exports write: names checked before use, a staging folder beside the destination
that is renamed into place when whole, a marker file that says a folder is memgen's own, and
JSONL written through a temporary file."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from memgen.format.errors import UsageError
from memgen.io.atomic import TMP_MARK

#: written into every exported folder, so a re-export may replace it
MARKER = "memgen_export.json"


def _check_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise UsageError(f"--name {name!r}: use letters, digits and '_', starting with a letter")
    return name


def _staging(out: Path) -> Path:
    """A fresh temporary folder beside ``out``, for an export renamed into place at the end."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise UsageError(f"--out {out}: a non-empty folder that memgen export did not write; choose another")
    tmp = out.with_name(f".{out.name}{TMP_MARK}{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    return tmp


def _swap_in(tmp: Path, out: Path) -> None:
    """Put the finished folder ``tmp`` at ``out`` (replacing an earlier export there)."""
    old = out.with_name(f".{out.name}{TMP_MARK}old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def _write_jsonl(path: Path, rows: Iterator[dict]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n
