"""The compiled fast path of :func:`memgen.ir.replay.replay_program`: the same semantics, one episode
at a time, in a numba loop.

Why a second path: the vectorised numpy interpreter does every step as a pass over all items
of the batch, which is memory-bound once an episode holds many short items (1,024-token
episodes with 64 keys and 64 queries spend most of their generation time there).  Walking
each episode once, in reading order, with per-key state is the obvious interpreter, and
compiled it is several times faster.  ``memgen.ir.replay.replay_program`` stays the reference: it
uses this path only for large batches whose value ids are distinct (what generators make),
and the tests check that both give the same arrays, field by field.

numba is optional: without it, or with ``MEMGEN_KERNELS=0`` in the environment, the numpy
path runs.  Compiled code is cached on disk (``cache=True``), so only the first run on a
machine pays for compiling (a few seconds); later processes load it (about 0.5 s with
numba's import, once per process).
"""

from __future__ import annotations

import functools

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


def _compiled():
    """``(count, walk)``, compiled once per process (under the lock: never twice)."""
    with jit.LOCK:
        return _compile()


@functools.cache
def _compile():
    """The compiled kernels (compiled once per machine, then loaded from numba's disk cache)."""
    import numba

    jit = functools.partial(numba.njit, cache=True, nogil=True)
    global _probe, _table
    _probe = jit(inline="always")(_probe)  # the kernels below call them by these global names
    _table = jit(_table)
    return jit(_count), jit(_walk)


def _probe(table_key, table_stamp, stamp, x, mask):  # pragma: no cover - compiled
    """Open addressing: the index of ``x`` in the hash table, and whether it was already
    there (entries of other stamps count as empty, so a table is reused without clearing)."""
    h = (x * 0x9E3779B1) & mask
    while table_stamp[h] == stamp:
        if table_key[h] == x:
            return h, True
        h = (h + 1) & mask
    table_stamp[h] = stamp
    table_key[h] = x
    return h, False


def _table(N):  # pragma: no cover - compiled
    """An open-addressing table for up to N keys (load at most 1/2): keys, stamps, slots, mask."""
    H = 1
    while H < 2 * N:
        H *= 2
    return np.empty(H, np.int64), np.full(H, -1, np.int64), np.empty(H, np.int64), H - 1


def _count(item, key, value, ask, kreq, N, offsets):  # pragma: no cover - compiled
    """Pass 1: the ``offsets`` (5, B*N + 1) of the five ragged outputs, from running counts
    alone (no lists are built).  With distinct values the lengths have closed forms: the
    stale trap is the key's sets so far but the answer's; the deleted trap, its sets before its
    last delete but the answer's; the distractor trap, every distractor of the key so far; the
    other keys' trap, one value per other key that holds one now.  Returns False if some
    episode repeats a value id (the caller then uses the numpy path)."""
    B = item.size // N
    table_key, table_stamp, table_slot, mask = _table(N)
    ns = np.empty(N, np.int64)  # per slot: sets, distractors so far; sets before its last delete
    nd = np.empty(N, np.int64)
    at_del = np.empty(N, np.int64)
    lc = np.empty(N, np.int64)  # last change (set or delete) position, -1 if none
    lc_set = np.empty(N, np.bool_)
    tot0 = tot1 = tot2 = tot3 = tot4 = 0
    for b in range(B):
        base = b * N
        for j in range(N):
            v = value[base + j]
            if v >= 0 and _probe(table_key, table_stamp, 2 * b, v, mask)[1]:
                return False
        nslot = 0
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
            h, seen = _probe(table_key, table_stamp, 2 * b + 1, key[f], mask)
            if not seen:
                table_slot[h] = nslot
                ns[nslot] = 0
                nd[nslot] = 0
                at_del[nslot] = 0
                lc[nslot] = -1
                lc_set[nslot] = False
                nslot += 1
            s = table_slot[h]
            if it == ITEM_SET:
                if not (lc[s] >= 0 and lc_set[s]):
                    holding += 1
                ns[s] += 1
                lc[s] = j
                lc_set[s] = True
            elif it == ITEM_DELETE:
                if lc[s] >= 0 and lc_set[s]:
                    holding -= 1
                at_del[s] = ns[s]
                lc[s] = j
                lc_set[s] = False
            elif it == ITEM_DISTRACTOR:
                nd[s] += 1
            else:
                holds = lc[s] >= 0 and lc_set[s]
                nq = ns[s]
                a = ask[f]
                kq = kreq[f]
                rank = nq  # the deciding set, 1-based among the key's sets
                ok = True
                if a == ASK_VERSION:
                    rank = kq
                    ok = kq >= 1 and kq <= nq
                elif a == ASK_PREVIOUS:
                    rank = nq - 1
                    ok = nq >= 2
                defined = holds and ok
                tot0 += nq - (1 if defined else 0)
                tot1 += nd[s]
                tot2 += at_del[s] - (1 if defined and rank <= at_del[s] else 0)
                tot3 += holding - (1 if holds else 0)
                tot4 += ((1 if defined else 0) + (1 if defined and a != ASK_LATEST and rank != nq else 0)
                         + (1 if not holds and lc[s] >= 0 else 0))
    offsets[0, B * N] = tot0
    offsets[1, B * N] = tot1
    offsets[2, B * N] = tot2
    offsets[3, B * N] = tot3
    offsets[4, B * N] = tot4
    return True


