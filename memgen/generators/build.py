"""The shared episode builder: knobs in, a replayed :class:`~memgen.ir.Program` out.

A family is a small function that turns a :class:`Knobs` (what the user asked, with ``None``
for "the family's default at this length") into a :class:`Plan` (resolved counts and a query
policy).  :func:`build_program` turns a plan into a batch of episodes, vectorised across
events and episodes, drawing only from each episode's own :class:`~memgen.ir.rng.Streams` row.

Timing model: every event gets a time in [0, 1); an episode's items are read in time order.
A key's first write is uniform; its overwrites, its delete and a re-write after the delete
each come uniformly later than what they depend on; distractors are uniform.  End queries
come after every event; interleaved ones come after the first write of their key.  Where an
item sits in the rendered context (depth, spacing) is the renderer's business.
"""

from __future__ import annotations

import numpy as np

from memgen.format.codes import (
    ABSENT,
    ASK_LATEST,
    ASK_PREVIOUS,
    ASK_VERSION,
    ITEM_DELETE,
    ITEM_DISTRACTOR,
    ITEM_QUERY,
    ITEM_SET,
    KINDS,
)
from memgen.format.errors import UsageError
from memgen.generators.knobs import KeyFacts, Plan
from memgen.ir import jit
from memgen.ir.program import Program
from memgen.ir.replay import query_history, replay_program
from memgen.ir.rng import Streams

#: A query policy ranks keys: higher is asked first; negative is never asked.


