"""Where items (events and queries) sit in a token stream, vectorised across episodes.

The stream is a grid of chunks of ``chunk`` tokens.  Each chunk holds at most
``cap = (chunk - 1) // max_item`` items, so whatever their lengths they fit beside the one
reserved token a chunk may carry (a BOS), and no item ever straddles a chunk boundary.

1. Desired positions: events (and interleaved queries) get positions in ``[d0, d1]`` of the
   event region, spaced by uniform gaps (exponential) or power-law gaps (Pareto(alpha):
   bursts of events with long empty stretches).  Queries after the last event are packed at
   the very end of the stream.
2. Chunks: the grid has ``cap`` item places a chunk; each item asks for the first place of its
   desired chunk; the greedy push-forward ``s_j = max(a_j, s_{j-1} + 1)`` is a cumulative max
   (``s = j + cummax(a - j)``), then a backward bound keeps the last items inside the stream.
   ``place // cap`` is the chunk.
3. Inside a chunk: the free tokens are spread over the gaps around its items by sorted
   uniform fractions (stars and bars).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memgen.format.errors import UsageError
from memgen.ir import jit
from memgen.ir.rng import Streams


@dataclass(frozen=True)
class Grid:
    length: int  # tokens in the stream
    chunk: int  # tokens per chunk
    offset: int  # the grid starts here (tokens before it are BOS + filler)
    reserved_chunks: np.ndarray  # bool per chunk: its first token is reserved (BOS)

    @property
    def chunks(self) -> int:
        return (self.length - self.offset) // self.chunk


def needed_length(n_items: int, tail_items: int, max_item: int, chunk: int) -> int:
    """The shortest stream (in whole chunks) that holds the items."""
    cap = max(1, (chunk - 1) // max_item)
    tail_chunks = -(-tail_items // cap)
    body_chunks = -(-(n_items - tail_items) // cap)
    return (tail_chunks + body_chunks) * chunk


def place(streams: Streams, item_len: np.ndarray, is_tail: np.ndarray, grid: Grid, max_item: int,
          depth: tuple[float, float] = (0.0, 1.0), spacing: str = "uniform",
          alpha: float = 1.2) -> np.ndarray:
    """Start token of every item, (B, N) int64.  Items of a row are in reading order;
    ``is_tail`` marks the trailing queries (packed at the end)."""
    B, N = item_len.shape
    C = grid.chunk
    cap = max(1, (C - 1) // max_item)
    n_chunks = grid.chunks
    capacity = n_chunks * cap  # item places on the grid
    n_tail = is_tail.sum(axis=1)  # (B,)
    n_body = N - n_tail
    tail_chunks = -(-n_tail // cap)
    body_chunks = n_chunks - tail_chunks
    if (body_chunks * cap < n_body).any() or (body_chunks < 0).any():
        need = needed_length(N, int(n_tail.max()), max_item, C) + grid.offset
        raise UsageError(f"--length {grid.length} is too short for the events asked for: they need "
                         f"at least {need} tokens (or fewer keys/queries)")

    # 1. desired positions in [0, 1) of the body, by spacing
    if spacing == "powerlaw":
        gaps = streams.pareto("layout_gaps", N + 1, alpha)
    elif spacing == "uniform":
        gaps = streams.exponential("layout_gaps", N + 1)
    else:
        raise UsageError(f"unknown spacing {spacing!r}; choose uniform or powerlaw")
    d0, d1 = depth
    if jit.pays(B * N):  # the compiled twin of the steps below
        start = np.empty((B, N), dtype=np.int64)
        _place_kernel(gaps, np.ascontiguousarray(is_tail), np.ascontiguousarray(item_len, dtype=np.int64),
                      streams.uniform("layout_in_chunk", N), body_chunks.astype(np.int64),
                      n_tail.astype(np.int64), cap, capacity, C, grid.reserved_chunks.astype(np.int64),
                      grid.offset, float(d0), float(d1), start)
        return start
    gaps = np.where(np.append(is_tail, np.zeros((B, 1), dtype=bool), axis=1), 0.0, gaps)
    cum = np.cumsum(gaps, axis=1)
    x = cum[:, :N] / cum[:, N:N + 1]  # (B, N) in (0, 1)
    x = d0 + (d1 - d0) * x
    desired_chunk = np.minimum((x * body_chunks[:, None]).astype(np.int64), np.maximum(body_chunks - 1, 0)[:, None])
    j = np.arange(N)[None, :]
    first_tail = n_body[:, None]
    a = np.where(is_tail, capacity - n_tail[:, None] + (j - first_tail), desired_chunk * cap)

    # 2. greedy push forward (cummax), then keep within the stream
    s = j + np.maximum.accumulate(a - j, axis=1)
    s = np.minimum(s, capacity - N + j)
    chunk_of = s // cap  # (B, N), non-decreasing in a row

    # 3. inside each chunk: spread the free tokens over the gaps
    starts_chunk = np.ones((B, N), dtype=bool)
    starts_chunk[:, 1:] = chunk_of[:, 1:] != chunk_of[:, :-1]
    cum_len = np.cumsum(item_len, axis=1)
    first_in_chunk = np.maximum.accumulate(np.where(starts_chunk, j, 0), axis=1)
    rows = np.arange(B)[:, None]
    len_before_in_chunk = cum_len - item_len - (cum_len - item_len)[rows, first_in_chunk]
    # total item length per (row, chunk) via the last item of each run
    ends_chunk = np.ones((B, N), dtype=bool)
    ends_chunk[:, :-1] = chunk_of[:, 1:] != chunk_of[:, :-1]
    last_in_chunk = np.minimum.accumulate(np.where(ends_chunk, j, N - 1)[:, ::-1], axis=1)[:, ::-1]
    chunk_items_len = cum_len[rows, last_in_chunk] - (cum_len - item_len)[rows, first_in_chunk]
    reserved = grid.reserved_chunks[chunk_of].astype(np.int64)
    free = C - reserved - chunk_items_len
    frac = np.sort(chunk_of + streams.uniform("layout_in_chunk", N), axis=1) - chunk_of
    fill_before = np.minimum((frac * (free + 1)).astype(np.int64), free)
    return grid.offset + chunk_of * C + reserved + fill_before + len_before_in_chunk


@jit.kernel
def _place_kernel(gaps, is_tail, item_len, u_in, body_chunks, n_tail, cap, capacity, C, reserved, offset, d0,
                  d1, start):  # pragma: no cover - compiled
    """Steps 1 (after the gaps are drawn) to 3 of :func:`place`, a row at a time; the same
    arithmetic in the same order, so the same starts."""
    B, N = start.shape
    x = np.empty(N)
    chunk_of = np.empty(N, np.int64)
    v = np.empty(N)
    for b in range(B):
        # 1. desired positions
        cum = 0.0
        for j in range(N):
            if not is_tail[b, j]:
                cum += gaps[b, j]
            x[j] = cum
        cum += gaps[b, N]
        n_body = N - n_tail[b]
        top = max(body_chunks[b] - 1, 0)
        # 2. greedy push forward, then keep within the stream
        run = np.iinfo(np.int64).min
        for j in range(N):
            if is_tail[b, j]:
                a = capacity - n_tail[b] + (j - n_body)
            else:
                xj = d0 + (d1 - d0) * (x[j] / cum)
                a = min(np.int64(xj * body_chunks[b]), top) * cap
            run = max(run, a - j)
            chunk_of[j] = min(j + run, capacity - N + j) // cap
        # 3. inside each chunk: the free tokens spread over the gaps by sorted fractions
        for j in range(N):
            v[j] = chunk_of[j] + u_in[b, j]
        lo = 0
        while lo < N:
            hi = lo
            items = 0
            while hi < N and chunk_of[hi] == chunk_of[lo]:
                items += item_len[b, hi]
                hi += 1
            for i in range(lo + 1, hi):  # sort the run (insertion: runs are short); a run's
                y = v[i]  # values never interleave with the next run's, so this is the row's sort
                k = i - 1
                while k >= lo and v[k] > y:
                    v[k + 1] = v[k]
                    k -= 1
                v[k + 1] = y
            c = chunk_of[lo]
            free = C - reserved[c] - items
            before = 0
            for j in range(lo, hi):
                fill = min(np.int64((v[j] - c) * (free + 1)), free)
                start[b, j] = offset + c * C + reserved[c] + fill + before
                before += item_len[b, j]
            lo = hi
