"""The shared episode builder: knobs in, a replayed :class:`~memgen.ir.program.Program` out.

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

from dataclasses import dataclass

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


def _choice(weights: tuple[float, ...], u: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    c = np.cumsum(w / w.sum())
    return np.minimum(np.searchsorted(c, u, side="right"), len(w) - 1)


#: the columns of :meth:`_Items.by_kind`: a Program field each, but the time
KIND_COLUMNS = ("item", "key", "t", "value", "silent_write", "kind", "alias")


@dataclass(frozen=True)
class _Items:
    """The drawn items of a batch, by kind, each (B, count of that kind): sets (first writes,
    overwrites, re-writes after deletes), deletes, distractors, queries.  Keys are indices into
    the episode's key ids; times order the items (:func:`_reading_order`)."""

    set_key: np.ndarray
    set_t: np.ndarray
    set_val: np.ndarray
    set_silent_write: np.ndarray  # bool: the set has no write signal
    del_key: np.ndarray
    del_t: np.ndarray
    dis_key: np.ndarray
    dis_t: np.ndarray
    dis_val: np.ndarray
    dis_kind: np.ndarray  # index into KINDS
    dis_alias: np.ndarray  # the look-alike key id of a lookalike distractor, else -1
    q_key: np.ndarray
    q_t: np.ndarray
    ask_pref: np.ndarray  # the ask drawn for each query (kept only where it is defined)
    ask_u: np.ndarray  # uniform draw that picks the k of a version ask

    def by_kind(self) -> list[tuple]:
        """The :data:`KIND_COLUMNS` of each kind, in the order of the drawn arrays; a scalar
        stands for a whole kind."""
        return [
            (ITEM_SET, self.set_key, self.set_t, self.set_val, self.set_silent_write, 0, -1),
            (ITEM_DELETE, self.del_key, self.del_t, ABSENT, False, 0, -1),
            (ITEM_DISTRACTOR, self.dis_key, self.dis_t, self.dis_val, False, self.dis_kind, self.dis_alias),
            (ITEM_QUERY, self.q_key, self.q_t, ABSENT, False, 0, -1),
        ]


def build_program(plan: Plan, streams: Streams, key_space: int, key_tokens: int,
                  value_space: int) -> Program:
    """Generate ``streams.batch`` episodes following ``plan`` and replay them.

    Keys are ``plan.keys`` written keys and ``plan.absent`` never-written ones, distinct per
    episode (a keyed permutation of the key space); every value-bearing event gets a distinct
    value (a keyed permutation of the value space), so a value id names one event.
    """
    key_ids = streams.permutation_index("keys", plan.keys + plan.absent, key_space)  # (B, KT)
    t_first, set_key, set_t, del_key, del_t = _draw_sets(plan, streams)
    set_silent_write = _draw_silent_writes(plan, streams, set_key)
    dis_key, dis_t, dis_kind, dis_alias = _draw_distractors(plan, streams, key_ids, key_space, key_tokens)
    vals = streams.permutation_index("values", plan.valued, value_space)  # distinct per episode
    S = set_key.shape[1]
    facts = _key_facts(set_key, set_t, set_silent_write, del_key, del_t, dis_key, plan.keys, key_ids.shape[1])
    q_key, q_t, ask_pref, ask_u = _draw_queries(plan, streams, facts, t_first)
    items = _Items(set_key, set_t, vals[:, :S], set_silent_write, del_key, del_t, dis_key, dis_t, vals[:, S:],
                   dis_kind, dis_alias, q_key, q_t, ask_pref, ask_u)

    order = _reading_order(items, plan.interleaved)
    p = _unfilled_program(*order.shape)
    if jit.pays(order.size):
        _assemble_compiled(p, order, items, key_ids, facts, plan)
    else:
        _assemble(p, order, items, key_ids, facts, plan)
    return replay_program(p)


