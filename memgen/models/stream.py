"""What a mechanism model reads: rendered tokens, the chunk grid, and where the queries are.

:class:`TokenBatch` holds a batch of rendered episodes (token or chunk rendering) as one flat
id array, the way the shard stores it, plus each query's span.  It never holds the IR's
answers, events or traps; the one exception, ``gold``, is filled only for a model that
declares ``reads_gold`` (the oracle).

:func:`parse` reads the token stream the way the vocabulary documents it
(:mod:`memgen.format.vocab`), vectorised over every token of the batch:

* every event marker (write, delete, one per distractor kind, query) starts a fixed layout:
  ``MARKER key value``, ``DELETE key`` or ``QUERY ASK key ANSWER_SLOT``;
* a run of key tokens that no marker accounts for, followed by a value token, is a silent
  write ``key value``;
* everything else (BOS, filler) is skipped.

The result, :class:`Stream`, lists every *mention* of a key in reading order: its position,
row, chunk, key id, the value stated after it (or -1) and the marker that introduced it (or
``NO_MARKER``).  What a mention *means* is each model's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from memgen.format.codes import ASK_LATEST, ASK_PREVIOUS, ASK_VERSION
from memgen.format.errors import DataError
from memgen.format.vocab import (
    ANSWER_SLOT,
    ASK_LATEST_TOKEN,
    ASK_PREVIOUS_TOKEN,
    DELETE,
    DISTRACTOR_MARKER,
    QUERY,
    VERSION_OFFSET,
    WRITE,
    Vocab,
)

#: ``Stream.marker`` of a silent write (a key and value with no marker before them)
NO_MARKER = -1


#: markers that start an event or a query
EVENT_MARKERS = (WRITE, DELETE, QUERY, *DISTRACTOR_MARKER.values())
#: the chunk the sparse retrievers use where the rendering has none (token rendering)
DEFAULT_CHUNK = 128


@dataclass(eq=False)
class TokenBatch:
    """R rendered episodes with Q queries in all, flat.

    Positions are global: row ``r`` is ``ids[row_start[r]:row_start[r + 1]]``; a query's
    ``query_start`` is the position of its QUERY marker and its answer slot is at
    ``query_end - 1``.  Queries are in row order, then reading order (the order of each row's
    ``queries`` list)."""

    ids: np.ndarray  # (T,) int32, every row's input_ids concatenated
    row_start: np.ndarray  # (R + 1,) int64
    chunk_size: np.ndarray  # (R,) int64 tokens per chunk
    query_row: np.ndarray  # (Q,) int64
    query_start: np.ndarray  # (Q,) int64, global
    query_end: np.ndarray  # (Q,) int64, global
    vocab: Vocab
    #: gold value ids, ABSENT for absent: filled only for models that declare ``reads_gold``
    gold: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_rows(self) -> int:
        return self.row_start.size - 1

    @property
    def n_queries(self) -> int:
        return self.query_row.size

    @classmethod
    def from_table(cls, table: pa.Table, vocab: Vocab, with_gold: bool = False) -> TokenBatch:
        """The batch of a table in the memgen schema (token or chunk rendering).

        ``chunk_size`` comes from the table's column, or :data:`DEFAULT_CHUNK` without one.
        Raises :class:`DataError` if the table has no ``input_ids`` or a query span does not
        hold ``QUERY ... ANSWER_SLOT``."""
        if "input_ids" not in table.column_names:
            raise DataError("the table has no input_ids column: mechanism models read the token "
                            "or chunk rendering")
        ids_col = table.column("input_ids").combine_chunks()
        offsets = ids_col.offsets.to_numpy().astype(np.int64)
        ids = ids_col.flatten().to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        row_start = offsets - offsets[0]
        if "chunk_size" in table.column_names:
            chunk = pc.fill_null(table.column("chunk_size"), DEFAULT_CHUNK).to_numpy().astype(np.int64)
        else:
            chunk = np.full(table.num_rows, DEFAULT_CHUNK, dtype=np.int64)
        q_list = table.column("queries").combine_chunks()
        q = q_list.flatten()
        q_row = pc.list_parent_indices(q_list).to_numpy().astype(np.int64)
        start = q.field("start").to_numpy(zero_copy_only=False).astype(np.int64) + row_start[q_row]
        end = q.field("end").to_numpy(zero_copy_only=False).astype(np.int64) + row_start[q_row]
        gold = q.field("answer").to_numpy(zero_copy_only=False).astype(np.int64) if with_gold else None
        batch = cls(ids, row_start, np.maximum(chunk, 1), q_row, start, end, vocab, gold)
        batch.check_queries()
        return batch

    def check_queries(self) -> None:
        """Raise :class:`DataError` unless every query span is ``QUERY ASK key ANSWER_SLOT`` inside
        its row."""
        s, e = self.query_start, self.query_end
        lo, hi = self.row_start[self.query_row], self.row_start[self.query_row + 1]
        inside = (s >= lo) & (e <= hi) & (e - s == self.vocab.key_length + 3)
        ok = inside.copy()
        ok[inside] = (self.ids[s[inside]] == QUERY) & (self.ids[e[inside] - 1] == ANSWER_SLOT)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise DataError(f"query {i} (row {int(self.query_row[i])}): its span "
                            f"{int(s[i] - lo[i])}..{int(e[i] - lo[i])} does not hold QUERY ASK key ANSWER_SLOT")

    @cached_property
    def stream(self) -> Stream:
        """The parsed stream (computed once, shared by every model that reads this batch)."""
        return parse(self)

    @cached_property
    def queries(self) -> Queries:
        """Each query's key and ask, as read from its tokens."""
        return parse_queries(self)


