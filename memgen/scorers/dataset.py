"""Reading a dataset folder for scoring (DESIGN.md section 6).

``read_dataset`` is the scorer's only door to the disk.  It refuses a folder that fails
``memgen verify`` (:func:`memgen.io.dataset.verify`), then reads the columns the scorer needs
from the shards the manifest lists, with each row's config and split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from memgen.format.errors import DataError, UsageError
from memgen.format.names import SHARD_RE
from memgen.io.atomic import sha256_file
from memgen.io.dataset import MANIFEST, open_verified
from memgen.io.shards import read_shard, shard_info
from memgen.scorers.frame import REQUIRED_COLUMNS, QueryFrame, build_frame

#: read where present: the text rendering's domain (surfaces) and context (its length in
#: characters is the span space of event positions, for depth)
OPTIONAL_COLUMNS = ("domain", "context")


def _read_columns(path: Path) -> pa.Table:
    """The columns the scorer needs from one shard (Parquet or Arrow); the others
    (``input_ids``, ``prompt``) are neither read nor decompressed."""
    names = shard_info(path)[0].names
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise DataError(f"{path}: missing columns {', '.join(missing)}")
    table = read_shard(path, columns=[c for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if c in names])
    if "domain" not in table.column_names:
        table = table.append_column("domain", pa.nulls(table.num_rows, pa.string()))
    return table


def read_dataset(path: str | Path, config: str | None = None, split: str | None = None,
                 check: bool = True) -> QueryFrame:
    """The queries of the dataset folder ``path`` (every config and split, or the ``config``
    and ``split`` named) as a :class:`QueryFrame` whose ``manifest`` is the folder's.

    With ``check`` (the default) the folder must pass ``memgen verify`` first: a missing or
    malformed manifest, a missing, resized or corrupted shard, or an unlisted file raises
    :class:`DataError` naming the first problem.  A ``config``/``split`` the folder does not
    have raises :class:`UsageError`; an id in two rows raises :class:`DataError`."""
    root = Path(path)
    ds = open_verified(root, check)
    if config is not None and config not in ds.configs:
        raise UsageError(f"--config {config}: not in {root} (configs: {', '.join(ds.configs)})")
    tables, cfgs, splits, other_ids = [], [], [], []
    for name in ds.configs:
        for shard in ds.config(name)["shards"]:
            p = root / shard["path"]
            m = SHARD_RE.match(p.name)
            shard_split = m.group("split") if m else ""
            if (config is not None and name != config) or (split is not None and shard_split != split):
                other_ids.append(read_shard(p, columns=["id"]).column("id"))
                continue
            t = _read_columns(p)
            tables.append(t)
            cfgs.append(np.full(t.num_rows, name, dtype=object))
            splits.append(np.full(t.num_rows, shard_split, dtype=object))
    if not tables:
        if split is not None:
            raise UsageError(f"--split {split}: no shards of that split in {root}")
        raise DataError(f"{root}: the manifest lists no shards")
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise DataError(f"{root}: shards have incompatible schemas ({e})") from None
    frame = build_frame(table, source=str(root), config=np.concatenate(cfgs), split=np.concatenate(splits))
    frame.manifest = ds.manifest
    frame.manifest_sha256 = sha256_file(root / MANIFEST)
    if other_ids:
        frame.other_ids = pa.chunked_array(other_ids, pa.string()).combine_chunks()
    _check_unique_ids(frame)
    return frame


def _check_unique_ids(frame: QueryFrame) -> None:
    counts = pc.value_counts(frame.ids)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1))
    if len(repeated):
        dup = repeated.field("values")[0].as_py()
        rows = np.flatnonzero(np.asarray(pc.equal(frame.ids, dup)))
        where = sorted({f"{frame.config[i]}/{frame.split[i]}" for i in rows})
        raise DataError(f"{frame.source}: id {dup!r} occurs in more than one row ({', '.join(where)}); "
                        "score one config with --config")
