"""Names on disk: a config is ``<family>-<rendering>-<length>``; a shard is
``<split>-NNNNN-of-NNNNN.<parquet|arrow>`` under ``data/<config>/``.

Every name read from outside (a manifest, a card, the command line) is checked against these
patterns before it is used in a path or printed: plain ASCII letters, digits and ``_``, so that
no name can climb out of a folder (``..``), name an absolute path or carry terminal escapes.
"""

from __future__ import annotations

import re

#: a family, rendering or split name
NAME = r"[A-Za-z][A-Za-z0-9_]{0,63}"
SPLIT_NAME = re.compile(NAME)
CONFIG_NAME = re.compile(rf"(?P<family>{NAME})-(?P<rendering>{NAME})-(?P<length>[1-9][0-9]{{0,9}})")
#: shard file formats, by file suffix: Parquet (the default: the Hub's viewer, SQL console, DuckDB
#: and Polars read it fully) or Arrow IPC
SHARD_FORMATS = ("parquet", "arrow")
SHARD_RE = re.compile(
    r"^(?P<split>[A-Za-z][A-Za-z0-9_]{0,63})-(?P<i>\d{5})-of-(?P<n>\d{5})\.(?P<format>parquet|arrow)$")
#: shard file names count to 99,999
MAX_SHARDS = 99_999


def printable(name: object, limit: int = 80) -> str:
    """``name`` as it may be printed in an error line: its repr, cut to ``limit`` characters (the
    repr escapes control characters, so no terminal escape reaches the screen)."""
    text = repr(name)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def escaped(text: str) -> str:
    """``text`` with every control or non-printable character written as its escape (``\\x1b``),
    so that a name read from a file can be printed without steering the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shard_name(split: str, i: int, n: int, fmt: str = "parquet") -> str:
    return f"{split}-{i:05d}-of-{n:05d}.{fmt}"


def config_name(family: str, rendering: str, length: int) -> str:
    return f"{family}-{rendering}-{length}"
