"""``replay()``: the interpreter of the episode IR (DESIGN.md section 3), vectorised.

:func:`replay_program` interprets a :class:`~memgen.ir.program.Program` (B episodes of N items,
numpy arrays) in place, every step a pass over all items of the batch; for large batches it
hands over to its compiled twin, :mod:`memgen.ir.replay_kernel`, which gives the same arrays.
:func:`replay` runs one :class:`~memgen.ir.episode.Episode` through it.  Gold answers,
versions, operation labels, probes and traps come from here alone; :mod:`memgen.ir.naive`
restates the same semantics plainly, and the tests hold the two together.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from memgen.format.codes import (
    ABSENT,
    ASK_LATEST,
    ASK_PREVIOUS,
    ASK_VERSION,
    ITEM_DELETE,
    ITEM_DISTRACTOR,
    ITEM_PAD,
    ITEM_QUERY,
    ITEM_SET,
    OP_DELETE,
    OP_DISTRACTOR,
    OP_OVERWRITE,
    OP_SILENT_WRITE,
    OP_WRITE,
    PROBE_DISCARD,
    PROBE_DISTRACTOR,
    PROBE_NO_WRITE_SIGNAL,
    PROBE_OVERWRITE,
    PROBE_VERSION,
    PROBE_WRITE,
)
from memgen.ir import jit, replay_kernel
from memgen.ir.episode import Episode
from memgen.ir.program import Program


def replay(episode: Episode) -> Episode:
    """Return ``episode`` with every event's op/version and every query's answer, probe and
    traps recomputed by :func:`replay_program` (positions and spans are kept).  Queries come
    back in reading order (by ``after``, stable)."""
    ordered = sorted(episode.queries, key=lambda q: q.after)  # reading order (stable)
    if ordered != list(episode.queries):
        episode = replace(episode, queries=tuple(ordered))
    program = Program.from_episode(episode)
    replay_program(program)
    return program.episode(0, base=episode)


def _sort_rows(a: np.ndarray) -> np.ndarray:
    """Stable argsort of each row of a non-negative (B, N) int array; radix sort when it fits
    16 bits (the common case: key and value ids of generated episodes), else the general one."""
    if a.size and a.min() >= 0 and a.max() < 1 << 16:
        return np.argsort(a.astype(np.uint16), axis=1, kind="stable")
    return np.argsort(a, axis=1, kind="stable")


def _values_distinct(p: Program) -> bool:
    """True when no value id repeats inside an episode (generators guarantee it: a value names
    one event).  Then no trap list can hold a value twice and no gold can be another key's
    value, and replay skips the work that handles those cases."""
    v = p.value
    if v.size == 0:
        return True
    shifted = np.where(v >= 0, v, -1 - np.arange(v.shape[1])[None, :])  # absents never collide
    lo = shifted.min(initial=0)
    srt = np.take_along_axis(shifted, _sort_rows(shifted - lo), axis=1)
    return not (srt[:, 1:] == srt[:, :-1]).any()


@dataclass
class _History:
    """Items grouped by (episode, key) in reading order, with running counts per group."""

    order: np.ndarray  # flat item indices, sorted by (episode, key, position); pads dropped
    new_group: np.ndarray  # the sorted index starts a group
    group_start: np.ndarray  # for each sorted index, the first sorted index of its group
    is_set: np.ndarray
    is_del: np.ndarray
    is_dis: np.ndarray
    is_q: np.ndarray
    n_sets: np.ndarray  # sets of the key up to and including this item
    n_dis: np.ndarray
    n_del: np.ndarray
    last_change: np.ndarray  # sorted index of the last set/delete at or before; -1 if none
    holds: np.ndarray  # the key has a value after this item
    held_before: np.ndarray  # ... just before this item


def _history(p: Program) -> _History:
    """The items of ``p`` grouped by (episode, key), each group in reading order, with the
    running counts and state of the key after (and before) each item."""
    B, N = p.shape
    item = p.item.reshape(-1)
    key = np.where(p.item == ITEM_PAD, 0, p.key)
    # (episode, key, position): rows are episodes and a stable sort of each row keeps reading order
    order = (_sort_rows(key) + (np.arange(B, dtype=np.int64) * N)[:, None]).reshape(-1)
    order = order[item[order] != ITEM_PAD]
    k_sorted = key.reshape(-1)[order]
    new_group = np.ones(order.size, dtype=bool)
    new_group[1:] = (k_sorted[1:] != k_sorted[:-1]) | (order[1:] // N != order[:-1] // N)
    it = item[order]
    idx = np.arange(order.size)
    group_start = np.maximum.accumulate(np.where(new_group, idx, 0))
    is_set, is_del = it == ITEM_SET, it == ITEM_DELETE
    is_dis, is_q = it == ITEM_DISTRACTOR, it == ITEM_QUERY

    def running(mask: np.ndarray) -> np.ndarray:
        c = np.cumsum(mask, dtype=np.int64)
        return c - (c[group_start] - mask[group_start])

    changing = is_set | is_del
    last_change = np.maximum.accumulate(np.where(changing, idx, -1))
    last_change = np.where(last_change >= group_start, last_change, -1)
    prev_change = np.full_like(last_change, -1)
    prev_change[1:] = last_change[:-1]
    prev_change[new_group] = -1
    prev_change = np.where(changing, prev_change, last_change)
    holds = (last_change >= 0) & is_set[np.maximum(last_change, 0)]
    held_before = (prev_change >= 0) & is_set[np.maximum(prev_change, 0)]
    return _History(order, new_group, group_start, is_set, is_del, is_dis, is_q, running(is_set),
                    running(is_dis), running(is_del), last_change, holds, held_before)


def query_history(p: Program) -> tuple[np.ndarray, np.ndarray]:
    """For every item, (number of values its key has had before it, whether the key holds a
    value just before it), each (B, N).  Generators use it to ask only defined questions."""
    h = _history(p)
    n_values = np.zeros(p.item.size, dtype=np.int64)
    n_values[h.order] = h.n_sets - h.is_set
    held = np.zeros(p.item.size, dtype=bool)
    held[h.order] = h.held_before
    return n_values.reshape(p.shape), held.reshape(p.shape)


def _spread(owners: np.ndarray, counts: np.ndarray, size: int) -> np.ndarray:
    """Offsets (size + 1) of a ragged array over all flat items whose non-empty lists belong to
    ``owners`` (ascending flat indices) with ``counts`` entries each."""
    full = np.zeros(size, dtype=np.int64)
    full[owners] = counts
    offsets = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(full, out=offsets[1:])
    return offsets


def other_keys_dtype(p: Program) -> type[np.integer]:
    """The dtype of the ``other_keys`` lists: uint16 when every value id of ``p`` fits 16 bits
    (the token renderings' value ids always do), int32 beyond.  They are most of a shard's
    bytes; both interpreters use this."""
    return np.uint16 if p.value.size == 0 or p.value.max() < 1 << 16 else np.int32


def replay_program(p: Program, kernel: bool | None = None) -> Program:
    """Interpret every episode of ``p`` in place (DESIGN.md section 3), vectorised.

    ``kernel``: use the compiled twin of this function (:mod:`memgen.ir.replay_kernel`, same outputs)
    when it is available; ``None`` (the default) uses it for programs of at least
    ``memgen.ir.jit.MIN_ITEMS`` items.  Either way the result is the same arrays.

    Fills ``op`` (write / overwrite / silent_write / delete / distractor), ``version`` (for
    sets: how many values the key has had so far, counting across deletes; 0 otherwise),
    ``answer`` (ABSENT when the key has no current value at the query's position), ``probe``,
    ``traps`` (ragged per flat item index) and ``evidence_items`` (flat item indices that decide each
    query's answer).

    Probe precedence for a query: a version or previous ask -> ``version``; the key was deleted
    before the query -> ``discard``; a distractor about the key came before it -> ``distractor``;
    the key's current value was set without a write signal -> ``no_write_signal``; the key has
    had two or more values -> ``overwrite``; else ``write``.

    Trap lists hold each value once.  ``stale``, ``distractor`` and ``deleted`` are in reading
    order; ``other_keys`` are in key order, starting after the query's own key and wrapping.
    """
    if jit.pays(p.item.size) if kernel is None else kernel and jit.available():
        out = replay_kernel.replay(p.item, p.key, p.value, p.silent_write, p.ask, p.k, other_keys_dtype(p))
        if out is not None:  # None: some episode repeats a value id; numpy handles that
            op, version, answer, probe, p.traps, p.evidence_items = out
            p.op, p.version = op.reshape(p.shape), version.reshape(p.shape)
            p.answer, p.probe = answer.reshape(p.shape), probe.reshape(p.shape)
            return p
    size = p.item.size
    h = _history(p)
    distinct = _values_distinct(p)
    values_sorted = p.value.reshape(-1)[h.order]
    silent = p.silent_write.reshape(-1)[h.order]
    op, version = _ops_and_versions(h, silent, size)
    q = _queries(p, h, values_sorted)
    answer = np.full(size, ABSENT, dtype=np.int64)
    answer[q.flat] = q.answer
    probe = np.full(size, -1, dtype=np.int8)
    probe[q.flat] = _probes(h, q, silent)
    traps = _own_traps(h, q, values_sorted, distinct, size)
    traps["other_keys"] = _other_keys(p, h, values_sorted, q, distinct, other_keys_dtype(p))
    shape = p.shape
    p.op, p.version = op.reshape(shape), version.reshape(shape)
    p.answer, p.probe, p.traps = answer.reshape(shape), probe.reshape(shape), traps
    p.evidence_items = _evidence(h, q, size)
    return p


def _ops_and_versions(h: _History, silent: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every flat item's op (int8 OP_*, -1 for queries and pads) and version (sets: the key's
    values so far, this one included; 0 otherwise).  ``silent``: the sets without a write
    signal, in the history's order."""
    op = np.full(size, -1, dtype=np.int8)
    set_op = np.where(silent, OP_SILENT_WRITE, np.where(h.held_before, OP_OVERWRITE, OP_WRITE))
    op[h.order] = np.where(h.is_set, set_op, np.where(h.is_del, OP_DELETE, np.where(h.is_dis, OP_DISTRACTOR, -1)))
    version = np.zeros(size, dtype=np.int64)
    version[h.order] = np.where(h.is_set, h.n_sets, 0)
    return op, version


@dataclass
class _Queries:
    """The queries of a program in reading order (``flat`` ascending), one entry each.  Indices
    named "sorted" are into the history's order (:class:`_History`)."""

    at: np.ndarray  # sorted index of the query
    flat: np.ndarray  # flat item index
    group_start: np.ndarray  # sorted index of the first item of its (episode, key) group
    current: np.ndarray  # sorted index of its key's last change (set or delete) before it; -1 if none
    holds: np.ndarray  # its key holds a value at the query
    n_sets: np.ndarray  # its key's sets before it
    ask: np.ndarray
    deciding: np.ndarray  # sorted index of the set whose value is the answer; -1: absent
    answer: np.ndarray  # value id, ABSENT for none


def _queries(p: Program, h: _History, values_sorted: np.ndarray) -> _Queries:
    """Each query's state at its own position, its deciding set and its answer: the current
    value for a latest ask, the k-th value for a version ask, the one before the current for a
    previous ask; absent where the key holds no value or the ask is not defined."""
    size = p.item.size
    qi = np.flatnonzero(h.is_q)  # sorted indices, by (episode, key): put them in reading order
    mark = np.zeros(size, dtype=bool)
    mark[h.order[qi]] = True
    rank = np.cumsum(mark) - 1
    by_flat = np.empty(qi.size, dtype=np.int64)
    by_flat[rank[h.order[qi]]] = qi
    qi = by_flat
    q_flat = h.order[qi]
    cur = h.last_change[qi]
    q_holds = h.holds[qi]
    nq_sets = h.n_sets[qi]
    ask = p.ask.reshape(-1)[q_flat]
    kreq = p.k.reshape(-1)[q_flat]
    # the j-th set of a query's group is set_pos[sets before the group + j]
    set_pos = np.flatnonzero(h.is_set)
    sets_before = np.cumsum(h.is_set) - h.is_set
    q_group_start = h.group_start[qi]
    set_rank_base = sets_before[q_group_start]

    def nth_set(j: np.ndarray) -> np.ndarray:  # j: 0-based set index within the group
        if set_pos.size == 0:
            return np.zeros_like(j)
        return set_pos[np.clip(set_rank_base + j, 0, set_pos.size - 1)]

    target = np.where(ask == ASK_LATEST, cur, -1)
    ok_v = (ask == ASK_VERSION) & (kreq >= 1) & (kreq <= nq_sets)
    target = np.where(ok_v, nth_set(kreq - 1), target)
    ok_p = (ask == ASK_PREVIOUS) & (nq_sets >= 2)
    target = np.where(ok_p, nth_set(nq_sets - 2), target)
    defined = q_holds & (target >= 0)
    answer = np.where(defined, values_sorted[np.maximum(target, 0)], ABSENT)
    return _Queries(qi, q_flat, q_group_start, cur, q_holds, nq_sets, ask, np.where(defined, target, -1), answer)


def _probes(h: _History, q: _Queries, silent: np.ndarray) -> np.ndarray:
    """Each query's probe (int8 PROBE_*), by the precedence of :func:`replay_program`."""
    cur_silent = q.holds & silent[np.maximum(q.current, 0)]
    return np.select(
        [q.ask != ASK_LATEST, h.n_del[q.at] > 0, h.n_dis[q.at] > 0, cur_silent, q.n_sets >= 2],
        [PROBE_VERSION, PROBE_DISCARD, PROBE_DISTRACTOR, PROBE_NO_WRITE_SIGNAL, PROBE_OVERWRITE],
        PROBE_WRITE)


def _own_traps(h: _History, q: _Queries, values_sorted: np.ndarray, distinct: bool,
               size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The traps from each query's own key, ragged over flat items, in reading order, each
    value once and never the answer: ``stale`` (the key's values so far), ``distractor`` (values
    its distractors stated so far) and ``deleted`` (its values set before its last delete)."""
    # pairs (query, earlier item of the same group), grouped by query in reading order
    n_before = q.at - q.group_start
    pair_q = np.repeat(np.arange(q.at.size), n_before)
    pair_item = np.repeat(q.group_start, n_before) + _ranges(n_before)
    pv = values_sorted[pair_item]
    # the last delete before the query: sets before it were "held before a delete"
    last_del = np.maximum.accumulate(np.where(h.is_del, np.arange(h.order.size), -1))
    q_last_del = np.where(last_del[q.at] >= q.group_start, last_del[q.at], -1)
    other = pv != q.answer[pair_q]
    p_is_set = h.is_set[pair_item]
    masks = {
        "stale": p_is_set & other,
        "distractor": h.is_dis[pair_item] & other,
        "deleted": p_is_set & (pair_item < q_last_del[pair_q]) & other,
    }
    traps = {}
    for name, m in masks.items():
        counts = np.bincount(pair_q[m], minlength=q.at.size)
        ragged = (np.concatenate([[0], np.cumsum(counts)]), pv[m])
        if not distinct:
            ragged = _unique_ragged(*ragged)
        traps[name] = (_spread(q.flat, np.diff(ragged[0]), size), ragged[1])
    return traps


def _evidence(h: _History, q: _Queries, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The items that decide each query's answer, ragged flat item indices: the deciding set;
    for a version/previous ask the current value's set too, when it is another; for a key
    emptied by a delete, that delete."""
    current = np.where((q.deciding >= 0) & (q.ask != ASK_LATEST) & (q.current != q.deciding), q.current, -1)
    emptied = np.where(~q.holds & (q.current >= 0), q.current, -1)
    cand = np.stack([q.deciding, current, emptied], axis=1)
    keep = cand >= 0
    return _spread(q.flat, keep.sum(axis=1), size), h.order[cand[keep]]


def _ranges(counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(c)`` for each c in ``counts``."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    starts = np.repeat(ends - counts, counts)
    return np.arange(total, dtype=np.int64) - starts


def _unique_ragged(offsets: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop repeated values inside each list, keeping first occurrences in order."""
    if values.size == 0:
        return offsets, values
    owner = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    # first occurrence of (owner, value): sort by (owner, value, position)
    posn = np.arange(values.size)
    o = np.lexsort((posn, values, owner))
    dup = np.zeros(values.size, dtype=bool)
    same = (owner[o][1:] == owner[o][:-1]) & (values[o][1:] == values[o][:-1])
    dup[o[1:][same]] = True
    keep = ~dup
    counts = np.bincount(owner[keep], minlength=offsets.size - 1)
    new_off = np.zeros_like(offsets)
    np.cumsum(counts, out=new_off[1:])
    return new_off, values[keep]


def _other_keys(p: Program, h: _History, values_sorted: np.ndarray, q: _Queries, distinct: bool,
                dtype: type[np.integer]) -> tuple[np.ndarray, np.ndarray]:
    """Current values of the other keys of the episode at each query's position, ragged over
    flat items, values ``dtype``.  A set is alive from its own position until the next change
    (set or delete) of its key.  A query after the last change of its episode ("settled") sees
    the final state (:func:`_settled_other_keys`); any other one, the sets alive at it
    (:func:`_interleaved_other_keys`)."""
    B, N = p.shape
    if q.flat.size == 0:
        return np.zeros(B * N + 1, dtype=np.int64), np.zeros(0, dtype=dtype)
    groups = _groups(p, h, values_sorted)
    changes = h.order[h.is_set | h.is_del]
    last_change = np.full(B, -1, dtype=np.int64)
    np.maximum.at(last_change, changes // N, changes)
    settled = q.flat > last_change[q.flat // N]
    out_counts = np.zeros(q.flat.size, dtype=np.int64)
    parts: list[tuple[np.ndarray, np.ndarray]] = []  # (query indices, values), both in reading order
    for owners, lists in ((np.flatnonzero(settled), _settled_other_keys),
                          (np.flatnonzero(~settled), _interleaved_other_keys)):
        if owners.size:
            out_counts[owners], values = lists(p, h, groups, values_sorted, q, owners, distinct, dtype)
            parts.append((owners, values))
    offsets = _spread(q.flat, out_counts, B * N)
    if len(parts) == 1:
        return offsets, parts[0][1]
    starts = np.concatenate([[0], np.cumsum(out_counts)])
    values = np.empty(int(starts[-1]), dtype=dtype)
    for owners, vals_ in parts:  # each part's lists are in reading order: scatter them whole
        lens = out_counts[owners]
        values[np.repeat(starts[owners], lens) + _ranges(lens)] = vals_
    return offsets, values


@dataclass
class _Groups:
    """The (episode, key) groups of a history, in its order (episodes, then keys ascending)."""

    start: np.ndarray  # sorted index of each group's first item
    end: np.ndarray  # ... and of its last
    of: np.ndarray  # for each sorted index, its group
    episode: np.ndarray
    has_final: np.ndarray  # the key holds a value at the end of the episode
    final_value: np.ndarray  # that value (meaningless where it holds none)
    column: np.ndarray  # where that value sits in its episode's final list (finals in earlier groups)
    n_final: np.ndarray  # (B,) the length of each episode's final list


def _groups(p: Program, h: _History, values_sorted: np.ndarray) -> _Groups:
    """The (episode, key) groups of ``h`` and each episode's final list (see :class:`_Groups`)."""
    B, N = p.shape
    gs = np.flatnonzero(h.new_group)
    ge = np.append(gs[1:], h.order.size) - 1
    g_ep = h.order[gs] // N
    has_final = h.holds[ge]
    cf = np.cumsum(has_final) - has_final  # finals in earlier groups
    n_groups = np.bincount(g_ep, minlength=B)
    cf_base = cf[np.minimum(np.cumsum(n_groups) - n_groups, gs.size - 1)]  # at each episode's first group
    return _Groups(gs, ge, np.cumsum(h.new_group) - 1, g_ep, has_final,
                   values_sorted[np.maximum(h.last_change[ge], 0)], cf - cf_base[g_ep],
                   np.bincount(g_ep[has_final], minlength=B))


def _settled_other_keys(p: Program, h: _History, g: _Groups, values_sorted: np.ndarray, q: _Queries,
                        owners: np.ndarray, distinct: bool, dtype: type[np.integer]) -> tuple[np.ndarray, np.ndarray]:
    """The other keys' traps of the queries ``owners`` (indices into ``q``), all after their
    episode's last change: the final value of each key but the query's own, in key order,
    starting after its own key and wrapping, never the answer.  Every such list is one window of
    the episode's final list written twice, so the common case (every key holds a value, values
    distinct) is a single gather.  Returns (lengths, values), in the order of ``owners``; a value
    that two other keys hold is listed once (only hand-built episodes repeat a value id)."""
    B = p.shape[0]
    W = int(g.n_final.max(initial=0))
    fe, fc = g.episode[g.has_final], g.column[g.has_final]

    def twice(x: np.ndarray, dt: type[np.integer]) -> np.ndarray:
        """(B, 2W): each episode's final list written twice (-1, or 0 for unsigned values, where
        it is shorter: the key list's -1 masks those)."""
        out = np.full((B, 2 * max(W, 1)), -1 if np.issubdtype(dt, np.signedinteger) else 0, dtype=dt)
        out[fe, fc] = out[fe, fc + W] = x
        return out

    vals = twice(g.final_value[g.has_final], dtype)
    ep, own = q.flat[owners] // p.shape[1], g.of[q.at[owners]]
    at = g.column[own]  # the first final value of a key after the query's own (or its own)
    win = np.lib.stride_tricks.sliding_window_view
    if distinct and W > 1 and (g.n_final == W).all() and g.has_final[own].all():
        return np.full(owners.size, W - 1), win(vals, W - 1, axis=1)[ep, at + 1].reshape(-1)
    if W == 0:
        return np.zeros(owners.size, dtype=np.int64), np.zeros(0, dtype=dtype)
    v = win(vals, W, axis=1)[ep, at]
    k = win(twice(p.key.reshape(-1)[h.order[g.start[g.has_final]]], np.int64), W, axis=1)[ep, at]
    q_key = p.key.reshape(-1)[q.flat[owners]]
    mask = (k != q_key[:, None]) & (k >= 0) & (v != q.answer[owners][:, None])
    lengths, values = mask.sum(axis=1), v[mask]
    if not distinct:
        offsets, values = _unique_ragged(np.concatenate([[0], np.cumsum(lengths)]), values)
        lengths = np.diff(offsets)
    return lengths, values


def _interleaved_other_keys(p: Program, h: _History, g: _Groups, values_sorted: np.ndarray, q: _Queries,
                            owners: np.ndarray, distinct: bool,
                            dtype: type[np.integer]) -> tuple[np.ndarray, np.ndarray]:
    """The other keys' traps of the queries ``owners`` (indices into ``q``), all before their
    episode's last change: the sets of the episode before the query (a prefix of its sets in
    reading order) still alive at it, of other keys, never the answer, each value once, in
    reading order.  Returns (lengths, values), in the order of ``owners``."""
    N = p.shape[1]
    order, n = h.order, h.order.size
    key = p.key.reshape(-1)
    # the next change of the same group after each sorted index, as a reading position
    nxt = np.where(h.is_set | h.is_del, np.arange(n), n)
    nxt = np.minimum.accumulate(nxt[::-1])[::-1]
    nxt_after = np.append(nxt[1:], n)
    group_end = (g.end + 1)[g.of]  # exclusive end of each sorted index's group
    kill = np.where(nxt_after < group_end, order[np.minimum(nxt_after, n - 1)], np.iinfo(np.int64).max)
    s_idx = np.flatnonzero(h.is_set)
    s_pos = order[s_idx]  # reading positions of sets
    by_pos = np.argsort(s_pos, kind="stable")
    s_pos_o, s_kill_o, s_val_o = s_pos[by_pos], kill[s_idx][by_pos], values_sorted[s_idx][by_pos]
    s_key_o = key[s_pos_o]
    uq = q.flat[owners]
    q_ep_first = np.searchsorted(s_pos_o, (uq // N) * N)
    counts = np.searchsorted(s_pos_o, uq) - q_ep_first
    pair_q = np.repeat(np.arange(uq.size), counts)
    pair_s = np.repeat(q_ep_first, counts) + _ranges(counts)
    keep = ((s_kill_o[pair_s] > uq[pair_q]) & (s_key_o[pair_s] != key[uq][pair_q])
            & (s_val_o[pair_s] != q.answer[owners][pair_q]))
    lengths = np.bincount(pair_q[keep], minlength=uq.size)
    ragged = (np.concatenate([[0], np.cumsum(lengths)]), s_val_o[pair_s[keep]].astype(dtype))
    if not distinct:
        ragged = _unique_ragged(*ragged)
        lengths = np.diff(ragged[0])
    return lengths, ragged[1]
