"""Query-time lookups shared by the models, vectorised over every query of a batch.

* :func:`mentions_before`: for each query, the chosen mentions of its key in its own row
  *before* the query (a model answers at the query's position, so it never reads ahead);
* :func:`top_chunks`: rank the chunks those mentions sit in by key match (mentions per
  chunk) and keep the top ``k`` per query: the sparse selector of the ``sparse`` baseline and
  of the hybrid's fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memgen.models.stream import Stream, TokenBatch


def ranges(counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(c)`` for each c in ``counts``."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)


@dataclass(frozen=True)
class Pairs:
    """(query, mention) pairs, sorted by query then reading order (P pairs)."""

    q: np.ndarray  # (P,) int64 query index
    m: np.ndarray  # (P,) int64 mention index into the Stream

    def __len__(self) -> int:
        return self.q.size


def mentions_before(batch: TokenBatch, eligible: np.ndarray) -> Pairs:
    """For each query, the ``eligible`` mentions ((M,) bool) of its key in its row that start
    before the query's QUERY marker, in reading order."""
    s: Stream = batch.stream
    qs = batch.queries
    key_space = batch.vocab.key_space
    idx = np.flatnonzero(eligible)
    group = s.row[idx] * key_space + s.key[idx]  # one group per (row, key)
    order = np.lexsort((s.pos[idx], group))
    idx, group = idx[order], group[order]
    # rank groups so that (group rank, position) fits one int64 and sorts like the pair
    new = np.ones(group.size, dtype=bool)
    new[1:] = group[1:] != group[:-1]
    rank = np.cumsum(new) - 1
    span = int(batch.ids.size) + 1
    composite = rank * span + s.pos[idx]

    q_group = batch.query_row * key_space + qs.key
    lo = np.searchsorted(group, q_group, side="left")
    found = lo < group.size
    found[found] = group[lo[found]] == q_group[found]
    q_rank = np.where(found, rank[np.minimum(lo, max(group.size - 1, 0))] if group.size else 0, 0)
    hi = np.searchsorted(composite, q_rank * span + batch.query_start, side="left")
    counts = np.where(found, hi - lo, 0)
    q = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    m = idx[np.repeat(lo, counts) + ranges(counts)]
    return Pairs(q=q, m=m)


@dataclass(frozen=True)
class ChunkChoice:
    """Which chunks a query's top-k selection kept."""

    rank: np.ndarray  # (P,) rank of each pair's chunk within its query (0 = best), -1 if not kept
    active: np.ndarray  # (Q,) int32 chunks kept per query (at most k)


def top_chunks(batch: TokenBatch, pairs: Pairs, k: int, recent_first: bool) -> ChunkChoice:
    """Rank, per query, the chunks holding its ``pairs`` by the number of mentions in each
    (key match) and keep the best ``k``.  Ties go to the later chunk if ``recent_first``, else
    to the earlier one (a stable sort: position carries no weight)."""
    n_q = batch.n_queries
    if len(pairs) == 0:
        return ChunkChoice(np.zeros(0, dtype=np.int64), np.zeros(n_q, dtype=np.int32))
    chunk = batch.stream.chunk[pairs.m]
    # pairs are in reading order within a query, so each (query, chunk) is one run
    new = np.ones(len(pairs), dtype=bool)
    new[1:] = (pairs.q[1:] != pairs.q[:-1]) | (chunk[1:] != chunk[:-1])
    run = np.cumsum(new) - 1  # (P,) run id
    run_q, run_chunk = pairs.q[new], chunk[new]
    score = np.bincount(run)
    tie = -run_chunk if recent_first else run_chunk
    order = np.lexsort((tie, -score, run_q))
    first_of_q = np.searchsorted(run_q[order], run_q[order], side="left")
    rank_sorted = np.arange(order.size) - first_of_q
    run_rank = np.empty(order.size, dtype=np.int64)
    run_rank[order] = rank_sorted
    kept = run_rank < k
    active = np.bincount(run_q[kept], minlength=n_q).astype(np.int32)
    return ChunkChoice(np.where(kept, run_rank, -1)[run], active)