def _draw_sets(plan: Plan, streams: Streams) -> tuple[np.ndarray, ...]:
    """Keys and times of the sets (first writes, then overwrites, then re-writes) and of the
    deletes: ``(t_first, set_key, set_t, del_key, del_t)``, each (B, count)."""
    B, K = streams.batch, plan.keys
    rows = np.arange(B)[:, None]
    t_first = streams.uniform("t_first", K)  # (B, K)
    ow_key = streams.integers("overwrite_key", plan.overwrites, K)
    ow_t = t_first[rows, ow_key]
    ow_t = ow_t + (1 - ow_t) * streams.uniform("overwrite_t", plan.overwrites)
    del_key = streams.permutation_index("delete_key", plan.deletes, K) if plan.deletes else \
        np.zeros((B, 0), dtype=np.int64)
    del_t = t_first[rows, del_key]
    del_t = del_t + (1 - del_t) * streams.uniform("delete_t", plan.deletes)
    R = plan.rewrites  # the first R deleted keys are written again
    rw_key = del_key[:, :R]
    rw_t = del_t[:, :R] + (1 - del_t[:, :R]) * streams.uniform("rewrite_t", R)
    set_key = np.concatenate([np.broadcast_to(np.arange(K), (B, K)), ow_key, rw_key], axis=1)
    set_t = np.concatenate([t_first, ow_t, rw_t], axis=1)
    return t_first, set_key, set_t, del_key, del_t


def _draw_silent_writes(plan: Plan, streams: Streams, set_key: np.ndarray) -> np.ndarray:
    """(B, S) bool: which sets are silent writes, per key (all sets of a key alike) or per set.
    The stream is named ``silent``: a stream's name seeds its draws, so it stays."""
    if plan.silent_write_per_key:
        key_silent_write = streams.uniform("silent", plan.keys) < plan.silent_share
        return key_silent_write[np.arange(streams.batch)[:, None], set_key]
    return streams.uniform("silent", set_key.shape[1]) < plan.silent_share


def _draw_distractors(plan: Plan, streams: Streams, key_ids: np.ndarray, key_space: int,
                      key_tokens: int) -> tuple[np.ndarray, ...]:
    """Keys, times, kinds (index into KINDS) and look-alike key ids (-1 unless ``lookalike``) of
    the distractors: ``(dis_key, dis_t, dis_kind, dis_alias)``, each (B, X)."""
    B, X = streams.batch, plan.distractors
    dis_key = streams.integers("distractor_key", X, key_ids.shape[1] if plan.distract_absent else plan.keys)
    kind_codes = np.array([KINDS.index(k) for k in plan.kinds], dtype=np.int8)
    dis_kind = kind_codes[streams.integers("distractor_kind", X, len(kind_codes))] if X else \
        np.zeros((B, 0), dtype=np.int8)
    dis_t = streams.uniform("distractor_t", X)
    dis_alias = _aliases(streams, key_ids, key_ids[np.arange(B)[:, None], dis_key], key_space, key_tokens)
    dis_alias = np.where(dis_kind == KINDS.index("lookalike"), dis_alias, -1)
    return dis_key, dis_t, dis_kind, dis_alias


def _key_facts(set_key: np.ndarray, set_t: np.ndarray, set_silent_write: np.ndarray, del_key: np.ndarray,
               del_t: np.ndarray, dis_key: np.ndarray, K: int, KT: int) -> KeyFacts:
    """Per-key facts at the end of each episode, (B, KT) each, for the query policy: ``K``
    written keys, ``KT - K`` never-written ones."""
    B, S = set_key.shape
    rows = np.arange(B)[:, None]
    written = np.zeros((B, KT), dtype=bool)
    written[:, :K] = True  # key indices below K are the written keys, above the never-written ones
    last_set_t, last_del_t = np.full((B, KT), -1.0), np.full((B, KT), -1.0)
    last_silent_write = np.zeros((B, KT), dtype=bool)
    if jit.pays(B * S):  # the compiled twin of the lines below
        nvals, distracted, deleted = np.zeros((B, KT), dtype=np.int64), np.zeros((B, KT), bool), np.zeros((B, KT), bool)
        _key_facts_kernel(set_key, set_t, np.ascontiguousarray(set_silent_write), del_key, del_t, dis_key, nvals,
                          distracted, deleted, last_set_t, last_del_t, last_silent_write)
    else:
        nvals = _count(set_key, KT)
        distracted = _count(dis_key, KT) > 0
        deleted = _count(del_key, KT) > 0
        np.maximum.at(last_set_t, (np.broadcast_to(rows, set_key.shape), set_key), set_t)
        np.maximum.at(last_del_t, (np.broadcast_to(rows, del_key.shape), del_key), del_t)
        # silent_write flag of the last set of each key (set times are distinct draws)
        is_last = set_t == last_set_t[rows, set_key]
        last_silent_write[np.broadcast_to(rows, set_key.shape)[is_last], set_key[is_last]] = set_silent_write[is_last]
    holds = written & (last_set_t > last_del_t)
    return KeyFacts(written, nvals, distracted, deleted, holds, last_silent_write)


