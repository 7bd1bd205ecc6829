"""The reference hybrid, mechanism form: editable slots plus a query-time sparse fallback.

Registered as ``hybrid`` and, without its fallback, ``slots_only`` (DESIGN.md section 8).

**Slots.**  Reading the stream, the slot table does what the markers say and nothing else:

* ``WRITE key value``: write the key's slot (a new slot, or an overwrite); the value is
  appended to the slot's version history and the slot becomes valid;
* ``DELETE key``: invalidate the slot; its history stays, so a key written again continues
  its version count;
* a distractor marker (negated, hypothetical, unconfirmed, rejected, lookalike): nothing;
* a silent ``key value`` (no marker): nothing either; the table stores only what it is told
  to store.

The table is kept as its log of slot updates by (key, position), so the state a query reads is
the log before the query's position: interleaved queries see the state at their own place.

**Fallback.**  At each query the fallback ranks the chunks before the query by *unmarked*
mentions of the key (a ``key value`` with no marker in front: exactly what the slots cannot
see), keeps the top ``k`` (ties to the later chunk) and reads every unmarked ``key value`` in
them.  A key found nowhere stays absent.

**Reading.**  The slot's log and the fallback's finds are merged by position into one
timeline per query: the key holds a value if the timeline's last entry is a write; ``latest``
is that write, ``version`` k the k-th write, ``previous`` the write before the last; any ask on
a key that holds no value is absent.  ``route`` is where the deciding entry came from
(``slot`` or ``fallback``); an absent answer on a key seen nowhere is the fallback's.

Why the finds are merged with the slot for every query (``fallback="merge"``) and not only
consulted for keys that never had a slot (``fallback="unslotted"``): in mixed episodes a key
set with a marker is often set again in passing (``WRITE k v1 ... k v2``), and a slot-first
reader answers the stale ``v1``; with the version count spanning both kinds of writes, version
asks need the merged timeline too.  docs/models.md gives the measured difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memgen.format.codes import ASK_LATEST, ASK_PREVIOUS, ASK_VERSION
from memgen.format.vocab import ABSENT_TOKEN, DELETE, WRITE
from memgen.models.registry import ROUTE_FALLBACK, ROUTE_SLOT, Answers, register_model
from memgen.models.retrieval import Pairs, mentions_before, top_chunks
from memgen.models.stream import NO_MARKER, TokenBatch

FALLBACK_MODES = ("merge", "unslotted", "off")


@dataclass(frozen=True)
class Timeline:
    """Entries (E,) that decide keys' states, sorted by query then position: a write
    (``value`` >= 0) or a delete (``value`` -1), and the route it came by."""

    q: np.ndarray  # (E,) int64 query index
    pos: np.ndarray  # (E,) int64 global position
    value: np.ndarray  # (E,) int64 value id, -1 for a delete
    route: np.ndarray  # (E,) int8 ROUTE_SLOT or ROUTE_FALLBACK

    @classmethod
    def merge(cls, *parts: Timeline) -> Timeline:
        q = np.concatenate([p.q for p in parts])
        pos = np.concatenate([p.pos for p in parts])
        order = np.lexsort((pos, q))
        return cls(q[order], pos[order], np.concatenate([p.value for p in parts])[order],
                   np.concatenate([p.route for p in parts])[order])


def slot_log(batch: TokenBatch) -> Timeline:
    """Per query, the slot updates of its key before it: every WRITE (write or overwrite) and
    DELETE of the key.  Distractor markers and silent mentions never touch a slot."""
    s = batch.stream
    pairs = mentions_before(batch, (s.marker == WRITE) | (s.marker == DELETE))
    return Timeline(pairs.q, s.pos[pairs.m], s.value[pairs.m], np.full(len(pairs), ROUTE_SLOT, np.int8))


def fallback_finds(batch: TokenBatch, k: int, wanted: np.ndarray) -> tuple[Timeline, np.ndarray]:
    """For the ``wanted`` queries ((Q,) bool), the unmarked ``key value`` mentions of the key in
    the top ``k`` chunks before the query (chunks ranked by unmarked mentions, ties to the
    later chunk); and the number of chunks kept per query ((Q,) int32)."""
    s = batch.stream
    pairs = mentions_before(batch, s.marker == NO_MARKER)
    keep = wanted[pairs.q]
    pairs = Pairs(pairs.q[keep], pairs.m[keep])
    chosen = top_chunks(batch, pairs, k, recent_first=True)
    found = chosen.rank >= 0
    m = pairs.m[found]
    finds = Timeline(pairs.q[found], s.pos[m], s.value[m], np.full(m.size, ROUTE_FALLBACK, np.int8))
    return finds, chosen.active


def _at(a: np.ndarray, i: np.ndarray) -> np.ndarray:
    """``a[i]`` where ``i`` is valid; callers mask the rest (an empty ``a`` gives zeros)."""
    return a[np.clip(i, 0, a.size - 1)] if a.size else np.zeros(i.shape, dtype=a.dtype)


def read(timeline: Timeline, ask: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(value id or -1, deciding entry or -1) per query ((Q,) each) from its timeline.

    The key holds a value iff its last entry is a write.  Then ``latest`` reads the last
    write, ``version`` k the k-th write (1-based, counting across deletes), ``previous`` the
    write before the last; an ask the writes cannot answer is absent.  The deciding entry of
    an absent answer is the last entry (a delete), or -1 for an empty timeline."""
    t, n_q = timeline, ask.size
    count = np.bincount(t.q, minlength=n_q)
    last = np.cumsum(count) - 1
    holds = (count > 0) & (_at(t.value, last) >= 0)

    writes = np.flatnonzero(t.value >= 0)  # write entries, still by (query, position)
    n_writes = np.bincount(t.q[writes], minlength=n_q)
    first_write = np.cumsum(n_writes) - n_writes
    nth = np.select([ask == ASK_LATEST, ask == ASK_VERSION, ask == ASK_PREVIOUS],
                    [n_writes - 1, k - 1, n_writes - 2], -1)  # 0-based index of the write asked for
    answerable = holds & (nth >= 0) & (nth < n_writes)
    entry = _at(writes, first_write + nth)
    value = np.where(answerable, _at(t.value, entry), -1)
    deciding = np.where(answerable, entry, np.where(count > 0, last, -1))
    return value, deciding


