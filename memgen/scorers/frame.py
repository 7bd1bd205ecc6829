"""The queries of a dataset as flat numpy arrays, with the slices the reports break down by.

:class:`QueryFrame` is built once per dataset (or table) and shared by every set of
predictions scored against it.  Everything is derived from the stored columns alone: gold
answers and traps from ``queries``, the slicing metadata from ``events`` (DESIGN.md 3, 6).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from memgen.format.codes import ASKS, OPS, PROBES, TRAP_FIELDS
from memgen.format.errors import DataError
from memgen.scorers.outcomes import Ragged, TrapLists

TOKEN_RENDERINGS = ("token", "chunk", "bridge")
TEXT_RENDERINGS = ("text",)
REQUIRED_COLUMNS = ("id", "family", "rendering", "target_length", "length", "events", "queries")

_SETS = np.array([OPS.index("write"), OPS.index("overwrite"), OPS.index("silent_write")])
_DELETE = OPS.index("delete")
_DISTRACTOR = OPS.index("distractor")


@dataclass
class QueryFrame:
    """Every query of a table, flattened in row order then query order.

    Row arrays are ``(R,)``; query arrays are ``(Q,)``.  ``depth`` is NaN where no event
    decides the answer (an absent answer for a key that was never written)."""

    source: str
    # rows
    ids: pa.StringArray
    family: np.ndarray  # (R,) object
    rendering: np.ndarray  # (R,) object
    domain: np.ndarray  # (R,) object, None outside the text rendering
    config: np.ndarray  # (R,) object, "" when read from a bare table
    split: np.ndarray  # (R,) object
    target_length: np.ndarray  # (R,) int64
    length: np.ndarray  # (R,) int64
    q_offsets: np.ndarray  # (R + 1,) first query of each row
    # queries
    row: np.ndarray  # (Q,) int64 owner row
    qid: np.ndarray
    key: np.ndarray
    ask: np.ndarray  # index into ir.ASKS
    version: np.ndarray
    answer: np.ndarray  # gold value id, ABSENT for absent
    answer_text: list[str]
    probe: np.ndarray  # index into ir.PROBES
    start: np.ndarray
    traps: TrapLists
    depth: np.ndarray  # (Q,) float: start of the deciding event / row length
    n_updates: np.ndarray  # (Q,) values the key had before the query
    n_distractors: np.ndarray  # (Q,) distractors about the key before the query
    #: per row, the value ids its events state (writes, overwrites, distractors: every value
    #: of the episode; lenient scoring looks for them in text answers)
    event_values: Ragged | None = None
    manifest: dict = field(default_factory=dict)
    #: sha256 of the dataset folder's manifest.json (None for a frame built from a table)
    manifest_sha256: str | None = None
    #: ids of the dataset's rows left out by --config/--split (their predictions are skipped)
    other_ids: pa.Array | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def n_queries(self) -> int:
        return self.row.size

    @property
    def n_rows(self) -> int:
        return len(self.ids)

    def is_text(self) -> np.ndarray:
        """(Q,) True for queries of text-rendered rows."""
        return np.isin(self.rendering, TEXT_RENDERINGS)[self.row]


def _col(table: pa.Table, name: str) -> pa.Array:
    return table.column(name).combine_chunks()


def _ints(arr: pa.Array, fill: int = -1) -> np.ndarray:
    return pc.fill_null(arr, fill).to_numpy(zero_copy_only=False).astype(np.int64)


def _codes(arr: pa.Array, names: tuple[str, ...], what: str, source: str) -> np.ndarray:
    idx = pc.index_in(arr, value_set=pa.array(names))
    bad = pc.is_null(idx)
    if pc.any(bad).as_py():
        first = arr.filter(bad)[0].as_py()
        raise DataError(f"{source}: unknown {what} {first!r} (expected one of {', '.join(names)})")
    return idx.to_numpy(zero_copy_only=False).astype(np.int64)


def _ragged(lists: pa.Array) -> Ragged:
    counts = _ints(pc.list_value_length(lists), 0)
    values = pc.list_flatten(lists)
    if values.null_count:  # (the -1 fill needs a signed type; token datasets store uint16 traps)
        values = pc.fill_null(values.cast(pa.int64()), -1)
    return Ragged.from_counts(counts, values.to_numpy(zero_copy_only=False))


def build_frame(table: pa.Table, source: str = "<table>", config: np.ndarray | None = None,
                split: np.ndarray | None = None) -> QueryFrame:
    """Flatten ``table`` (columns of memgen.format.schema) into a :class:`QueryFrame`.

    Raises :class:`DataError` naming ``source`` when a required column is missing or a field
    holds a name outside the IR's vocabulary."""
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"{source}: not a memgen table (missing columns: {', '.join(missing)})")
    n = table.num_rows
    queries_list = _col(table, "queries")
    q = queries_list.flatten()
    row = pc.list_parent_indices(queries_list).to_numpy(zero_copy_only=False).astype(np.int64)
    q_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(_ints(pc.list_value_length(queries_list), 0), out=q_offsets[1:])

    traps_struct = q.field("traps")
    traps = TrapLists(**{f: _ragged(traps_struct.field(f)) for f in TRAP_FIELDS})
    answer = _ints(q.field("answer"))
    start = _ints(q.field("start"))
    key = _ints(q.field("key"))
    ask = _codes(q.field("ask"), ASKS, "ask", source)
    version = _ints(q.field("version"), 0)

    events_list = _col(table, "events")
    e = events_list.flatten()
    e_row = pc.list_parent_indices(events_list).to_numpy(zero_copy_only=False).astype(np.int64)
    e_op = _codes(e.field("op"), OPS, "event op", source)
    length = _ints(_col(table, "length"), 0)
    span = _span_lengths(table, length)
    depth, n_updates, n_distractors = _history_slices(
        row, key, start, ask, version, answer, span,
        e_row, _ints(e.field("key")), _ints(e.field("start")), e_op)

    e_value = _ints(e.field("value")) if "value" in {f.name for f in e.type} else np.full(len(e), -1, np.int64)
    keep = e_value >= 0
    event_values = Ragged.from_counts(np.bincount(e_row[keep], minlength=n), e_value[keep])
    domain = (np.asarray(_col(table, "domain").to_pylist(), dtype=object)
              if "domain" in table.column_names else np.full(n, None, dtype=object))
    return QueryFrame(
        source=source,
        ids=pc.cast(_col(table, "id"), pa.string()),
        family=np.asarray(_col(table, "family").to_pylist(), dtype=object),
        rendering=np.asarray(_col(table, "rendering").to_pylist(), dtype=object),
        domain=domain,
        config=config if config is not None else np.full(n, "", dtype=object),
        split=split if split is not None else np.full(n, "", dtype=object),
        target_length=_ints(_col(table, "target_length"), 0),
        length=length,
        q_offsets=q_offsets,
        row=row, qid=_ints(q.field("qid")), key=key, ask=ask, version=version, answer=answer,
        answer_text=[s if s is not None else "" for s in q.field("answer_text").to_pylist()],
        probe=_codes(q.field("probe"), PROBES, "probe", source), start=start, traps=traps,
        depth=depth, n_updates=n_updates, n_distractors=n_distractors, event_values=event_values,
    )


