"""The compiled twin of :func:`memgen.ir.replay.replay_program`: the same semantics, one episode
at a time, in a numba loop.

Why a second path: the vectorised numpy interpreter does every step as a pass over all items
of the batch, which is memory-bound once an episode holds many short items (1,024-token
episodes with 64 keys and 64 queries spend most of their generation time there).  Walking
each episode once, in reading order, with per-key state is the obvious interpreter, and
compiled it is several times faster.  ``memgen.ir.replay.replay_program`` stays the reference
for this twin: it uses this path only for large batches whose value ids are distinct (what
generators make), and the tests check that both give the same arrays, field by field.

Two passes: :func:`_count` sizes the five ragged outputs from running counts (closed forms,
no lists built); :func:`_walk` fills every output, and checks each query's lists against the
counted lengths.  Every kernel here is declared with :func:`memgen.ir.jit.kernel`; the helpers
of the two passes are inlined into them (by numba where they take no arrays or run once per
episode, by LLVM where they run once per query; see the comment above :func:`_number_keys`).

numba is optional: without it, or with ``MEMGEN_KERNELS=0`` in the environment, the numpy
path runs.  Compiled code is cached on disk (``cache=True``), so only the first run on a
machine pays for compiling (a few seconds); later processes load it (about 0.5 s with
numba's import, once per process).
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
    ITEM_PAD,
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
from memgen.ir import jit

#: ragged outputs, in the order of the count and offset rows
RAGGED = ("stale", "distractor", "deleted", "other_keys", "evidence")
_BIG = np.iinfo(np.int64).max


# ---- the hash table that numbers an episode's keys (and finds repeated values)


@jit.kernel
def _table(n):  # pragma: no cover - compiled
    """An empty open-addressing hash table for up to ``n`` entries (load at most 1/2):
    ``entry_key, entry_stamp, entry_number, mask``, per bucket the key stored there, the stamp it
    was stored under and a number the caller gives it."""
    size = 1
    while size < 2 * n:
        size *= 2
    return np.empty(size, np.int64), np.full(size, -1, np.int64), np.empty(size, np.int64), size - 1


@jit.kernel(inline=True)
def _lookup(entry_key, entry_stamp, stamp, x, mask):  # pragma: no cover - compiled
    """The bucket of ``x`` and whether ``x`` was already there under ``stamp`` (if not, it is
    stored there now).  Entries of other stamps count as empty, so one table serves every
    episode without being cleared."""
    h = (x * 0x9E3779B1) & mask
    while entry_stamp[h] == stamp:
        if entry_key[h] == x:
            return h, True
        h = (h + 1) & mask
    entry_stamp[h] = stamp
    entry_key[h] = x
    return h, False


# ---- what a query asks (both passes)


@jit.kernel(inline=True)
def _deciding_rank(ask, k, n_sets):  # pragma: no cover - compiled
    """Which of its key's sets decides a query's answer, 1-based among the ``n_sets`` sets so far
    (the answer is that set's value if the key holds a value now): the last for a latest ask,
    the k-th for a version ask, the last but one for a previous ask; 0 where the ask is not
    defined."""
    if ask == ASK_VERSION:
        return k if k >= 1 and k <= n_sets else 0
    if ask == ASK_PREVIOUS:
        return n_sets - 1 if n_sets >= 2 else 0
    return n_sets


# ---- pass 1: the lengths of the lists


@jit.kernel(inline=True)
def _list_lengths(ask, k, holds, changed, n_sets, n_distractors, sets_at_delete,
                  holding):  # pragma: no cover - compiled
    """The lengths of one query's five lists (``RAGGED`` order) when values are distinct: the
    stale trap is the key's sets so far but the answer's; the distractor trap, every distractor
    of the key so far; the deleted trap, its sets before its last delete but the answer's; the
    other keys' trap, one value per other key that holds one now (``holding`` keys hold one);
    evidence, the deciding set, the current set of a version/previous ask when that is another
    set, and the delete that emptied the key.  ``changed``: the key was set or deleted before."""
    rank = _deciding_rank(ask, k, n_sets)
    defined = holds and rank > 0
    stale = n_sets - (1 if defined else 0)
    deleted = sets_at_delete - (1 if defined and rank <= sets_at_delete else 0)
    other_keys = holding - (1 if holds else 0)
    evidence = ((1 if defined else 0) + (1 if defined and ask != ASK_LATEST and rank != n_sets else 0)
                + (1 if not holds and changed else 0))
    return stale, n_distractors, deleted, other_keys, evidence


@jit.kernel
def _count(item, key, value, ask, kreq, N, offsets):  # pragma: no cover - compiled
    """Pass 1: the ``offsets`` (5, B*N + 1) of the five ragged outputs, from running counts per
    key alone (no lists are built; see :func:`_list_lengths`).  Returns False if some episode
    repeats a value id (the caller then uses the numpy path)."""
    B = item.size // N
    entry_key, entry_stamp, entry_number, mask = _table(N)
    n_sets = np.empty(N, np.int64)  # per key: sets and distractors so far; sets before its last delete
    n_distractors = np.empty(N, np.int64)
    sets_at_delete = np.empty(N, np.int64)
    holds = np.empty(N, np.bool_)  # the key holds a value now
    changed = np.empty(N, np.bool_)  # the key was set or deleted
    tot0 = tot1 = tot2 = tot3 = tot4 = 0
    for b in range(B):
        base = b * N
        for j in range(N):
            v = value[base + j]
            if v >= 0 and _lookup(entry_key, entry_stamp, 2 * b, v, mask)[1]:
                return False
        n_keys = 0
        holding = 0  # keys holding a value now
        for j in range(N):
            f = base + j
            offsets[0, f] = tot0
            offsets[1, f] = tot1
            offsets[2, f] = tot2
            offsets[3, f] = tot3
            offsets[4, f] = tot4
            it = item[f]
            if it == ITEM_PAD:
                continue
            h, seen = _lookup(entry_key, entry_stamp, 2 * b + 1, key[f], mask)
            if not seen:  # keys numbered in order of first appearance
                entry_number[h] = n_keys
                n_sets[n_keys] = 0
                n_distractors[n_keys] = 0
                sets_at_delete[n_keys] = 0
                holds[n_keys] = False
                changed[n_keys] = False
                n_keys += 1
            s = entry_number[h]
            if it == ITEM_SET:
                if not holds[s]:
                    holding += 1
                n_sets[s] += 1
                holds[s] = True
                changed[s] = True
            elif it == ITEM_DELETE:
                if holds[s]:
                    holding -= 1
                sets_at_delete[s] = n_sets[s]
                holds[s] = False
                changed[s] = True
            elif it == ITEM_DISTRACTOR:
                n_distractors[s] += 1
            else:
                l0, l1, l2, l3, l4 = _list_lengths(ask[f], kreq[f], holds[s], changed[s], n_sets[s],
                                                   n_distractors[s], sets_at_delete[s], holding)
                tot0 += l0
                tot1 += l1
                tot2 += l2
                tot3 += l3
                tot4 += l4
    offsets[0, B * N] = tot0
    offsets[1, B * N] = tot1
    offsets[2, B * N] = tot2
    offsets[3, B * N] = tot3
    offsets[4, B * N] = tot4
    return True


# ---- pass 2, once per episode: what its walk looks up.  These helpers are inlined by numba
# (inline=True).  The per-query helpers that are handed arrays further down are plain kernels
# instead: numba's inlining adds reference counting of the arrays it hands over on every call
# (all of them inlined so, _walk measured a quarter slower), while these small plain calls
# measured as fast as the loops written in place (LLVM inlines them).


@jit.kernel(inline=True)
def _number_keys(item, key, base, N, stamp, entry_key, entry_stamp, entry_number, mask, key_id, rank,
                 key_of):  # pragma: no cover - compiled
    """Number the distinct keys of the episode at ``base`` in key order: ``key_of[j]`` is the
    number of item j's key (pads left as they are).  Returns how many keys there are."""
    n_keys = 0
    for j in range(N):
        if item[base + j] != ITEM_PAD:
            h, seen = _lookup(entry_key, entry_stamp, stamp, key[base + j], mask)
            if not seen:  # first numbered in order of first appearance
                entry_number[h] = n_keys
                key_id[n_keys] = key[base + j]
                n_keys += 1
            key_of[j] = entry_number[h]
    by_key = np.argsort(key_id[:n_keys])
    for r in range(n_keys):
        rank[by_key[r]] = r
    for j in range(N):
        if item[base + j] != ITEM_PAD:
            key_of[j] = rank[key_of[j]]
    return n_keys


@jit.kernel(inline=True)
def _index_history(item, base, N, key_of, n_keys, set_off, set_pos, dis_off, dis_pos, fill_at, next_change,
                   kill, episode_sets):  # pragma: no cover - compiled
    """Each key's sets and distractors by episode position, in reading order (key s's sets are
    ``set_pos[set_off[s]:set_off[s + 1]]``, its distractors likewise in ``dis_pos``); the
    episode's sets in reading order (``episode_sets``); for each set's position, the position
    of its key's next change (``kill``: set or delete; int64 max if none).  Returns how many
    sets the episode has and the position of its last change (-1 if none)."""
    for s in range(n_keys + 1):
        set_off[s] = 0
        dis_off[s] = 0
    n_episode_sets = 0
    for j in range(N):
        it = item[base + j]
        if it == ITEM_SET:
            set_off[key_of[j] + 1] += 1
            episode_sets[n_episode_sets] = j
            n_episode_sets += 1
        elif it == ITEM_DISTRACTOR:
            dis_off[key_of[j] + 1] += 1
    for s in range(n_keys):
        set_off[s + 1] += set_off[s]
        dis_off[s + 1] += dis_off[s]
    for s in range(n_keys):
        fill_at[s] = set_off[s]
        next_change[s] = _BIG
    for j in range(N):
        if item[base + j] == ITEM_SET:
            set_pos[fill_at[key_of[j]]] = j
            fill_at[key_of[j]] += 1
    for s in range(n_keys):
        fill_at[s] = dis_off[s]
    for j in range(N):
        if item[base + j] == ITEM_DISTRACTOR:
            dis_pos[fill_at[key_of[j]]] = j
            fill_at[key_of[j]] += 1
    last_change = -1
    for j in range(N - 1, -1, -1):
        it = item[base + j]
        if it == ITEM_SET or it == ITEM_DELETE:
            if last_change < 0:
                last_change = j
            if it == ITEM_SET:
                kill[j] = next_change[key_of[j]]
            next_change[key_of[j]] = j
    return n_episode_sets, last_change


@jit.kernel(inline=True)
def _final_state(item, value, base, N, key_of, n_keys, last, last_is_set, finals_before, final_key,
                 final_twice):  # pragma: no cover - compiled
    """The final list: the values the keys hold at the end of the episode, in key order
    (``final_key``: their key numbers), written twice in ``final_twice`` so that every rotation
    of it is one window; ``finals_before[s]``: how many keys before key s hold a final value.
    Returns the length of the list.  (``last``, ``last_is_set``: scratch.)"""
    for s in range(n_keys):
        last[s] = -1
        last_is_set[s] = False
    for j in range(N):
        it = item[base + j]
        if it == ITEM_SET or it == ITEM_DELETE:
            last[key_of[j]] = j
            last_is_set[key_of[j]] = it == ITEM_SET
    n_final = 0
    for s in range(n_keys):
        finals_before[s] = n_final
        if last_is_set[s]:
            final_key[n_final] = s
            final_twice[n_final] = value[base + last[s]]
            n_final += 1
    for i in range(n_final):
        final_twice[n_final + i] = final_twice[i]
    return n_final


@jit.kernel(inline=True)
def _clear(n_keys, n_sets, n_dis, n_del, last, last_is_set, last_delete):  # pragma: no cover - compiled
    """The running state of keys 0 ... n_keys - 1 before an episode's first item."""
    for s in range(n_keys):
        n_sets[s] = 0
        n_dis[s] = 0
        n_del[s] = 0
        last[s] = -1
        last_is_set[s] = False
        last_delete[s] = -1


# ---- pass 2, once per query


@jit.kernel(inline=True)
def _probe_of(ask, n_deletes, n_distractors, current_is_silent, n_sets):  # pragma: no cover - compiled
    """A query's probe, by the precedence of :func:`memgen.ir.replay.replay_program`."""
    if ask != ASK_LATEST:
        return PROBE_VERSION
    if n_deletes > 0:
        return PROBE_DISCARD
    if n_distractors > 0:
        return PROBE_DISTRACTOR
    if current_is_silent:
        return PROBE_NO_WRITE_SIGNAL
    if n_sets >= 2:
        return PROBE_OVERWRITE
    return PROBE_WRITE


@jit.kernel
def _history_traps(value, base, set_pos, first_set, n_sets, last_delete, answer, stale, at_stale, deleted,
                   at_deleted):  # pragma: no cover - compiled
    """The stale trap (the key's values so far but the answer) at ``stale[at_stale:]`` and the
    deleted trap (those set before its last delete) at ``deleted[at_deleted:]``, in reading
    order.  The key's sets so far are ``set_pos[first_set:first_set + n_sets]``.  Returns the
    two lengths."""
    n_stale = 0
    n_deleted = 0
    for i in range(first_set, first_set + n_sets):
        p = set_pos[i]
        v = value[base + p]
        if v != answer:
            stale[at_stale + n_stale] = v
            n_stale += 1
            if p < last_delete:
                deleted[at_deleted + n_deleted] = v
                n_deleted += 1
    return n_stale, n_deleted


@jit.kernel
def _distractor_trap(value, base, dis_pos, first_dis, n_distractors, answer, distractor,
                     at):  # pragma: no cover - compiled
    """The distractor trap (values stated by the key's distractors so far, but the answer) at
    ``distractor[at:]``, in reading order.  Returns its length."""
    n = 0
    for i in range(first_dis, first_dis + n_distractors):
        v = value[base + dis_pos[i]]
        if v != answer:
            distractor[at + n] = v
            n += 1
    return n


@jit.kernel
def _copy_window(dst, at, src, first, n):  # pragma: no cover - compiled
    """``dst[at:at + n] = src[first:first + n]``.  Unsigned indices spare numba's negative-index
    checks, so the copy is vectorised (most of a shard's bytes are other keys' traps, copied
    here)."""
    u, uf = np.uintp(at), np.uintp(first)
    for i in range(np.uintp(n)):
        dst[u + i] = src[uf + i]


@jit.kernel(inline=True)
def _evidence_items(ask, deciding, current, holds):  # pragma: no cover - compiled
    """A query's evidence as three episode positions, -1 for none: the deciding set (-1 when the
    answer is absent); for a version/previous ask the current value's set, when that is another
    set; for a key emptied by a delete, that delete (``current``: the key's last change)."""
    again = current if deciding >= 0 and ask != ASK_LATEST and current != deciding else -1
    emptied = current if not holds and current >= 0 else -1
    return deciding, again, emptied


# ---- pass 2


@jit.kernel
def _walk(item, key, value, silent, ask, kreq, N, op, version, answer, probe, offsets,
          stale, distractor, deleted, other_keys, evidence):  # pragma: no cover - compiled
    """Pass 2: interpret every episode (rows of N items, flat arrays) in reading order, with
    per-key state: the scalar outputs and the lists, at the offsets of pass 1.  Returns the flat
    index of the first query whose lists do not have pass 1's lengths (each list has N entries
    of slack, so a mismatch never writes outside it), or -1."""
    B = item.size // N
    entry_key, entry_stamp, entry_number, mask = _table(N)
    # per item of an episode: its key's number, keys numbered in key order (see _number_keys)
    key_of, key_id, rank = np.empty(N, np.int64), np.empty(N, np.int64), np.empty(N, np.int64)
    # per key and per set (see _index_history)
    set_off, set_pos = np.empty(N + 1, np.int64), np.empty(N, np.int64)
    dis_off, dis_pos, fill_at = np.empty(N + 1, np.int64), np.empty(N, np.int64), np.empty(N, np.int64)
    episode_sets, kill, next_change = np.empty(N, np.int64), np.empty(N, np.int64), np.empty(N, np.int64)
    # the final list (see _final_state)
    finals_before, final_key = np.empty(N + 1, np.int64), np.empty(N, np.int64)
    final_twice = np.empty(2 * N, other_keys.dtype)
    # running, per key: sets, distractors and deletes so far; its last change (set or delete,
    # -1 if none) and whether that was a set; its last delete
    n_sets, n_dis, n_del = np.empty(N, np.int64), np.empty(N, np.int64), np.empty(N, np.int64)
    last, last_is_set, last_delete = np.empty(N, np.int64), np.empty(N, np.bool_), np.empty(N, np.int64)
    for b in range(B):
        base = b * N
        n_keys = _number_keys(item, key, base, N, b, entry_key, entry_stamp, entry_number, mask, key_id, rank,
                              key_of)
        n_episode_sets, last_change = _index_history(item, base, N, key_of, n_keys, set_off, set_pos, dis_off,
                                                     dis_pos, fill_at, next_change, kill, episode_sets)
        n_final = _final_state(item, value, base, N, key_of, n_keys, last, last_is_set, finals_before, final_key,
                               final_twice)
        _clear(n_keys, n_sets, n_dis, n_del, last, last_is_set, last_delete)
        for j in range(N):
            f = base + j
            it = item[f]
            if it == ITEM_PAD:
                continue
            s = key_of[j]
            if it == ITEM_SET:
                op[f] = OP_SILENT_WRITE if silent[f] else (OP_OVERWRITE if last_is_set[s] else OP_WRITE)
                version[f] = n_sets[s] + 1
                n_sets[s] += 1
                last[s] = j
                last_is_set[s] = True
            elif it == ITEM_DELETE:
                op[f] = OP_DELETE
                n_del[s] += 1
                last[s] = j
                last_is_set[s] = False
                last_delete[s] = j
            elif it == ITEM_DISTRACTOR:
                op[f] = OP_DISTRACTOR
                n_dis[s] += 1
            else:  # a query: answered against the state at its own position
                current = last[s]
                holds = last_is_set[s]
                deciding = -1  # the position of the set that decides the answer; -1: absent
                if holds:
                    r = _deciding_rank(ask[f], kreq[f], n_sets[s])
                    if r == n_sets[s]:
                        deciding = current  # (the key's last set, as it holds a value)
                    elif r > 0:
                        deciding = set_pos[set_off[s] + r - 1]
                ans = value[base + deciding] if deciding >= 0 else ABSENT
                answer[f] = ans
                probe[f] = _probe_of(ask[f], n_del[s], n_dis[s], holds and silent[base + current], n_sets[s])
                o0, o1, o2, o3, o4 = offsets[0, f], offsets[1, f], offsets[2, f], offsets[3, f], offsets[4, f]
                n0, n2 = _history_traps(value, base, set_pos, set_off[s], n_sets[s], last_delete[s], ans, stale,
                                        o0, deleted, o2)
                n1 = _distractor_trap(value, base, dis_pos, dis_off[s], n_dis[s], ans, distractor, o1)
                if j > last_change:  # the final list from the first key after s, wrapping, without s
                    first = finals_before[s] + (1 if finals_before[s] < n_final
                                                and final_key[finals_before[s]] == s else 0)
                    n3 = n_final - (first - finals_before[s])
                    _copy_window(other_keys, o3, final_twice, first, n3)  # (values distinct: no answer)
                else:  # the sets before j, still alive at j, of other keys, in reading order
                    n3 = 0  # (a loop here: as a helper kernel it measured 7% slower)
                    for i in range(n_episode_sets):
                        p = episode_sets[i]
                        if p >= j:
                            break
                        if kill[p] > j and key_of[p] != s:
                            other_keys[o3 + n3] = value[base + p]
                            n3 += 1
                n4 = 0
                for e in _evidence_items(ask[f], deciding, current, holds):
                    if e >= 0:
                        evidence[o4 + n4] = base + e
                        n4 += 1
                if (n0 != offsets[0, f + 1] - o0 or n1 != offsets[1, f + 1] - o1 or n2 != offsets[2, f + 1] - o2
                        or n3 != offsets[3, f + 1] - o3 or n4 != offsets[4, f + 1] - o4):
                    return f
    return -1


def replay(item, key, value, silent, ask, kreq, other_keys_dtype=np.int32):
    """The outputs of :func:`memgen.ir.replay.replay_program` for a (B, N) program, or None when some
    episode repeats a value id.  Returns ``(op, version, answer, probe, traps, evidence)`` with
    flat (B*N) arrays and ragged ``(offsets, values)`` pairs over flat item indices."""
    B, N = item.shape
    size = B * N
    flat = lambda a: np.ascontiguousarray(a).reshape(-1)  # noqa: E731
    args = (flat(item), flat(key).astype(np.int64, copy=False), flat(value).astype(np.int64, copy=False),
            flat(silent), flat(ask), flat(kreq).astype(np.int64, copy=False), N)
    op = np.full(size, -1, dtype=np.int8)
    version = np.zeros(size, dtype=np.int64)
    answer = np.full(size, ABSENT, dtype=np.int64)
    probe = np.full(size, -1, dtype=np.int8)
    offsets = np.empty((5, size + 1), dtype=np.int64)
    if not _count(args[0], args[1], args[2], args[4], args[5], N, offsets):
        return None
    total = offsets[:, -1]
    lists = [np.empty(int(total[i]) + N, dtype=other_keys_dtype if name == "other_keys" else np.int64)
             for i, name in enumerate(RAGGED)]  # N entries of slack: see _walk
    bad = _walk(*args, op, version, answer, probe, offsets, *lists)
    if bad >= 0:  # a bug, never data: the two passes disagree
        raise AssertionError(f"compiled replay: the lists of item {bad} do not have their counted lengths")
    lists = [v[:int(total[i])] for i, v in enumerate(lists)]
    traps = {name: (offsets[i], lists[i]) for i, name in enumerate(RAGGED[:4])}
    return op, version, answer, probe, traps, (offsets[4], lists[4])
