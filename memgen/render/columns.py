"""The common columns (``id`` ... ``queries``) of a batch, built from flat numpy arrays
straight into Arrow list/struct arrays: no Python loop over episodes, events or queries."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .. import ir, jit
from ..io import schema
from . import Batch

_OPS = pa.array(ir.OPS, pa.string())
_KINDS = pa.array(ir.KINDS, pa.string())
_ASKS = pa.array(ir.ASKS, pa.string())
_PROBES = pa.array(ir.PROBES, pa.string())


def _i32(a: np.ndarray) -> pa.Array:
    return pa.array(np.ascontiguousarray(a, dtype=np.int32))


def _take_i32(a: np.ndarray, idx: np.ndarray) -> pa.Array:
    """``a[idx]`` as an int32 Arrow array (one compiled pass for large batches, see memgen.jit)."""
    if jit.pays(idx.size):
        out = np.empty(idx.size, dtype=np.int32)
        _take_i32_kernel(np.ascontiguousarray(a), idx, out)
        return pa.array(out)
    return _i32(a[idx])


@jit.kernel
def _take_i32_kernel(a, idx, out):  # pragma: no cover - compiled
    for i in range(idx.size):
        out[i] = a[idx[i]]


def _names(table: pa.Array, codes: np.ndarray) -> pa.Array:
    return table.take(pa.array(np.ascontiguousarray(codes, dtype=np.int32)))


def _list(offsets: np.ndarray, values: pa.Array, type_: pa.DataType | None = None) -> pa.Array:
    return pa.ListArray.from_arrays(pa.array(np.ascontiguousarray(offsets, dtype=np.int32)), values,
                                    type=type_)


def row_offsets(mask: np.ndarray) -> np.ndarray:
    """List offsets (B + 1) for the True entries of a (B, N) mask, row by row."""
    out = np.zeros(mask.shape[0] + 1, dtype=np.int64)
    np.cumsum(mask.sum(axis=1), out=out[1:])
    return out


def ragged_take(ragged: tuple[np.ndarray, np.ndarray], owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-lists of a ragged array (offsets over all flat items) for ``owners``: every query
    of a program, ascending.  Replay gives lists to queries only, so the values are already in
    owner order and the owners' offsets are the new offsets."""
    offsets, values = ragged
    new = np.empty(owners.size + 1, dtype=np.int64)
    new[:-1] = offsets[owners]
    new[-1] = offsets[-1]
    return new, values


def common_columns(batch: Batch, start: np.ndarray, end: np.ndarray, chunk: np.ndarray | None,
                   segment: np.ndarray | None, length: np.ndarray, rendering: str,
                   answer_text: pa.Array, trap_type: pa.DataType = schema.INT32) -> dict[str, pa.Array]:
    """Columns shared by every rendering.  ``start``/``end``/``chunk``/``segment`` are (B, N)
    per item; ``chunk``/``segment`` None mean -1 (not applicable).  Evidence is given as the
    chunks of the deciding items (empty without chunks).  ``answer_text`` is one string per
    query, in reading order.  Trap lists are ``trap_type`` (:func:`memgen.io.schema.trap_type`)."""
    p = batch.program
    B, N = p.shape
    flat = lambda a: a.reshape(-1)  # noqa: E731
    is_q = p.item == ir.ITEM_QUERY
    is_ev = (p.item != ir.ITEM_QUERY) & (p.item != ir.ITEM_PAD)
    ev = np.flatnonzero(flat(is_ev))
    qf = np.flatnonzero(flat(is_q))
    ch = None if chunk is None else flat(chunk)
    sg = None if segment is None else flat(segment)
    minus = pa.array(np.full(ev.size, -1, dtype=np.int32))  # no chunk / segment

    op = flat(p.op)[ev]
    events = pa.StructArray.from_arrays(
        [_names(_OPS, op), _take_i32(flat(p.key), ev), _take_i32(flat(p.value), ev),
         _take_i32(flat(p.version), ev), pa.array(op != ir.OP_SILENT),
         _names(_KINDS, flat(p.kind)[ev]), _take_i32(flat(p.alias), ev), _take_i32(flat(start), ev),
         _take_i32(flat(end), ev), minus if ch is None else _take_i32(ch, ev),
         minus if sg is None else _take_i32(sg, ev)],
        fields=list(schema.EVENT))

    # query position within its row, 0-based, is its qid
    q_rows = qf // N
    q_off = row_offsets(is_q)
    qid = np.arange(qf.size) - q_off[q_rows]
    answer = flat(p.answer)[qf]
    traps = []
    for name in ir.TRAP_FIELDS:
        off, vals = ragged_take(p.traps[name], qf)
        traps.append(_list(off, pa.array(np.ascontiguousarray(vals, dtype=trap_type.to_pandas_dtype()))))
    traps = pa.StructArray.from_arrays(traps, fields=list(schema.traps_struct(trap_type)))
    ev_off, ev_items = ragged_take(p.evidence, qf)
    if chunk is None:
        ev_off = np.zeros(qf.size + 1, dtype=np.int64)
        ev_vals = np.zeros(0, dtype=np.int64)
    else:
        owner = np.repeat(np.arange(qf.size), np.diff(ev_off))
        c = ch[ev_items]
        o = np.lexsort((c, owner))
        owner, c = owner[o], c[o]
        keep = np.ones(c.size, dtype=bool)
        keep[1:] = (owner[1:] != owner[:-1]) | (c[1:] != c[:-1])
        ev_vals = c[keep]
        ev_off = np.zeros(qf.size + 1, dtype=np.int64)
        np.cumsum(np.bincount(owner[keep], minlength=qf.size), out=ev_off[1:])
    queries = pa.StructArray.from_arrays(
        [_i32(qid), _take_i32(flat(p.key), qf), _names(_ASKS, flat(p.ask)[qf]), _take_i32(flat(p.k), qf),
         _i32(answer), answer_text, _names(_PROBES, flat(p.probe)[qf]), traps,
         _take_i32(flat(start), qf), _take_i32(flat(end), qf), _list(ev_off, _i32(ev_vals))],
        fields=list(schema.query_struct(trap_type)))

    return {
        "id": pa.array(batch.ids, pa.string()),
        "family": pa.array([batch.family] * B, pa.string()),
        "rendering": pa.array([rendering] * B, pa.string()),
        "seed": pa.array(batch.seeds, pa.uint64()),
        "target_length": _i32(np.full(B, batch.target_length)),
        "length": _i32(length),
        "events": _list(row_offsets(is_ev), events),
        "queries": _list(q_off, queries),
    }