@register_model("hybrid")
@dataclass(frozen=True)
class Hybrid:
    """``k``: chunks the fallback keeps per query.  ``fallback``: ``merge`` (every query
    merges the fallback's finds with its slot), ``unslotted`` (only keys that never had a
    slot ask the fallback), ``off`` (slots only)."""

    k: int = 4
    fallback: str = "merge"

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError("k must be at least 1")
        if self.fallback not in FALLBACK_MODES:
            raise ValueError(f"fallback must be one of {', '.join(FALLBACK_MODES)}")

    def predict(self, batch: TokenBatch) -> Answers:
        n_q, qs = batch.n_queries, batch.queries
        slots = slot_log(batch)
        has_slot = np.bincount(slots.q, minlength=n_q) > 0
        wanted = {"merge": np.ones(n_q, dtype=bool), "unslotted": ~has_slot,
                  "off": np.zeros(n_q, dtype=bool)}[self.fallback]
        finds, active = fallback_finds(batch, self.k, wanted)
        timeline = Timeline.merge(slots, finds)
        value, deciding = read(timeline, qs.ask, qs.k)

        prediction = np.where(value >= 0, value + batch.vocab.value_offset, ABSENT_TOKEN).astype(np.int64)
        # a key seen nowhere: absent by the fallback's search, or by the slots' when it is off
        nowhere = ROUTE_FALLBACK if self.fallback != "off" else ROUTE_SLOT
        route = np.where(deciding >= 0, _at(timeline.route, deciding), nowhere).astype(np.int8)
        return Answers(prediction, route, active)


@register_model("slots_only")
@dataclass(frozen=True)
class SlotsOnly(Hybrid):
    """The hybrid without its fallback: only what the markers wrote."""

    fallback: str = "off"
