"""The episode IR and ``replay()``, the one reference interpreter of its semantics.

An episode is an ordered list of events over integer keys and values, with queries at the
end or interleaved (DESIGN.md section 3). Two forms of the same thing live here:

* :class:`Episode` (with :class:`Event`, :class:`Query`, :class:`Traps`): one episode as plain
  dataclasses, for reading, tests and notebooks.
* :class:`Program`: a batch of episodes as a structure of numpy arrays, ``(B, N)`` per field,
  which is what the generators build and what :func:`replay_program` interprets, vectorised
  across events and episodes.

``replay()`` runs an :class:`Episode` through the same vectorised interpreter, so there is one
semantics and one implementation of it. Gold answers, versions, operation labels, probes and
traps come from it alone.
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
    traps recomputed by the reference interpreter (positions and spans are kept).  Queries come
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
    B, N = p.shape
    flat = lambda a: a.reshape(-1)  # noqa: E731
    value = flat(p.value)
    size = B * N
    h = _history(p)
    distinct = _values_distinct(p)
    order, group_start = h.order, h.group_start
    is_set, is_del, is_dis, is_q = h.is_set, h.is_del, h.is_dis, h.is_q
    n_sets, n_dis, n_del = h.n_sets, h.n_dis, h.n_del
    last_change, holds, held_before = h.last_change, h.holds, h.held_before
    idx = np.arange(order.size)

    op = np.full(size, -1, dtype=np.int8)
    silent = flat(p.silent_write)[order]
    set_op = np.where(silent, OP_SILENT_WRITE, np.where(held_before, OP_OVERWRITE, OP_WRITE))
    op_sorted = np.where(is_set, set_op, np.where(is_del, OP_DELETE, np.where(is_dis, OP_DISTRACTOR, -1)))
    op[order] = op_sorted
    version = np.zeros(size, dtype=np.int64)
    version[order] = np.where(is_set, n_sets, 0)

    # ---- queries, taken in reading (flat index) order: q_flat ascending
    qi = np.flatnonzero(is_q)  # positions in the sorted order
    mark = np.zeros(size, dtype=bool)
    mark[order[qi]] = True
    rank = np.cumsum(mark) - 1
    by_flat = np.empty(qi.size, dtype=np.int64)
    by_flat[rank[order[qi]]] = qi
    qi = by_flat
    q_flat = order[qi]
    cur = last_change[qi]  # current value's set (if holds)
    q_holds = holds[qi]
    nq_sets = n_sets[qi]
    ask = flat(p.ask)[q_flat]
    kreq = flat(p.k)[q_flat]
    # the j-th set of a query's group is set_pos[sets before the group + j]
    set_pos = np.flatnonzero(is_set)
    sets_before = np.cumsum(is_set) - is_set
    q_group_start = group_start[qi]
    set_rank_base = sets_before[q_group_start]
    values_sorted = value[order]

    def nth_set(j: np.ndarray) -> np.ndarray:  # j: 0-based set index within the group
        if set_pos.size == 0:
            return np.zeros_like(j)
        return set_pos[np.clip(set_rank_base + j, 0, set_pos.size - 1)]

    target = np.where(ask == ASK_LATEST, cur, -1)  # sorted index of the deciding set
    ok_v = (ask == ASK_VERSION) & (kreq >= 1) & (kreq <= nq_sets)
    target = np.where(ok_v, nth_set(kreq - 1), target)
    ok_p = (ask == ASK_PREVIOUS) & (nq_sets >= 2)
    target = np.where(ok_p, nth_set(nq_sets - 2), target)
    defined = q_holds & (target >= 0)
    answer_q = np.where(defined, values_sorted[np.maximum(target, 0)], ABSENT)
    answer = np.full(size, ABSENT, dtype=np.int64)
    answer[q_flat] = answer_q

    # probes
    deleted_before = n_del[qi] > 0
    distracted_before = n_dis[qi] > 0
    cur_silent = q_holds & silent[np.maximum(cur, 0)]
    probe_q = np.select(
        [ask != ASK_LATEST, deleted_before, distracted_before, cur_silent, nq_sets >= 2],
        [PROBE_VERSION, PROBE_DISCARD, PROBE_DISTRACTOR, PROBE_NO_WRITE_SIGNAL, PROBE_OVERWRITE],
        PROBE_WRITE)
    probe = np.full(size, -1, dtype=np.int8)
    probe[q_flat] = probe_q

    # ---- traps: for each query, the items of its group before it, by kind
    # pairs (query, earlier item of the same group), grouped by query in reading order
    n_before = qi - q_group_start
    pair_q = np.repeat(np.arange(qi.size), n_before)
    pair_item = np.repeat(q_group_start, n_before) + _ranges(n_before)
    pv = values_sorted[pair_item]
    # the last delete before the query: sets before it were "held before a delete"
    last_del = np.maximum.accumulate(np.where(is_del, idx, -1))
    q_last_del = np.where(last_del[qi] >= q_group_start, last_del[qi], -1)
    other = pv != answer_q[pair_q]
    p_is_set = is_set[pair_item]
    masks = {
        "stale": p_is_set & other,
        "distractor": is_dis[pair_item] & other,
        "deleted": p_is_set & (pair_item < q_last_del[pair_q]) & other,
    }
    traps = {}
    for name, m in masks.items():
        counts = np.bincount(pair_q[m], minlength=qi.size)
        ragged = (np.concatenate([[0], np.cumsum(counts)]), pv[m])
        if not distinct:
            ragged = _unique_ragged(*ragged)
        traps[name] = (_spread(q_flat, np.diff(ragged[0]), size), ragged[1])
    traps["other_keys"] = _other_keys(p, h, values_sorted, qi, q_flat, answer_q, distinct, other_keys_dtype(p))
    shape = p.shape
    p.op, p.version = op.reshape(shape), version.reshape(shape)
    p.answer, p.probe, p.traps = answer.reshape(shape), probe.reshape(shape), traps

    # evidence: the deciding items, by flat index: the deciding set; for version/previous asks
    # the current value's set too; for a key emptied by a delete, that delete
    deciding = np.where(defined, target, -1)
    current = np.where(defined & (ask != ASK_LATEST) & (cur != deciding), cur, -1)
    emptied = np.where(~q_holds & (cur >= 0), cur, -1)
    cand = np.stack([deciding, current, emptied], axis=1)
    keep = cand >= 0
    p.evidence_items = (_spread(q_flat, keep.sum(axis=1), size), order[cand[keep]])
    return p


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


def _other_keys(p: Program, h: _History, values_sorted: np.ndarray, qi: np.ndarray, q_flat: np.ndarray,
                answer_q: np.ndarray, distinct: bool, dtype: type[np.integer]) -> tuple[np.ndarray, np.ndarray]:
    """Current values of the other keys of the episode at each query's position.

    ``qi``/``q_flat``/``answer_q`` describe the queries in reading order (``q_flat`` ascending).
    A set is alive from its own position until the next change (set or delete) of its key.

    * A query after the last change of its episode ("settled") sees the final state, which all
      such queries of the episode share: the final value of each key, in key order (the groups
      of the history are sorted by key).  Its trap is that list rotated to start after its own
      key, minus its own key; every trap is one window of the list written twice, so the common
      case (every key holds a value, values distinct) is a single gather.
    * Any other query: the sets of its episode before it (a prefix of the episode's sets in
      reading order) that are still alive and of other keys, in reading order."""
    B, N = p.shape
    size = B * N
    order, is_set = h.order, h.is_set
    if q_flat.size == 0:
        return np.zeros(size + 1, dtype=np.int64), np.zeros(0, dtype=dtype)
    n = order.size
    key = p.key.reshape(-1)
    q_key = key[q_flat]
    q_ep = q_flat // N

    # groups (episode, key) of the history, in order; the final value of each
    gs = np.flatnonzero(h.new_group)
    gid = np.cumsum(h.new_group) - 1
    ge = np.append(gs[1:], n) - 1  # last sorted index of each group
    g_ep = order[gs] // N
    has_final = h.holds[ge]
    g_val = values_sorted[np.maximum(h.last_change[ge], 0)]
    cf = np.cumsum(has_final) - has_final  # finals in earlier groups
    n_final = np.bincount(g_ep[has_final], minlength=B)
    n_groups = np.bincount(g_ep, minlength=B)
    cf_base = cf[np.minimum(np.cumsum(n_groups) - n_groups, gs.size - 1)]  # at each episode's first group
    col = cf - cf_base[g_ep]  # column of a group's final value in its episode's list

    changes = order[is_set | h.is_del]
    last_change = np.full(B, -1, dtype=np.int64)
    np.maximum.at(last_change, changes // N, changes)
    settled = q_flat > last_change[q_ep]
    out_counts = np.zeros(q_flat.size, dtype=np.int64)
    parts: list[tuple[np.ndarray, np.ndarray]] = []  # (query indices, values), both in reading order
    if settled.any():
        W = int(n_final.max(initial=0))
        fe, fc = g_ep[has_final], col[has_final]

        def twice(x: np.ndarray, dt: type[np.integer]) -> np.ndarray:
            """(B, 2W): each episode's final list written twice (-1, or 0 for unsigned values, where
            it is shorter: the key list's -1 masks those)."""
            out = np.full((B, 2 * max(W, 1)), -1 if np.issubdtype(dt, np.signedinteger) else 0, dtype=dt)
            out[fe, fc] = out[fe, fc + W] = x
            return out

        vals = twice(g_val[has_final], dtype)
        sq = np.flatnonzero(settled)
        sq_ep, g = q_ep[sq], gid[qi[sq]]
        at = col[g]  # the first final value of a key after the query's own (or its own)
        if distinct and W > 1 and (n_final == W).all() and has_final[g].all():
            picked = np.lib.stride_tricks.sliding_window_view(vals, W - 1, axis=1)[sq_ep, at + 1].reshape(-1)
            out_counts[sq] = W - 1
        elif W > 0:
            win = np.lib.stride_tricks.sliding_window_view
            v = win(vals, W, axis=1)[sq_ep, at]
            k = win(twice(key[order[gs[has_final]]], np.int64), W, axis=1)[sq_ep, at]
            mask = (k != q_key[sq][:, None]) & (k >= 0) & (v != answer_q[sq][:, None])
            picked = v[mask]
            out_counts[sq] = mask.sum(axis=1)
        else:
            picked = np.zeros(0, dtype=dtype)
        parts.append((sq, picked))
    if (~settled).any():
        idx = np.arange(n)
        # the next change of the same group after each sorted index, as a reading position
        nxt = np.where(is_set | h.is_del, idx, n)
        nxt = np.minimum.accumulate(nxt[::-1])[::-1]
        nxt_after = np.append(nxt[1:], n)
        group_end = (ge + 1)[gid]  # exclusive end of each sorted index's group
        kill = np.where(nxt_after < group_end, order[np.minimum(nxt_after, n - 1)], np.iinfo(np.int64).max)
        s_idx = np.flatnonzero(is_set)
        s_pos = order[s_idx]  # reading positions of sets
        by_pos = np.argsort(s_pos, kind="stable")
        s_pos_o, s_kill_o, s_val_o = s_pos[by_pos], kill[s_idx][by_pos], values_sorted[s_idx][by_pos]
        s_key_o = key[s_pos_o]
        uq_i = np.flatnonzero(~settled)
        uq = q_flat[uq_i]
        q_ep_first = np.searchsorted(s_pos_o, (uq // N) * N)
        counts = np.searchsorted(s_pos_o, uq) - q_ep_first
        pair_q = np.repeat(np.arange(uq.size), counts)
        pair_s = np.repeat(q_ep_first, counts) + _ranges(counts)
        keep = ((s_kill_o[pair_s] > uq[pair_q]) & (s_key_o[pair_s] != q_key[uq_i][pair_q])
                & (s_val_o[pair_s] != answer_q[uq_i][pair_q]))
        out_counts[uq_i] = np.bincount(pair_q[keep], minlength=uq.size)
        ragged = (np.concatenate([[0], np.cumsum(out_counts[uq_i])]), s_val_o[pair_s[keep]].astype(dtype))
        if not distinct:
            ragged = _unique_ragged(*ragged)
            out_counts[uq_i] = np.diff(ragged[0])
        parts.append((uq_i, ragged[1]))
    offsets = _spread(q_flat, out_counts, size)
    if len(parts) == 1:
        return offsets, parts[0][1]
    starts = np.concatenate([[0], np.cumsum(out_counts)])
    values = np.empty(int(starts[-1]), dtype=dtype)
    for owners, vals_ in parts:  # each part's lists are in reading order: scatter them whole
        lens = out_counts[owners]
        values[np.repeat(starts[owners], lens) + _ranges(lens)] = vals_
    return offsets, values
