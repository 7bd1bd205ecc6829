"""Reading a dataset folder for scoring (DESIGN.md section 6).

``read_dataset`` is the scorer's only door to the disk; it reads the columns the scorer needs
from every ``data/<config>/<split>-NNNNN-of-NNNNN.<arrow|parquet>`` shard named by the folder
and refuses a folder that does not verify (missing manifest, unreadable shard, checksum that
does not match the manifest).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from ..errors import DataError, UsageError
from .frame import REQUIRED_COLUMNS, QueryFrame, build_frame

SHARD = re.compile(r"^(?P<split>[A-Za-z0-9_.\-]+?)-(?P<i>\d{5})-of-(?P<n>\d{5})\.(?P<ext>arrow|parquet)$")
OPTIONAL_COLUMNS = ("domain",)


@dataclass(frozen=True)
class Shard:
    path: Path
    config: str
    split: str


def list_shards(root: Path) -> list[Shard]:
    """Every shard under ``root/data``, sorted by (config, split, index)."""
    data = root / "data"
    if not data.is_dir():
        raise DataError(f"{root}: no data/ folder; not a memgen dataset folder")
    shards = []
    for cfg in sorted(p for p in data.iterdir() if p.is_dir()):
        for f in sorted(cfg.iterdir()):
            m = SHARD.match(f.name)
            if m:
                shards.append(Shard(f, cfg.name, m.group("split")))
    if not shards:
        raise DataError(f"{data}: no shards (expected data/<config>/<split>-NNNNN-of-NNNNN.arrow)")
    return shards


def read_manifest(root: Path) -> dict:
    path = root / "manifest.json"
    if not path.is_file():
        raise DataError(f"{root}: no manifest.json; not a memgen dataset folder")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot be read ({e})") from None
    if not isinstance(manifest, dict):
        raise DataError(f"{path}: expected a JSON object")
    return manifest


def _recorded_checksums(manifest: dict) -> dict[str, str]:
    """Shard path (relative to the folder) -> sha256, wherever the manifest lists them: as
    objects with ``path`` (or ``file``) and ``sha256``, or as a mapping from a ``data/...``
    path to a digest or to an object with ``sha256``."""
    found: dict[str, str] = {}

    def walk(node) -> None:
        if isinstance(node, dict):
            p = node.get("path", node.get("file"))
            if isinstance(p, str) and isinstance(node.get("sha256"), str):
                found[p] = node["sha256"]
            for k, v in node.items():
                if isinstance(k, str) and k.startswith("data/"):
                    if isinstance(v, str):
                        found[k] = v
                    elif isinstance(v, dict) and isinstance(v.get("sha256"), str):
                        found[k] = v["sha256"]
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(manifest)
    return found


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _read_shard(shard: Shard) -> pa.Table:
    try:
        if shard.path.suffix == ".parquet":
            table = pq.read_table(shard.path)
        else:
            with pa.memory_map(str(shard.path), "r") as source:
                table = ipc.open_file(source).read_all()
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as e:
        raise DataError(f"{shard.path}: not a readable Arrow shard ({e})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"{shard.path}: missing columns {', '.join(missing)}")
    keep = list(REQUIRED_COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in table.column_names]
    table = table.select(keep)
    if "domain" not in table.column_names:
        table = table.append_column("domain", pa.nulls(table.num_rows, pa.string()))
    return table


def read_dataset(path: str | Path, config: str | None = None, split: str | None = None,
                 check_sums: bool = True) -> QueryFrame:
    """The queries of the dataset folder ``path`` (all configs and splits, or the one
    ``config``/``split`` named) as a :class:`QueryFrame`.

    Raises :class:`DataError` for a folder that is not a memgen dataset, an unreadable shard, a
    shard whose sha256 differs from the manifest, or an id that occurs twice among the rows
    read; :class:`UsageError` for a ``config``/``split`` the folder does not have."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: no such dataset folder")
    manifest = read_manifest(root)
    shards = list_shards(root)
    if config is not None:
        configs = sorted({s.config for s in shards})
        if config not in configs:
            raise UsageError(f"--config {config}: not in {root} (configs: {', '.join(configs)})")
        shards = [s for s in shards if s.config == config]
    if split is not None:
        splits = sorted({s.split for s in shards})
        if split not in splits:
            raise UsageError(f"--split {split}: not in {root} (splits: {', '.join(splits)})")
        shards = [s for s in shards if s.split == split]
    if check_sums:
        sums = _recorded_checksums(manifest)
        for s in shards:
            rel = s.path.relative_to(root).as_posix()
            want = sums.get(rel)
            if want is not None and _sha256(s.path) != want.lower():
                raise DataError(f"{s.path}: sha256 differs from manifest.json (corrupted shard)")
    tables = [_read_shard(s) for s in shards]
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise DataError(f"{root}: shards have incompatible schemas ({e})") from None
    cfg = np.concatenate([np.full(t.num_rows, s.config, dtype=object) for s, t in zip(shards, tables)])
    spl = np.concatenate([np.full(t.num_rows, s.split, dtype=object) for s, t in zip(shards, tables)])
    frame = build_frame(table, source=str(root), config=cfg, split=spl)
    _check_unique_ids(frame)
    return frame


def _check_unique_ids(frame: QueryFrame) -> None:
    ids = frame.ids.to_numpy(zero_copy_only=False).astype(object)
    uniq, first, counts = np.unique(ids, return_index=True, return_counts=True)
    if uniq.size != ids.size:
        dup = uniq[counts > 1][0]
        where = sorted({f"{frame.config[i]}/{frame.split[i]}" for i in np.flatnonzero(ids == dup)})
        raise DataError(f"{frame.source}: id {dup!r} occurs in more than one row ({', '.join(where)}); "
                        "score one config with --config")
