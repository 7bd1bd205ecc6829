"""A batch of episodes as a structure of numpy arrays: what the generators build and what
:func:`memgen.ir.replay.replay_program` interprets, vectorised across items and episodes.

:class:`Program` holds B episodes of N items each, ``(B, N)`` per field, rows in reading order
and padded with ``ITEM_PAD``; :meth:`Program.from_episode` and :meth:`Program.episode` convert
to and from one :class:`~memgen.ir.episode.Episode` (plain dataclasses, for reading, tests and
notebooks).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from memgen.format.codes import (
    ABSENT,
    ABSENT_TEXT,
    ASKS,
    ITEM_DELETE,
    ITEM_DISTRACTOR,
    ITEM_PAD,
    ITEM_QUERY,
    ITEM_SET,
    KINDS,
    OP_SILENT_WRITE,
    OPS,
    PROBES,
    TRAP_FIELDS,
)
from memgen.ir.episode import Episode, Event, Query, Traps

#: the fields of a :class:`Program` that generators fill; :func:`~memgen.ir.replay.replay_program` fills the rest
INPUT_FIELDS = ("item", "key", "value", "silent_write", "kind", "alias", "ask", "k")


@dataclass
class Program:
    """B episodes, each a sequence of N items (events and queries) in reading order.

    Every field is ``(B, N)``; rows are padded with ``ITEM_PAD``.  Generators fill ``item``,
    ``key``, ``value``, ``silent_write``, ``kind``, ``alias`` and, for queries, ``ask``/``k``;
    :func:`replay_program` fills ``op``, ``version``, ``answer``, ``probe`` and the traps.
    """

    item: np.ndarray  # int8 ITEM_*
    key: np.ndarray  # int64 key id
    value: np.ndarray  # int64 value id (ABSENT for deletes and queries before replay)
    silent_write: np.ndarray  # bool: a set with no write signal (a silent write)
    kind: np.ndarray  # int8 index into KINDS (0 unless a distractor)
    alias: np.ndarray  # int64 look-alike key id, -1 otherwise
    ask: np.ndarray  # int8 ASK_* for queries
    k: np.ndarray  # int64 requested version for version asks, else 0
    # filled by replay
    op: np.ndarray | None = None  # int8 OP_* for events, -1 for queries/pad
    version: np.ndarray | None = None
    answer: np.ndarray | None = None
    probe: np.ndarray | None = None
    # ragged (offsets over every flat item b * N + n, values): only queries have entries
    traps: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
    # per query: flat indices (b * N + n) of the items that decide its answer (ragged, as traps)
    evidence_items: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.item.shape

    @classmethod
    def empty(cls, b: int, n: int) -> Program:
        z = np.zeros((b, n), dtype=np.int64)
        return cls(
            item=np.zeros((b, n), dtype=np.int8),
            key=z.copy(),
            value=np.full((b, n), ABSENT, dtype=np.int64),
            silent_write=np.zeros((b, n), dtype=bool),
            kind=np.zeros((b, n), dtype=np.int8),
            alias=np.full((b, n), -1, dtype=np.int64),
            ask=np.zeros((b, n), dtype=np.int8),
            k=z.copy(),
        )

    @classmethod
    def from_episode(cls, ep: Episode) -> Program:
        """Items in reading order: events, with each query placed after event ``q.after``."""
        items: list[tuple[int, object]] = []
        by_after: dict[int, list[Query]] = {}
        for q in ep.queries:
            by_after.setdefault(q.after if q.after >= 0 else -1, []).append(q)
        for q in by_after.get(-1, []):
            items.append((ITEM_QUERY, q))
        for i, ev in enumerate(ep.events):
            items.append((ITEM_SET if ev.op in ("write", "overwrite", "silent_write")
                          else ITEM_DELETE if ev.op == "delete" else ITEM_DISTRACTOR, ev))
            for q in by_after.get(i, []):
                items.append((ITEM_QUERY, q))
        for a, qs in by_after.items():
            if a >= len(ep.events):
                items.extend((ITEM_QUERY, q) for q in qs)
        p = cls.empty(1, max(1, len(items)))
        for n, (it, obj) in enumerate(items):
            p.item[0, n] = it
            p.key[0, n] = obj.key
            if it == ITEM_QUERY:
                p.ask[0, n] = ASKS.index(obj.ask)
                p.k[0, n] = obj.version
            else:
                p.value[0, n] = obj.value if it != ITEM_DELETE else ABSENT
                p.silent_write[0, n] = it == ITEM_SET and not obj.signal
                p.kind[0, n] = KINDS.index(obj.kind) if it == ITEM_DISTRACTOR else 0
                p.alias[0, n] = obj.alias
        return p

    @classmethod
    def from_episodes(cls, episodes) -> Program:
        """Several episodes as one padded program (before replay): row ``b`` is episode ``b``."""
        rows = [cls.from_episode(ep) for ep in episodes]
        out = cls.empty(len(rows), max(p.shape[1] for p in rows))
        for b, p in enumerate(rows):
            for name in INPUT_FIELDS:
                getattr(out, name)[b, :p.shape[1]] = getattr(p, name)[0]
        return out

    def episode(self, b: int, base: Episode | None = None, **meta) -> Episode:
        """Row ``b`` as an :class:`Episode` (after replay).  ``base`` lends ids and spans."""
        assert self.op is not None, "replay_program() first"
        items = self.item[b]
        events: list[Event] = []
        queries: list[Query] = []
        for n in np.flatnonzero(items != ITEM_PAD):
            if items[n] == ITEM_QUERY:
                traps = Traps(**{f: tuple(int(x) for x in _row(self.traps[f], b * self.shape[1] + n))
                                 for f in TRAP_FIELDS})
                queries.append(Query(
                    qid=len(queries), key=int(self.key[b, n]), ask=ASKS[self.ask[b, n]],
                    version=int(self.k[b, n]), answer=int(self.answer[b, n]),
                    answer_text=str(int(self.answer[b, n])) if self.answer[b, n] != ABSENT
                    else ABSENT_TEXT,
                    probe=PROBES[self.probe[b, n]], traps=traps, after=len(events) - 1))
            else:
                op = int(self.op[b, n])
                events.append(Event(
                    op=OPS[op], key=int(self.key[b, n]), value=int(self.value[b, n]),
                    version=int(self.version[b, n]), signal=op != OP_SILENT_WRITE,
                    kind=KINDS[self.kind[b, n]], alias=int(self.alias[b, n])))
        if base is not None:
            events = [replace(e, start=o.start, end=o.end, chunk=o.chunk, segment=o.segment)
                      for e, o in zip(events, base.events, strict=True)]
            queries = [replace(q, qid=o.qid, answer_text=o.answer_text
                               if (o.answer == q.answer) else q.answer_text,
                               start=o.start, end=o.end, evidence_chunks=o.evidence_chunks)
                       for q, o in zip(queries, base.queries, strict=True)]
            return replace(base, events=tuple(events), queries=tuple(queries))
        return Episode(events=tuple(events), queries=tuple(queries), **meta)


def _row(ragged: tuple[np.ndarray, np.ndarray], i: int) -> np.ndarray:
    offsets, values = ragged
    return values[offsets[i]:offsets[i + 1]]
