"""The ``token``, ``chunk`` and ``bridge`` renderings: integer ids for small models.

All three share one layout (:mod:`memgen.render.layout`) and one vocabulary
(:mod:`memgen.format.vocab`); they differ in the grid and in what they record:

* ``token``: a grid of ``layout_chunk`` tokens (default 64), aligned to the end of the
  stream; events record no chunk.
* ``chunk``: a grid of ``chunk_size`` tokens from position 0 (the length must be a multiple);
  events record their chunk, queries the chunks of their deciding events (``evidence``).
* ``bridge``: ``segments`` sequences of length / segments tokens, each starting with BOS and
  laid out on a ``layout_chunk`` grid; events record their segment; end queries sit in the
  last segment.  ``segments`` holds the boundaries (offsets into ``input_ids``).

Filler is a window of a fixed pseudo-random tape of filler ids (one per vocabulary), taken at
an offset drawn from the episode's own stream: a copy, not a random draw per token.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa

from memgen.format import schema
from memgen.format.codes import (
    ABSENT_TEXT,
    ASK_LATEST,
    ASK_PREVIOUS,
    ITEM_DELETE,
    ITEM_DISTRACTOR,
    ITEM_PAD,
    ITEM_QUERY,
    ITEM_SET,
)
from memgen.format.errors import UsageError
from memgen.format.vocab import (
    ANSWER_SLOT,
    ASK_LATEST_TOKEN,
    ASK_PREVIOUS_TOKEN,
    BOS,
    DELETE,
    KIND_MARKERS,
    QUERY,
    VERSION_OFFSET,
    WRITE,
    Vocab,
)
from memgen.ir import jit
from memgen.ir.program import Program
from memgen.render import token_kernel
from memgen.render.columns import Names, common_columns
from memgen.render.layout import Grid, needed_length, place
from memgen.render.registry import Batch, RenderOptions, register_rendering

_TAPE_SEED = 0x6D656D67656E  # "memgen"


@lru_cache(maxsize=4)
def _tape(lo: int, hi: int, n: int, dtype: type[np.integer]) -> np.ndarray:
    """The filler tape: ``n`` ids uniform on [lo, hi), the same on every machine, as ``dtype``."""
    return np.random.Generator(np.random.PCG64(_TAPE_SEED)).integers(lo, hi, n, dtype=np.int32).astype(dtype)


def filler(seeds_stream, vocab: Vocab, batch: int, length: int) -> np.ndarray:
    """(B, length) filler ids (``vocab.ids_dtype``): each row a window of the tape at its own offset."""
    n = max(1 << 23, 2 * length)
    n = 1 << int(np.ceil(np.log2(n)))
    tape = _tape(vocab.filler_offset, vocab.vocab_size, n, vocab.ids_dtype)
    off = seeds_stream.integers("filler_offset", 1, n - length + 1)[:, 0]
    windows = np.lib.stride_tricks.sliding_window_view(tape, length)
    return windows[off]


def item_lengths(p: Program, vocab: Vocab) -> np.ndarray:
    """(B, N) tokens of every item: a marker unless a silent set, an ask marker for queries,
    the key, and a value (or the answer slot) unless a delete."""
    silent = (p.item == ITEM_SET) & p.silent_write
    return (~silent).astype(np.int64) + (p.item == ITEM_QUERY) + vocab.key_length + (p.item != ITEM_DELETE)


def item_tokens(p: Program, vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """(B, N, M) token ids of every item (right-padded) and (B, N) their lengths."""
    B, N = p.shape
    L = vocab.key_length
    M = vocab.event_length
    item = p.item
    is_set, is_q = item == ITEM_SET, item == ITEM_QUERY
    is_del, is_dis = item == ITEM_DELETE, item == ITEM_DISTRACTOR
    silent = is_set & p.silent_write
    # the key actually named: a lookalike names its own look-alike key
    named = np.where(p.alias >= 0, p.alias, p.key)
    digits = np.empty((B, N, L), dtype=np.int64)
    rest = named.copy()
    for d in range(L - 1, -1, -1):
        digits[:, :, d] = rest % vocab.key_tokens
        rest //= vocab.key_tokens
    key_tok = (digits + vocab.key_offset).astype(np.int32)
    value_tok = (p.value + vocab.value_offset).astype(np.int32)

    marker = np.select([is_set, is_del, is_dis, is_q], [WRITE, DELETE, KIND_MARKERS[p.kind], QUERY], 0)
    ask_tok = np.select([p.ask == ASK_LATEST, p.ask == ASK_PREVIOUS],
                        [ASK_LATEST_TOKEN, ASK_PREVIOUS_TOKEN], VERSION_OFFSET + p.k - 1)

    tok = np.zeros((B, N, M), dtype=np.int32)
    # explicit events and queries start with their marker; a silent set starts with its key
    has_marker = ~silent
    col = has_marker.astype(np.int64)  # where the key starts
    tok[:, :, 0] = np.where(has_marker, marker, key_tok[:, :, 0])
    q_shift = is_q.astype(np.int64)  # queries have the ask marker before the key
    tok[:, :, 1] = np.where(is_q, ask_tok, tok[:, :, 1])
    for d in range(L):
        pos = col + q_shift + d  # (B, N)
        np.put_along_axis(tok, pos[:, :, None], key_tok[:, :, d:d + 1], axis=2)
    after_key = col + q_shift + L
    last = np.where(is_q, ANSWER_SLOT, np.where(is_del, 0, value_tok))
    np.put_along_axis(tok, np.minimum(after_key, M - 1)[:, :, None], last[:, :, None].astype(np.int32), axis=2)
    return tok, item_lengths(p, vocab)


def _render(batch: Batch, opts: RenderOptions, grid: Grid, rendering: str, bos_at: np.ndarray):
    p, vocab = batch.program, opts.vocab
    B, N = p.shape
    T = batch.target_length
    from memgen.ir.rng import Streams

    streams = Streams(batch.seeds ^ np.uint64(hash_rendering(rendering, T)))
    # large batches: the compiled twin writes the items straight into the stream
    compiled = jit.pays(p.item.size)
    if compiled:
        lens = item_lengths(p, vocab)
    else:
        tok, lens = item_tokens(p, vocab)
    trailing = _trailing_queries(p)
    start = place(streams, lens, trailing, grid, vocab.event_length, opts.depth, opts.spacing, opts.alpha)
    end = start + lens

    ids = filler(streams, vocab, B, T)  # (B, T) ids_dtype, a fresh copy of the tape windows
    ids[:, bos_at] = BOS
    if compiled:
        token_kernel.write_items(ids, start, p, vocab)
        return ids, start, end
    M = tok.shape[2]
    keep = np.arange(M)[None, None, :] < lens[:, :, None]
    # flat positions in the (B, T) stream: row offset + item start + token index
    pos = (start + (np.arange(B, dtype=np.int64) * T)[:, None])[:, :, None] + np.arange(M)[None, None, :]
    ids.reshape(-1)[pos[keep]] = tok[keep]
    return ids, start, end


def hash_rendering(rendering: str, length: int) -> int:
    from memgen.ir.rng import derive_seed

    return derive_seed("render", rendering, length)


def _trailing_queries(p: Program) -> np.ndarray:
    """(B, N) True for queries after the last event of their row."""
    is_ev = (p.item != ITEM_QUERY) & (p.item != ITEM_PAD)
    N = p.shape[1]
    last_ev = np.where(is_ev.any(axis=1), N - 1 - np.argmax(is_ev[:, ::-1], axis=1), -1)
    return (p.item == ITEM_QUERY) & (np.arange(N)[None, :] > last_ev[:, None])


def token_answer_text(vocab: Vocab):
    """The answer texts of the queries from their answers (value ids, ABSENT for none): the
    token a model should emit at the slot, in decimal; "unknown" if absent."""
    texts = _answer_texts(vocab.value_offset, vocab.values)
    return lambda answers: texts.spell(np.where(answers >= 0, answers, vocab.values))


@lru_cache(maxsize=4)
def _answer_texts(value_offset: int, values: int) -> Names:
    """Every answer text by value id; "unknown" after the last value."""
    return Names([str(value_offset + v) for v in range(values)] + [ABSENT_TEXT])


def _ids_column(ids: np.ndarray) -> pa.Array:
    B, T = ids.shape
    offsets = pa.array(np.arange(B + 1, dtype=np.int32) * T)
    return pa.ListArray.from_arrays(offsets, pa.array(ids.reshape(-1)))


def _min_len(opts: RenderOptions, chunk: int, n_items: int, n_tail: int, extra: int = 0) -> int:
    return needed_length(n_items, n_tail, opts.vocab.event_length, chunk) + extra


@register_rendering("token", lambda n, t, o: _min_len(o, o.layout_chunk, n, t, o.layout_chunk))
def render_token(batch: Batch, opts: RenderOptions) -> pa.Table:
    T, C = batch.target_length, opts.layout_chunk
    n_chunks = T // C
    offset = T - n_chunks * C
    reserved = np.zeros(n_chunks, dtype=bool)
    reserved[0] = offset == 0  # BOS takes the first token of the grid only if nothing is before it
    grid = Grid(T, C, offset, reserved)
    ids, start, end = _render(batch, opts, grid, "token", np.array([0]))
    cols = common_columns(batch, start, end, None, None, np.full(ids.shape[0], T), "token",
                          token_answer_text(opts.vocab), schema.ids_type(opts.vocab.vocab_size))
    cols["input_ids"] = _ids_column(ids)
    return pa.table(cols)


@register_rendering("chunk", lambda n, t, o: _min_len(o, o.chunk_size, n, t))
def render_chunk(batch: Batch, opts: RenderOptions) -> pa.Table:
    T, C = batch.target_length, opts.chunk_size
    if C < 2 * opts.vocab.event_length or T % C:
        raise UsageError(f"--length {T} must be a multiple of --chunk-size {C}, and the chunk must "
                         f"hold at least two events ({2 * opts.vocab.event_length} tokens)")
    reserved = np.zeros(T // C, dtype=bool)
    reserved[0] = True
    ids, start, end = _render(batch, opts, Grid(T, C, 0, reserved), "chunk", np.array([0]))
    cols = common_columns(batch, start, end, start // C, None, np.full(ids.shape[0], T), "chunk",
                          token_answer_text(opts.vocab), schema.ids_type(opts.vocab.vocab_size))
    cols["input_ids"] = _ids_column(ids)
    cols["chunk_size"] = pa.array(np.full(ids.shape[0], C, dtype=np.int32))
    return pa.table(cols)


def _bridge_min(n: int, t: int, o: RenderOptions) -> int:
    per = needed_length(n, t, o.vocab.event_length, o.layout_chunk)
    return -(-per // (o.segments * o.layout_chunk)) * o.segments * o.layout_chunk


@register_rendering("bridge", _bridge_min)
def render_bridge(batch: Batch, opts: RenderOptions) -> pa.Table:
    T, C, S = batch.target_length, opts.layout_chunk, opts.segments
    if S < 1 or T % (S * C):
        raise UsageError(f"--length {T} must be a multiple of --segments x {C} = {S * C} "
                         f"so that each of the {S} segments is whole {C}-token chunks")
    seg_len = T // S
    reserved = np.zeros(T // C, dtype=bool)
    reserved[:: seg_len // C] = True  # every segment starts with BOS
    bos_at = np.arange(S) * seg_len
    ids, start, end = _render(batch, opts, Grid(T, C, 0, reserved), "bridge", bos_at)
    cols = common_columns(batch, start, end, None, start // seg_len, np.full(ids.shape[0], T), "bridge",
                          token_answer_text(opts.vocab), schema.ids_type(opts.vocab.vocab_size))
    cols["input_ids"] = _ids_column(ids)
    bounds = np.arange(S + 1, dtype=np.int32) * seg_len
    cols["segments"] = pa.ListArray.from_arrays(
        pa.array(np.arange(ids.shape[0] + 1, dtype=np.int32) * (S + 1)),
        pa.array(np.tile(bounds, ids.shape[0])))
    return pa.table(cols)