def _draw_queries(plan: Plan, streams: Streams, facts: KeyFacts, t_first: np.ndarray) -> tuple[np.ndarray, ...]:
    """Keys, times and drawn asks of the queries: ``(q_key, q_t, ask_pref, ask_u)``, each (B, Q).
    Keys are ranked by the plan's policy (ties at random) and asked in that order, cycling over
    the candidates; end queries come after every event, interleaved ones after the first write
    of their key."""
    B, K, Q = streams.batch, plan.keys, plan.queries
    rows = np.arange(B)[:, None]
    prio = plan.priority(facts).astype(np.float64)
    score = np.where(prio >= 0, prio + streams.uniform("query_tie", facts.written.shape[1]), -np.inf)
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
    return q_key, q_t, ask_pref, ask_u


def _reading_order(items: _Items, interleaved: bool) -> np.ndarray:
    """(B, n_items): for each reading position, the index of its item among the drawn arrays
    laid end to end (sets, deletes, distractors, queries)."""
    times = np.concatenate([kind[KIND_COLUMNS.index("t")] for kind in items.by_kind()], axis=1)
    if interleaved:
        return _argsort_rows(times)
    # end queries come after every event, in their own order: sort the events only
    B, n_items = times.shape
    n_events = n_items - items.q_key.shape[1]
    order = np.empty((B, n_items), dtype=np.int64)
    order[:, :n_events] = _argsort_rows(times[:, :n_events])
    order[:, n_events:] = np.arange(n_events, n_items)
    return order


def _unfilled_program(B: int, n_items: int) -> Program:
    """A program whose fields the assembly fills (asks start as ``latest``, ``k`` as 0)."""
    return Program(
        item=np.empty((B, n_items), dtype=np.int8), key=np.empty((B, n_items), dtype=np.int64),
        value=np.empty((B, n_items), dtype=np.int64), silent_write=np.empty((B, n_items), dtype=bool),
        kind=np.empty((B, n_items), dtype=np.int8), alias=np.empty((B, n_items), dtype=np.int64),
        ask=np.zeros((B, n_items), dtype=np.int8), k=np.zeros((B, n_items), dtype=np.int64))


def _flat_order(order: np.ndarray) -> np.ndarray:
    """``order`` as flat indices into the (B, n_items) arrays laid end to end."""
    B, n_items = order.shape
    return (order + np.arange(0, B * n_items, n_items)[:, None]).reshape(-1)


def _assemble(p: Program, order: np.ndarray, items: _Items, key_ids: np.ndarray, facts: KeyFacts,
              plan: Plan) -> None:
    """Fill ``p`` with the items in reading order, then the asks (numpy)."""
    B, KT = key_ids.shape
    flat_order = _flat_order(order)
    by_kind = items.by_kind()

    for column, field in enumerate(KIND_COLUMNS):  # each field of every kind, in reading order
        if field != "t":
            getattr(p, field).reshape(-1)[:] = np.concatenate(
                [np.broadcast_to(kind[column], kind[1].shape) for kind in by_kind], axis=1).reshape(-1)[flat_order]
    # key indices, then the episode's key ids
    p.key[:] = key_ids.reshape(-1)[(p.key + np.arange(0, B * KT, KT)[:, None]).reshape(-1)].reshape(p.shape)
    _set_asks(p, flat_order, items, facts, plan)


def _assemble_compiled(p: Program, order: np.ndarray, items: _Items, key_ids: np.ndarray, facts: KeyFacts,
                       plan: Plan) -> None:
    """:func:`_assemble` by its compiled twin: the kernel fills the items and, for end queries,
    their asks; interleaved queries take their asks from numpy (they need the history)."""
    end_asks = not plan.interleaved
    _assemble_kernel(order, items.set_key, items.set_val, items.set_silent_write, items.del_key, items.dis_key,
                     items.dis_val, items.dis_kind, items.dis_alias, items.q_key, key_ids, items.ask_pref,
                     items.ask_u, facts.values, facts.holds, plan.max_version, end_asks,
                     p.item, p.key, p.value, p.silent_write, p.kind, p.alias, p.ask, p.k)
    if not end_asks:
        _set_asks(p, _flat_order(order), items, facts, plan)


