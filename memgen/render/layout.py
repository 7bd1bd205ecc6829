"""Where items (events and queries) sit in a token stream, vectorised across episodes.

The stream is a grid of chunks of ``chunk`` tokens.  Each chunk holds at most
``cap = (chunk - 1) // max_item`` items, so whatever their lengths they fit beside the one
reserved token a chunk may carry (a BOS), and no item ever straddles a chunk boundary.

1. Desired positions: events (and interleaved queries) get positions in ``[d0, d1]`` of the
   event region, spaced by uniform gaps (exponential) or power-law gaps (Pareto(alpha):
   bursts of events with long empty stretches).  Queries after the last event are packed at
   the very end of the stream.
2. Chunks: each item asks for the first slot of its desired chunk; the greedy push-forward
   ``s_j = max(a_j, s_{j-1} + 1)`` is a cumulative max (``s = j + cummax(a - j)``), then
   a backward bound keeps the last items inside the stream.  ``slot // cap`` is the chunk.
3. Inside a chunk: the free tokens are spread over the gaps around its items by sorted
   uniform fractions (stars and bars).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..rng import Streams


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
    total_slots = n_chunks * cap
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
    gaps = np.where(np.append(is_tail, np.zeros((B, 1), dtype=bool), axis=1), 0.0, gaps)
    cum = np.cumsum(gaps, axis=1)
    x = cum[:, :N] / cum[:, N:N + 1]  # (B, N) in (0, 1)
    d0, d1 = depth
    x = d0 + (d1 - d0) * x
    desired_chunk = np.minimum((x * body_chunks[:, None]).astype(np.int64), np.maximum(body_chunks - 1, 0)[:, None])
    j = np.arange(N)[None, :]
    first_tail = n_body[:, None]
    a = np.where(is_tail, total_slots - n_tail[:, None] + (j - first_tail), desired_chunk * cap)

    # 2. greedy push forward (cummax), then keep within the stream
    s = j + np.maximum.accumulate(a - j, axis=1)
    s = np.minimum(s, total_slots - N + j)
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