@dataclass(frozen=True)
class Stream:
    """Every key mention of a batch, in reading order (M mentions).

    ``pos`` is the global position of the mention's first token (its marker, or its key for a
    silent write); ``chunk`` is a global chunk index (rows' chunks numbered one after the
    other, so it orders and separates chunks of different rows); ``value`` is the value id
    stated after the key (-1 for deletes and queries); ``marker`` is the marker token id, or
    :data:`NO_MARKER`."""

    pos: np.ndarray  # (M,) int64
    row: np.ndarray  # (M,) int64
    chunk: np.ndarray  # (M,) int64
    key: np.ndarray  # (M,) int64
    value: np.ndarray  # (M,) int64
    marker: np.ndarray  # (M,) int64

    def __len__(self) -> int:
        return self.pos.size


@dataclass(frozen=True)
class Queries:
    """Per query (Q,): its key id, ask code (ASK_*) and k for version asks (0 otherwise)."""

    key: np.ndarray
    ask: np.ndarray
    k: np.ndarray


def _key_ids(ids: np.ndarray, at: np.ndarray, vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """(key ids, all-digits-are-key-tokens) of the keys whose first token is at ``at``."""
    key = np.zeros(at.size, dtype=np.int64)
    ok = np.ones(at.size, dtype=bool)
    for j in range(vocab.key_length):
        digit = ids[at + j].astype(np.int64) - vocab.key_offset
        ok &= (digit >= 0) & (digit < vocab.key_tokens)
        key = key * vocab.key_tokens + digit
    return key, ok


def parse(batch: TokenBatch) -> Stream:
    """Every key mention of ``batch`` (see the module docstring), vectorised over tokens.

    Raises :class:`DataError` when the stream breaks the layout: a marker not followed by a
    key (and value), or key tokens that form no ``key value``."""
    ids, vocab = batch.ids, batch.vocab
    T, L = ids.size, vocab.key_length
    if T and (int(ids.min()) < 0 or int(ids.max()) >= vocab.vocab_size):
        raise DataError(f"input_ids hold ids outside the vocabulary [0, {vocab.vocab_size})")
    is_marker = np.zeros(vocab.vocab_size, dtype=bool)
    is_marker[list(EVENT_MARKERS)] = True
    row_of = lambda p: np.searchsorted(batch.row_start, p, side="right") - 1
    row_end = lambda p: batch.row_start[row_of(p) + 1]

    # ---- marker-led events: MARKER key value | DELETE key | QUERY ASK key ANSWER_SLOT
    m = np.flatnonzero(is_marker[ids])
    marker = ids[m].astype(np.int64)
    key_at = m + 1 + (marker == QUERY)
    valued = (marker != DELETE) & (marker != QUERY)
    end = key_at + L + (marker != DELETE)  # exclusive; a query's end includes its ANSWER_SLOT
    fits = end <= row_end(m)
    key_at_safe = np.where(fits, key_at, 0)
    key, key_ok = _key_ids(ids, np.minimum(key_at_safe, max(T - L, 0)), vocab)
    value = np.full(m.size, -1, dtype=np.int64)
    v_at = np.minimum(key_at_safe + L, T - 1)
    value[valued] = ids[v_at[valued]].astype(np.int64) - vocab.value_offset
    value_ok = ~valued | ((value >= 0) & (value < vocab.values))
    bad = ~(fits & key_ok & value_ok)
    if bad.any():
        at = int(m[bad][0])
        r = int(row_of(at))
        raise DataError(f"input_ids row {r}: the marker {int(ids[at])} at position "
                        f"{at - int(batch.row_start[r])} is not followed by the documented layout")

    # ---- silent writes: key tokens no marker accounts for, in runs of key_length + a value
    cover = np.zeros(T + 1, dtype=np.int32)
    cover[m] += 1  # marker positions are distinct, and so are ends: no repeated index
    cover[end] -= 1
    covered = np.cumsum(cover[:T], dtype=np.int32) > 0
    is_key = (ids >= vocab.key_offset) & (ids < vocab.value_offset)
    loose = np.flatnonzero(is_key & ~covered)
    starts = loose[::L]
    runs_ok = loose.size % L == 0
    if runs_ok and loose.size:
        runs_ok = bool((loose.reshape(-1, L) == starts[:, None] + np.arange(L)).all())
        v_pos = np.minimum(starts + L, T - 1)
        s_value = ids[v_pos].astype(np.int64) - vocab.value_offset
        runs_ok = runs_ok and bool(((starts + L < row_end(starts)) & (s_value >= 0)
                                    & (s_value < vocab.values)).all())
    if not runs_ok:
        raise DataError("input_ids: key tokens outside any event that do not form 'key value'")
    s_key = _key_ids(ids, starts, vocab)[0] if loose.size else np.zeros(0, dtype=np.int64)
    s_value = s_value if loose.size else np.zeros(0, dtype=np.int64)

    # ---- all mentions in reading order
    pos = np.concatenate([m, starts])
    order = np.argsort(pos, kind="stable")
    pos = pos[order]
    row = row_of(pos)
    chunks_per_row = -(-np.diff(batch.row_start) // batch.chunk_size)
    chunk_base = np.concatenate([[0], np.cumsum(chunks_per_row)])
    chunk = chunk_base[row] + (pos - batch.row_start[row]) // batch.chunk_size[row]
    return Stream(
        pos=pos, row=row, chunk=chunk,
        key=np.concatenate([key, s_key])[order],
        value=np.concatenate([value, s_value])[order],
        marker=np.concatenate([marker, np.full(starts.size, NO_MARKER, dtype=np.int64)])[order],
    )


def parse_queries(batch: TokenBatch) -> Queries:
    """Key, ask and k of every query, read from its ``QUERY ASK key ANSWER_SLOT`` tokens."""
    ids, vocab = batch.ids, batch.vocab
    ask_tok = ids[batch.query_start + 1].astype(np.int64)
    key, ok = _key_ids(ids, batch.query_start + 2, vocab)
    k = ask_tok - VERSION_OFFSET + 1
    is_version = (k >= 1) & (k <= vocab.max_version)
    ask = np.select([ask_tok == ASK_LATEST_TOKEN, ask_tok == ASK_PREVIOUS_TOKEN, is_version],
                    [ASK_LATEST, ASK_PREVIOUS, ASK_VERSION], -1)
    if not ok.all() or (ask < 0).any():
        i = int(np.flatnonzero(~ok | (ask < 0))[0])
        raise DataError(f"query {i}: its tokens are not QUERY ASK key ANSWER_SLOT")
    return Queries(key=key, ask=ask, k=np.where(is_version, k, 0))