def _set_asks(p: Program, flat_order: np.ndarray, items: _Items, facts: KeyFacts, plan: Plan) -> None:
    """The asks of ``p``'s queries, only where defined: version k needs k values, previous needs
    two, both a current value; otherwise the query asks for the latest value."""
    # work on the queries only: qpos are their flat positions in reading order, (q_row, q_col)
    # where they were drawn
    n_items = p.shape[1]
    qpos = np.flatnonzero(p.item.reshape(-1) == ITEM_QUERY)
    src = flat_order[qpos]
    q_row, q_col = src // n_items, src % n_items - (n_items - items.q_key.shape[1])
    if plan.interleaved:
        n_values, q_holds = (a.reshape(-1)[qpos] for a in query_history(p))
    else:  # every query comes after every event: the final facts of its key decide
        q_kidx = items.q_key[q_row, q_col]
        n_values, q_holds = facts.values[q_row, q_kidx], facts.holds[q_row, q_kidx]
    ask_q, ku_q = items.ask_pref[q_row, q_col], items.ask_u[q_row, q_col]
    want_v = (ask_q == ASK_VERSION) & q_holds & (n_values >= 1)
    want_p = (ask_q == ASK_PREVIOUS) & q_holds & (n_values >= 2)
    top = np.minimum(n_values, plan.max_version)
    p.k.reshape(-1)[qpos] = np.where(want_v, 1 + np.minimum((ku_q * top).astype(np.int64), top - 1), 0)
    p.ask.reshape(-1)[qpos] = np.where(want_v, ASK_VERSION, np.where(want_p, ASK_PREVIOUS, ASK_LATEST))


@jit.kernel
def _assemble_kernel(order, set_key, set_val, set_silent_write, del_key, dis_key, dis_val, dis_kind, dis_alias, q_key,
                     key_ids, ask_pref, ask_u, nvals, holds, max_version, end_asks, item, key, value, silent_write,
                     kind, alias, ask, k):  # pragma: no cover - compiled
    """The items of :func:`_assemble` in reading order, a row at a time: each position takes
    the fields of the item ``order`` puts there (sets, deletes, distractors, queries, in that
    order of the drawn arrays); with ``end_asks``, also the queries' asks, from their key's
    final facts (:func:`_set_asks`).  The same values as the numpy lines."""
    S, D, X = set_key.shape[1], del_key.shape[1], dis_key.shape[1]
    for b in range(order.shape[0]):
        for j in range(order.shape[1]):
            s = order[b, j]
            kd, val, sw, kn, al = 0, ABSENT, False, 0, -1
            if s < S:
                it, kd, val, sw = ITEM_SET, set_key[b, s], set_val[b, s], set_silent_write[b, s]
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
            silent_write[b, j] = sw
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
def _key_facts_kernel(set_key, set_t, set_silent_write, del_key, del_t, dis_key, nvals, distracted, deleted,
                      last_set_t, last_del_t, last_silent_write):  # pragma: no cover - compiled
    """The per-key facts of :func:`_key_facts` (counts, flags, last times, the silent_write flag
    of the last set), a row at a time: the same values as its numpy lines."""
    for b in range(set_key.shape[0]):
        for i in range(set_key.shape[1]):
            k = set_key[b, i]
            nvals[b, k] += 1
            last_set_t[b, k] = max(last_set_t[b, k], set_t[b, i])
        for i in range(set_key.shape[1]):  # in order: the last of equal times wins, as numpy's assignment
            k = set_key[b, i]
            if set_t[b, i] == last_set_t[b, k]:
                last_silent_write[b, k] = set_silent_write[b, i]
        for i in range(del_key.shape[1]):
            k = del_key[b, i]
            deleted[b, k] = True
            last_del_t[b, k] = max(last_del_t[b, k], del_t[b, i])
        for i in range(dis_key.shape[1]):
            distracted[b, dis_key[b, i]] = True