def _walk(item, key, value, silent, ask, kreq, N, op, version, answer, probe, offsets,
          stale, distractor, deleted, other_keys, evidence):  # pragma: no cover - compiled
    """Pass 2: interpret every episode (rows of N items, flat arrays): the scalar outputs and
    the lists, at the offsets of pass 1.  Returns the flat index of the first query whose lists
    do not have pass 1's lengths (each list has N entries of slack, so a mismatch never
    writes outside it), or -1."""
    B = item.size // N
    table_key, table_stamp, table_slot, mask = _table(N)
    slot = np.empty(N, np.int64)  # per item: its key's slot (slots in key order)
    skey = np.empty(N, np.int64)  # per slot, by first appearance: the key id
    rank = np.empty(N, np.int64)
    set_off = np.empty(N + 1, np.int64)  # per slot: its sets, in reading order (CSR)
    set_pos = np.empty(N, np.int64)
    dis_off = np.empty(N + 1, np.int64)
    dis_pos = np.empty(N, np.int64)
    fill_at = np.empty(N, np.int64)
    ns = np.empty(N, np.int64)  # running, per slot: sets, distractors, deletes so far
    nd = np.empty(N, np.int64)
    ndel = np.empty(N, np.int64)
    lc = np.empty(N, np.int64)  # last change (set or delete), episode position; -1 if none
    lc_set = np.empty(N, np.bool_)
    last_del = np.empty(N, np.int64)
    kill = np.empty(N, np.int64)  # per set position: position of its key's next change
    ep_sets = np.empty(N, np.int64)  # positions of the episode's sets, in reading order
    final_rank = np.empty(N + 1, np.int64)  # per slot: final-holding slots before it
    fl_slot = np.empty(N, np.int64)  # the final list: slots holding a value at the end
    fl_val = np.empty(2 * N, other_keys.dtype)  # the final list, twice: each query's is one window of it
    nxt = np.empty(N, np.int64)
    big = np.iinfo(np.int64).max
    for b in range(B):
        base = b * N
        # ---- slots: the episode's distinct keys, numbered in key order
        nslot = 0
        for j in range(N):
            if item[base + j] != ITEM_PAD:
                h, seen = _probe(table_key, table_stamp, b, key[base + j], mask)
                if not seen:
                    table_slot[h] = nslot
                    skey[nslot] = key[base + j]
                    nslot += 1
                slot[j] = table_slot[h]
        by_key = np.argsort(skey[:nslot])
        for r in range(nslot):
            rank[by_key[r]] = r
        for j in range(N):
            if item[base + j] != ITEM_PAD:
                slot[j] = rank[slot[j]]
        # ---- each slot's sets and distractors in reading order; each set's kill position
        for s in range(nslot + 1):
            set_off[s] = 0
            dis_off[s] = 0
        n_ep_sets = 0
        for j in range(N):
            it = item[base + j]
            if it == ITEM_SET:
                set_off[slot[j] + 1] += 1
                ep_sets[n_ep_sets] = j
                n_ep_sets += 1
            elif it == ITEM_DISTRACTOR:
                dis_off[slot[j] + 1] += 1
        for s in range(nslot):
            set_off[s + 1] += set_off[s]
            dis_off[s + 1] += dis_off[s]
        for s in range(nslot):
            fill_at[s] = set_off[s]
            nxt[s] = big
        for j in range(N):
            if item[base + j] == ITEM_SET:
                set_pos[fill_at[slot[j]]] = j
                fill_at[slot[j]] += 1
        for s in range(nslot):
            fill_at[s] = dis_off[s]
        for j in range(N):
            if item[base + j] == ITEM_DISTRACTOR:
                dis_pos[fill_at[slot[j]]] = j
                fill_at[slot[j]] += 1
        last_ep_change = -1
        for j in range(N - 1, -1, -1):
            it = item[base + j]
            if it == ITEM_SET or it == ITEM_DELETE:
                if last_ep_change < 0:
                    last_ep_change = j
                if it == ITEM_SET:
                    kill[j] = nxt[slot[j]]
                nxt[slot[j]] = j
        # ---- the final state: slots holding a value at the end, in key order
        for s in range(nslot):
            lc[s] = -1
            lc_set[s] = False
        for j in range(N):
            it = item[base + j]
            if it == ITEM_SET or it == ITEM_DELETE:
                lc[slot[j]] = j
                lc_set[slot[j]] = it == ITEM_SET
        W = 0
        for s in range(nslot):
            final_rank[s] = W
            if lc_set[s]:
                fl_slot[W] = s
                fl_val[W] = value[base + lc[s]]
                W += 1
        for i in range(W):
            fl_val[W + i] = fl_val[i]
        # ---- walk in reading order
        for s in range(nslot):
            ns[s] = 0
            nd[s] = 0
            ndel[s] = 0
            lc[s] = -1
            lc_set[s] = False
            last_del[s] = -1
        for j in range(N):
            f = base + j
            it = item[f]
            if it == ITEM_PAD:
                continue
            s = slot[j]
            if it == ITEM_SET:
                held_before = lc[s] >= 0 and lc_set[s]
                op[f] = OP_SILENT_WRITE if silent[f] else (OP_OVERWRITE if held_before else OP_WRITE)
                version[f] = ns[s] + 1
                ns[s] += 1
                lc[s] = j
                lc_set[s] = True
                continue
            if it == ITEM_DELETE:
                op[f] = OP_DELETE
                ndel[s] += 1
                lc[s] = j
                lc_set[s] = False
                last_del[s] = j
                continue
            if it == ITEM_DISTRACTOR:
                op[f] = OP_DISTRACTOR
                nd[s] += 1
                continue
            # ---- a query: answered against the state at its own position
            cur = lc[s]
            holds = cur >= 0 and lc_set[s]
            nq = ns[s]
            a = ask[f]
            kq = kreq[f]
            target = cur if a == ASK_LATEST else -1
            if a == ASK_VERSION and kq >= 1 and kq <= nq:
                target = set_pos[set_off[s] + kq - 1]
            if a == ASK_PREVIOUS and nq >= 2:
                target = set_pos[set_off[s] + nq - 2]
            defined = holds and target >= 0
            ans = value[base + target] if defined else ABSENT
            settled = j > last_ep_change
            answer[f] = ans
            if a != ASK_LATEST:
                probe[f] = PROBE_VERSION
            elif ndel[s] > 0:
                probe[f] = PROBE_DISCARD
            elif nd[s] > 0:
                probe[f] = PROBE_DISTRACTOR
            elif holds and silent[base + cur]:
                probe[f] = PROBE_NO_WRITE_SIGNAL
            elif nq >= 2:
                probe[f] = PROBE_OVERWRITE
            else:
                probe[f] = PROBE_WRITE
            # traps of the key's own history: sets and distractors before the query
            c0 = 0
            c2 = 0
            o0 = offsets[0, f]
            o2 = offsets[2, f]
            for i in range(set_off[s], set_off[s] + nq):
                p = set_pos[i]
                v = value[base + p]
                if v != ans:
                    stale[o0 + c0] = v
                    c0 += 1
                    if p < last_del[s]:
                        deleted[o2 + c2] = v
                        c2 += 1
            c1 = 0
            o1 = offsets[1, f]
            for i in range(dis_off[s], dis_off[s] + nd[s]):
                v = value[base + dis_pos[i]]
                if v != ans:
                    distractor[o1 + c1] = v
                    c1 += 1
            # other keys' current values
            c3 = 0
            o3 = offsets[3, f]
            # (values are distinct, so no other key's value is the answer)
            if settled:  # the final list, from the first key after the query's own, wrapping
                at = final_rank[s]
                first = at + 1 if at < W and fl_slot[at] == s else at
                c3 = W - (first - at)
                # one window of the doubled list; unsigned indices spare numba's negative-index
                # checks, so the copy is vectorised (most of a shard's bytes are these lists)
                u3, uf = np.uintp(o3), np.uintp(first)
                for i in range(np.uintp(c3)):
                    other_keys[u3 + i] = fl_val[uf + i]
            else:  # sets before the query, still alive at it, in reading order
                for i in range(n_ep_sets):
                    p = ep_sets[i]
                    if p >= j:
                        break
                    if kill[p] > j and slot[p] != s:
                        other_keys[o3 + c3] = value[base + p]
                        c3 += 1
            # evidence: the deciding set; the current value's set; the delete that emptied it
            c4 = 0
            o4 = offsets[4, f]
            deciding = target if defined else -1
            if deciding >= 0:
                evidence[o4 + c4] = base + deciding
                c4 += 1
            if defined and a != ASK_LATEST and cur != deciding:
                evidence[o4 + c4] = base + cur
                c4 += 1
            if not holds and cur >= 0:
                evidence[o4 + c4] = base + cur
                c4 += 1
            if (c0 != offsets[0, f + 1] - o0 or c1 != offsets[1, f + 1] - o1 or c2 != offsets[2, f + 1] - o2
                    or c3 != offsets[3, f + 1] - o3 or c4 != offsets[4, f + 1] - o4):
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
    count, walk = _compiled()
    if not count(args[0], args[1], args[2], args[4], args[5], N, offsets):
        return None
    total = offsets[:, -1]
    lists = [np.empty(int(total[i]) + N, dtype=other_keys_dtype if name == "other_keys" else np.int64)
             for i, name in enumerate(RAGGED)]  # N entries of slack: see _walk
    bad = walk(*args, op, version, answer, probe, offsets, *lists)
    if bad >= 0:  # a bug, never data: the two passes disagree
        raise AssertionError(f"compiled replay: the lists of item {bad} do not have their counted lengths")
    lists = [v[:int(total[i])] for i, v in enumerate(lists)]
    traps = {name: (offsets[i], lists[i]) for i, name in enumerate(RAGGED[:4])}
    return op, version, answer, probe, traps, (offsets[4], lists[4])