def _choice(weights: tuple[float, ...], u: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    c = np.cumsum(w / w.sum())
    return np.minimum(np.searchsorted(c, u, side="right"), len(w) - 1)


def build_program(plan: Plan, streams: Streams, key_space: int, key_tokens: int,
                  value_space: int) -> Program:
    """Generate ``streams.batch`` episodes following ``plan`` and replay them.

    Keys are ``plan.keys`` written keys and ``plan.absent`` never-written ones, distinct per
    episode (a keyed permutation of the key space); every value-bearing event gets a distinct
    value (a keyed permutation of the value space), so a value id names one event.
    """
    B, K, A = streams.batch, plan.keys, plan.absent
    KT = K + A
    key_ids = streams.permutation_index("keys", KT, key_space)  # (B, KT)

    # ---- sets: first writes, overwrites, re-writes after deletes
    t_first = streams.uniform("t_first", K)  # (B, K)
    ow_key = streams.integers("overwrite_key", plan.overwrites, K)
    ow_t = t_first[np.arange(B)[:, None], ow_key]
    ow_t = ow_t + (1 - ow_t) * streams.uniform("overwrite_t", plan.overwrites)
    del_key = streams.permutation_index("delete_key", plan.deletes, K) if plan.deletes else \
        np.zeros((B, 0), dtype=np.int64)
    rows = np.arange(B)[:, None]
    del_t = t_first[rows, del_key]
    del_t = del_t + (1 - del_t) * streams.uniform("delete_t", plan.deletes)
    R = plan.rewrites
    rw_key = del_key[:, :R]
    rw_t = del_t[:, :R] + (1 - del_t[:, :R]) * streams.uniform("rewrite_t", R)

    set_key = np.concatenate([np.broadcast_to(np.arange(K), (B, K)), ow_key, rw_key], axis=1)
    set_t = np.concatenate([t_first, ow_t, rw_t], axis=1)
    S = set_key.shape[1]
    if plan.silent_per_key:
        key_silent = streams.uniform("silent", K) < plan.silent_share
        set_silent = key_silent[rows, set_key]
    else:
        set_silent = streams.uniform("silent", S) < plan.silent_share

    # ---- distractors
    X = plan.distractors
    dis_key = streams.integers("distractor_key", X, KT if plan.distract_absent else K)
    kind_codes = np.array([KINDS.index(k) for k in plan.kinds], dtype=np.int8)
    dis_kind = kind_codes[streams.integers("distractor_kind", X, len(kind_codes))] if X else \
        np.zeros((B, 0), dtype=np.int8)
    dis_t = streams.uniform("distractor_t", X)
    dis_alias = _aliases(streams, key_ids, key_ids[rows, dis_key], key_space, key_tokens)
    dis_alias = np.where(dis_kind == KINDS.index("lookalike"), dis_alias, -1)

    # ---- values: distinct per episode
    vals = streams.permutation_index("values", plan.valued, value_space)
    set_val, dis_val = vals[:, :S], vals[:, S:]

    # ---- key facts (at the end) for the query policy
    written = np.zeros((B, KT), dtype=bool)
    written[:, :K] = True
    last_set_t, last_del_t = np.full((B, KT), -1.0), np.full((B, KT), -1.0)
    last_silent = np.zeros((B, KT), dtype=bool)
    if jit.pays(B * S):  # the compiled twin of the lines below
        nvals, distracted, deleted = np.zeros((B, KT), dtype=np.int64), np.zeros((B, KT), bool), np.zeros((B, KT), bool)
        _key_facts_kernel(set_key, set_t, np.ascontiguousarray(set_silent), del_key, del_t, dis_key, nvals,
                          distracted, deleted, last_set_t, last_del_t, last_silent)
    else:
        nvals = _count(set_key, KT)
        distracted = _count(dis_key, KT) > 0
        deleted = _count(del_key, KT) > 0
        np.maximum.at(last_set_t, (np.broadcast_to(rows, set_key.shape), set_key), set_t)
        np.maximum.at(last_del_t, (np.broadcast_to(rows, del_key.shape), del_key), del_t)
        # silent flag of the last set of each key (set times are distinct draws)
        is_last = set_t == last_set_t[rows, set_key]
        last_silent[np.broadcast_to(rows, set_key.shape)[is_last], set_key[is_last]] = set_silent[is_last]
    holds = written & (last_set_t > last_del_t)
    facts = KeyFacts(written, nvals, distracted, deleted, holds, last_silent)

    # ---- queries: rank keys by the policy (ties at random), ask them in that order
    Q = plan.queries
    prio = plan.priority(facts).astype(np.float64)
    score = np.where(prio >= 0, prio + streams.uniform("query_tie", KT), -np.inf)
    ranked = _argsort_rows(-score)
    n_cand = np.maximum((prio >= 0).sum(axis=1), 1)
    q_key = ranked[rows, np.arange(Q)[None, :] % n_cand[:, None]]
    ask_pref = _choice(plan.ask_weights, streams.uniform("ask", Q)).astype(np.int8)
    ask_u = streams.uniform("ask_k", Q)
    if plan.interleaved:
        base = np.where(q_key < K, t_first[rows, np.minimum(q_key, K - 1)], 0.0)
        q_t = base + (1 - base) * streams.uniform("query_t", Q)
    else:
        q_t = 1.0 + np.arange(Q)[None, :] / (Q + 1.0) + np.zeros((B, 1))

    # ---- all items in reading (time) order
    kinds_items = [
        (ITEM_SET, set_key, set_t, set_val, set_silent, 0, -1),
        (ITEM_DELETE, del_key, del_t, ABSENT, False, 0, -1),
        (ITEM_DISTRACTOR, dis_key, dis_t, dis_val, False, dis_kind, dis_alias),
        (ITEM_QUERY, q_key, q_t, ABSENT, False, 0, -1),
    ]
    times = np.concatenate([t for _, _, t, *_ in kinds_items], axis=1)
    n_items = times.shape[1]
    n_before_q = n_items - Q
    if plan.interleaved:
        order = _argsort_rows(times)
    else:  # end queries come after every event, in their own order: sort the events only
        order = np.empty((B, n_items), dtype=np.int64)
        order[:, :n_before_q] = _argsort_rows(times[:, :n_before_q])
        order[:, n_before_q:] = np.arange(n_before_q, n_items)
    p = Program(
        item=np.empty((B, n_items), dtype=np.int8), key=np.empty((B, n_items), dtype=np.int64),
        value=np.empty((B, n_items), dtype=np.int64), silent_write=np.empty((B, n_items), dtype=bool),
        kind=np.empty((B, n_items), dtype=np.int8), alias=np.empty((B, n_items), dtype=np.int64),
        ask=np.zeros((B, n_items), dtype=np.int8), k=np.zeros((B, n_items), dtype=np.int64))
    compiled = jit.pays(B * n_items)
    if compiled:  # the compiled twin of the lines below, with the asks of end queries
        _assemble_kernel(order, set_key, set_val, set_silent, del_key, dis_key, dis_val, dis_kind, dis_alias,
                         q_key, key_ids, ask_pref, ask_u, nvals, holds, plan.max_version, not plan.interleaved,
                         p.item, p.key, p.value, p.silent_write, p.kind, p.alias, p.ask, p.k)
        if not plan.interleaved:
            return replay_program(p)
    flat_order = (order + np.arange(0, B * n_items, n_items)[:, None]).reshape(-1)
    if not compiled:
        def take(a, out):
            out.reshape(-1)[:] = np.concatenate([np.broadcast_to(x, k.shape) for k, x in a], axis=1
                                                ).reshape(-1)[flat_order]

        take([(k, it) for it, k, *_ in kinds_items], p.item)
        take([(k, k) for _, k, *_ in kinds_items], p.key)  # key indices, then the episode's key ids
        p.key[:] = key_ids.reshape(-1)[(p.key + np.arange(0, B * KT, KT)[:, None]).reshape(-1)].reshape(B, n_items)
        take([(k, v) for _, k, _, v, *_ in kinds_items], p.value)
        take([(k, s) for _, k, _, _, s, *_ in kinds_items], p.silent_write)
        take([(k, d) for _, k, _, _, _, d, _ in kinds_items], p.kind)
        take([(k, a) for _, k, *_, a in kinds_items], p.alias)

    # ---- asks only where defined: version k needs k values, previous needs two, both a
    # current value; otherwise the query asks for the latest value.  Work on the queries only:
    # qpos are their flat positions in reading order, (q_row, q_col) where they were drawn.
    qpos = np.flatnonzero(p.item.reshape(-1) == ITEM_QUERY)
    src = flat_order[qpos]
    q_row, q_col = src // n_items, src % n_items - n_before_q
    if plan.interleaved:
        n_values, q_holds = (a.reshape(-1)[qpos] for a in query_history(p))
    else:  # every query comes after every event: the final facts of its key decide
        q_kidx = q_key[q_row, q_col]
        n_values, q_holds = nvals[q_row, q_kidx], holds[q_row, q_kidx]
    ask_q, ku_q = ask_pref[q_row, q_col], ask_u[q_row, q_col]
    want_v = (ask_q == ASK_VERSION) & q_holds & (n_values >= 1)
    want_p = (ask_q == ASK_PREVIOUS) & q_holds & (n_values >= 2)
    top = np.minimum(n_values, plan.max_version)
    p.k.reshape(-1)[qpos] = np.where(want_v, 1 + np.minimum((ku_q * top).astype(np.int64), top - 1), 0)
    p.ask.reshape(-1)[qpos] = np.where(want_v, ASK_VERSION, np.where(want_p, ASK_PREVIOUS, ASK_LATEST))
    return replay_program(p)


@jit.kernel
def _assemble_kernel(order, set_key, set_val, set_silent, del_key, dis_key, dis_val, dis_kind, dis_alias, q_key,
                     key_ids, ask_pref, ask_u, nvals, holds, max_version, end_asks, item, key, value, silent, kind,
                     alias, ask, k):  # pragma: no cover - compiled
    """The items of :func:`build_program` in reading order, a row at a time: each position
    takes the fields of the item ``order`` puts there (sets, deletes, distractors, queries, in
    that order of the drawn arrays); with ``end_asks``, also the queries' asks, from their
    key's final facts.  The same values as the numpy lines."""
    S, D, X = set_key.shape[1], del_key.shape[1], dis_key.shape[1]
    for b in range(order.shape[0]):
        for j in range(order.shape[1]):
            s = order[b, j]
            kd, val, sil, kn, al = 0, ABSENT, False, 0, -1
            if s < S:
                it, kd, val, sil = ITEM_SET, set_key[b, s], set_val[b, s], set_silent[b, s]
            elif s < S + D:
                it, kd = ITEM_DELETE, del_key[b, s - S]
            elif s < S + D + X:
                s -= S + D
                it, kd, val, kn, al = ITEM_DISTRACTOR, dis_key[b, s], dis_val[b, s], dis_kind[b, s], dis_alias[b, s]
            else:
                s -= S + D + X
                it, kd = ITEM_QUERY, q_key[b, s]
                if end_asks and holds[b, kd]:
                    n = nvals[b, kd]
                    if ask_pref[b, s] == ASK_VERSION and n >= 1:
                        top = min(n, max_version)
                        ask[b, j] = ASK_VERSION
                        k[b, j] = 1 + min(np.int64(ask_u[b, s] * top), top - 1)
                    elif ask_pref[b, s] == ASK_PREVIOUS and n >= 2:
                        ask[b, j] = ASK_PREVIOUS
            item[b, j] = it
            key[b, j] = key_ids[b, kd]
            value[b, j] = val
            silent[b, j] = sil
            kind[b, j] = kn
            alias[b, j] = al


def _argsort_rows(a: np.ndarray) -> np.ndarray:
    """The stable argsort of each row of ``a`` (B, n), fast: numpy's default sort (vectorised,
    several times faster, but not stable) gives the same order wherever a row's values are
    distinct, so only rows holding equal values are sorted again, stably."""
    order = np.argsort(a, axis=1)
    s = np.sort(a, axis=1)
    tie = (s[:, 1:] == s[:, :-1]).any(axis=1)
    if tie.any():
        order[tie] = np.argsort(a[tie], axis=1, kind="stable")
    return order


def _count(idx: np.ndarray, n: int) -> np.ndarray:
    """(B, n) counts of each index per row."""
    B = idx.shape[0]
    out = np.zeros((B, n), dtype=np.int64)
    np.add.at(out, (np.broadcast_to(np.arange(B)[:, None], idx.shape), idx), 1)
    return out


def _aliases(streams: Streams, episode_keys: np.ndarray, target: np.ndarray, key_space: int,
             key_tokens: int) -> np.ndarray:
    """A look-alike of each target key: same leading digits, another last digit, and not a
    key of the episode.  Resampled (in its own stream) until no alias collides."""
    B, X = target.shape
    if X == 0:
        return np.zeros((B, 0), dtype=np.int64)
    last = target % key_tokens
    stem = target - last
    offset = B and np.arange(B, dtype=np.int64)[:, None] * key_space
    taken = np.sort((episode_keys + offset).reshape(-1))
    alias = np.empty_like(target)
    todo = np.ones(target.shape, dtype=bool)
    for attempt in range(64):
        shift = 1 + streams.integers(f"alias{attempt}", X, key_tokens - 1)
        cand = stem + (last + shift) % key_tokens
        alias = np.where(todo, cand, alias)
        pos = np.searchsorted(taken, alias + offset)
        hit = taken[np.minimum(pos, taken.size - 1)] == alias + offset
        todo = hit
        if not todo.any():
            return alias
    raise UsageError("could not find look-alike keys outside the episode's keys: "
                     "raise --key-tokens or lower --keys")


@jit.kernel
def _key_facts_kernel(set_key, set_t, set_silent, del_key, del_t, dis_key, nvals, distracted, deleted, last_set_t,
                      last_del_t, last_silent):  # pragma: no cover - compiled
    """The per-key facts of :func:`build_program` (counts, flags, last times, the silent flag
    of the last set), a row at a time: the same values as its numpy lines."""
    for b in range(set_key.shape[0]):
        for i in range(set_key.shape[1]):
            k = set_key[b, i]
            nvals[b, k] += 1
            last_set_t[b, k] = max(last_set_t[b, k], set_t[b, i])
        for i in range(set_key.shape[1]):  # in order: the last of equal times wins, as numpy's assignment
            k = set_key[b, i]
            if set_t[b, i] == last_set_t[b, k]:
                last_silent[b, k] = set_silent[b, i]
        for i in range(del_key.shape[1]):
            k = del_key[b, i]
            deleted[b, k] = True
            last_del_t[b, k] = max(last_del_t[b, k], del_t[b, i])
        for i in range(dis_key.shape[1]):
            distracted[b, dis_key[b, i]] = True