def _span_lengths(table: pa.Table, length: np.ndarray) -> np.ndarray:
    """Per row, the length of the space that ``start``/``end`` spans index: ``length`` (tokens)
    for token renderings, the characters of ``context`` for the text rendering."""
    if "context" not in table.column_names:
        return length
    chars = _ints(pc.utf8_length(_col(table, "context")), -1)
    text = np.isin(np.asarray(_col(table, "rendering").to_pylist(), dtype=object), TEXT_RENDERINGS)
    return np.where(text & (chars >= 0), chars, length)


def _history_slices(row, key, start, ask, version, answer, length, e_row, e_key, e_start, e_op):
    """(depth, n_updates, n_distractors) per query, from the events before its start.

    Events of the query's key with ``start`` below the query's ``start`` count as before it;
    a query without a span (``start`` -1: the text rendering's questions after the context)
    comes after every event.  ``length`` is the size of the span space per row.
    The deciding event is the set that holds the gold value: the last set (``latest``), the
    k-th set (``version`` k; versions count every set of the key, across deletes), the one
    before the last (``previous``).  For an absent answer it is the key's last set or delete
    before the query, and none (depth NaN) if the key was never touched."""
    last = int(max(start.max(initial=0), e_start.max(initial=0)))
    start = np.where(start < 0, last + 1, start)  # questions after the context
    npos = last + 3  # event starts may be -1 too: shifted by one below
    group = row * (int(max(key.max(initial=0), e_key.max(initial=0))) + 1) + key
    e_group = e_row * (int(max(key.max(initial=0), e_key.max(initial=0))) + 1) + e_key
    if max(int(group.max(initial=0)), int(e_group.max(initial=0))) * float(npos) >= 2.0**62:
        # dense (row, key) codes keep the composite below in int64 for any dataset size
        _, inv = np.unique(np.concatenate([group, e_group]), return_inverse=True)
        group, e_group = inv[:group.size], inv[group.size:]
    q_comp = group * npos + (start + 1)
    q_group = group * npos

    def before(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sorted starts of the masked events, and for each query the [lo, hi) range of its
        key's masked events that come before it."""
        comp = e_group[mask] * npos + (e_start[mask] + 1)
        order = np.argsort(comp, kind="stable")
        comp = comp[order]
        lo = np.searchsorted(comp, q_group, side="left")
        hi = np.searchsorted(comp, q_comp, side="left")
        return e_start[mask][order], lo, hi

    set_start, s_lo, s_hi = before(np.isin(e_op, _SETS))
    n_updates = s_hi - s_lo
    _, d_lo, d_hi = before(e_op == _DISTRACTOR)
    n_distractors = d_hi - d_lo
    chg_start, c_lo, c_hi = before(np.isin(e_op, np.append(_SETS, _DELETE)))

    latest, ver, prev = (ask == ASKS.index(a) for a in ASKS)
    deciding = np.full(row.size, -1, dtype=np.int64)
    deciding = np.where(latest, s_hi - 1, deciding)
    deciding = np.where(ver & (version >= 1) & (version <= n_updates), s_lo + version - 1, deciding)
    deciding = np.where(prev & (n_updates >= 2), s_hi - 2, deciding)
    ok = (deciding >= s_lo) & (answer >= 0)
    pos = np.where(ok, set_start[np.clip(deciding, 0, max(set_start.size - 1, 0))]
                   if set_start.size else -1, -1)
    absent_ok = (answer < 0) & (c_hi > c_lo)
    pos = np.where(absent_ok, chg_start[np.maximum(c_hi - 1, 0)] if chg_start.size else -1, pos)
    lens = length[row]
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where((pos >= 0) & (lens > 0), pos / np.maximum(lens, 1), np.nan)
    return depth, n_updates, n_distractors
