"""The common columns (``id`` ... ``queries``, and the text rendering's ``answers``) of a batch,
built from flat numpy arrays straight into Arrow list/struct arrays: no Python loop over
episodes, events or queries; and the stored form of a text row's prompt.

A text prompt is ``head + context + tail`` (instructions, the log, the questions): a shard stores
``prompt_head`` and ``prompt_tail`` beside ``context`` (:func:`stored_prompt`), not the context a
second time, and every reader rebuilds ``prompt`` (:func:`with_prompt`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from memgen.format import schema
from memgen.format.codes import ASKS, ITEM_PAD, ITEM_QUERY, KINDS, OP_SILENT_WRITE, OPS, PROBES, TRAP_FIELDS
from memgen.render.registry import Batch

#: the stored columns a text row's ``prompt`` is rebuilt from, in order
STORED_PROMPT = ("prompt_head", "context", "prompt_tail")


class Names:
    """A small table of strings that spells codes (indices into it) as an Arrow string array."""

    def __init__(self, names: list[str] | tuple[str, ...]):
        self.table = pa.array(list(names), pa.string())

    def spell(self, codes: np.ndarray) -> pa.Array:
        return self.table.take(pa.array(np.ascontiguousarray(codes, dtype=np.int32)))


_OPS, _KINDS, _ASKS, _PROBES = Names(OPS), Names(KINDS), Names(ASKS), Names(PROBES)


def _i32(a: np.ndarray) -> pa.Array:
    return pa.array(np.ascontiguousarray(a, dtype=np.int32))


def _gather(idx: np.ndarray, fields: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    """Each (B, N) field at the flat indices ``idx``: int8 codes as they are, the rest int32."""
    return [a.reshape(-1)[idx].astype(a.dtype if a.dtype == np.int8 else np.int32, copy=False) for a in fields]


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
                   answer_text: pa.Array | Callable[[np.ndarray], pa.Array],
                   trap_type: pa.DataType = schema.INT32) -> dict[str, pa.Array]:
    """Columns shared by every rendering.  ``start``/``end``/``chunk``/``segment`` are (B, N)
    per item; ``chunk``/``segment`` None mean -1 (not applicable).  Evidence is given as the
    chunks of the deciding items (empty without chunks).  ``answer_text`` is one string per
    query, in reading order, or a function that makes them from the queries' answers (value
    ids, ABSENT for none).  Trap lists are ``trap_type`` (:func:`memgen.format.schema.trap_type`)."""
    p = batch.program
    B, N = p.shape
    flat = lambda a: a.reshape(-1)  # noqa: E731
    is_q = p.item == ITEM_QUERY
    is_ev = (p.item != ITEM_QUERY) & (p.item != ITEM_PAD)
    ev = np.flatnonzero(flat(is_ev))
    qf = np.flatnonzero(flat(is_q))
    ch = None if chunk is None else flat(chunk)
    sg = None if segment is None else flat(segment)
    minus = pa.array(np.full(ev.size, -1, dtype=np.int32))  # no chunk / segment

    e_op, e_key, e_value, e_version, e_kind, e_alias, e_start, e_end = _gather(
        ev, (p.op, p.key, p.value, p.version, p.kind, p.alias, start, end))
    q_key, q_ask, q_k, answer, q_probe, q_start, q_end = _gather(qf, (p.key, p.ask, p.k, p.answer, p.probe, start, end))
    events = pa.StructArray.from_arrays(
        [_OPS.spell(e_op), pa.array(e_key), pa.array(e_value), pa.array(e_version), pa.array(e_op != OP_SILENT_WRITE),
         _KINDS.spell(e_kind), pa.array(e_alias), pa.array(e_start), pa.array(e_end),
         minus if ch is None else _i32(ch[ev]), minus if sg is None else _i32(sg[ev])],
        fields=list(schema.EVENT))

    # query position within its row, 0-based, is its qid
    q_rows = qf // N
    q_off = row_offsets(is_q)
    qid = np.arange(qf.size) - q_off[q_rows]
    traps = []
    for name in TRAP_FIELDS:
        off, vals = ragged_take(p.traps[name], qf)
        traps.append(_list(off, pa.array(np.ascontiguousarray(vals, dtype=trap_type.to_pandas_dtype()))))
    traps = pa.StructArray.from_arrays(traps, fields=list(schema.traps_struct(trap_type)))
    ev_off, ev_items = ragged_take(p.evidence_items, qf)
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
    if callable(answer_text):
        answer_text = answer_text(answer)
    queries = pa.StructArray.from_arrays(
        [_i32(qid), pa.array(q_key), _ASKS.spell(q_ask), pa.array(q_k), pa.array(answer), answer_text,
         _PROBES.spell(q_probe), traps, pa.array(q_start), pa.array(q_end), _list(ev_off, _i32(ev_vals))],
        fields=list(schema.query_struct(trap_type)))

    cols = {
        "id": pa.array(batch.ids, pa.string()),
        "family": pa.array([batch.family] * B, pa.string()),
        "rendering": pa.array([rendering] * B, pa.string()),
        "seed": pa.array(batch.seeds, pa.uint64()),
        "target_length": _i32(np.full(B, batch.target_length)),
        "length": _i32(length),
        "events": _list(row_offsets(is_ev), events),
        "queries": _list(q_off, queries),
    }
    if rendering == "text":  # the gold answers of questions 1, 2, ... at the top level, for the Hub's viewer
        cols["answers"] = _list(q_off, answer_text)
    return cols


def stored_prompt(table: pa.Table) -> pa.Table:
    """``table`` as a shard stores it: its ``prompt`` column (if any) replaced, in place, by
    ``prompt_head`` and ``prompt_tail``, the text before and after the row's ``context``.  Exact
    by construction: ``head + context + tail`` is the prompt again, whatever it holds."""
    if "prompt" not in table.column_names:
        return table
    heads, tails = [], []
    for prompt, context in zip(table.column("prompt").to_pylist(), table.column("context").to_pylist(), strict=True):
        cut = prompt.find(context)
        if cut < 0:
            raise ValueError("a text row's prompt does not hold its context")
        heads.append(prompt[:cut])
        tails.append(prompt[cut + len(context):])
    i = table.column_names.index("prompt")
    table = table.remove_column(i)
    table = table.add_column(i, "prompt_tail", pa.array(tails, pa.string()))
    return table.add_column(i, "prompt_head", pa.array(heads, pa.string()))


def with_prompt(table: pa.Table) -> pa.Table:
    """``table`` with its ``prompt`` column rebuilt (``prompt_head + context + prompt_tail``) in
    place of the two parts; tables without them are returned as they are."""
    if not all(c in table.column_names for c in STORED_PROMPT):
        return table
    import pyarrow.compute as pc

    prompt = pc.binary_join_element_wise(*(table.column(c) for c in STORED_PROMPT), "")
    i = table.column_names.index("prompt_head")
    table = table.remove_column(table.column_names.index("prompt_tail")).remove_column(i)
    return table.add_column(i, "prompt", prompt)
