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

from dataclasses import dataclass, field

from memgen.format.codes import ABSENT, ABSENT_TEXT, TRAP_FIELDS


@dataclass(frozen=True)
class Event:
    """One memory event.  ``start``/``end`` are the rendering's span (tokens or characters,
    end exclusive); ``chunk``/``segment`` are -1 where the rendering has none."""

    op: str
    key: int
    value: int = ABSENT
    version: int = 0
    signal: bool = True
    kind: str = ""
    alias: int = -1  # lookalike distractors: the look-alike key actually named
    start: int = -1
    end: int = -1
    chunk: int = -1
    segment: int = -1


_EVENT_FIELDS = ("op", "key", "value", "version", "signal", "kind", "alias", "start", "end", "chunk",
                 "segment")


@dataclass(frozen=True)
class Traps:
    """Value ids that a specific failure would return; none equals the gold answer."""

    stale: tuple[int, ...] = ()
    distractor: tuple[int, ...] = ()
    other_keys: tuple[int, ...] = ()
    deleted: tuple[int, ...] = ()


@dataclass(frozen=True)
class Query:
    """One question.  ``version`` is k for ``ask == "version"`` (1-based) and 0 otherwise.
    ``start``/``end`` cover the query tokens and the answer slot (at ``end - 1``)."""

    qid: int
    key: int
    ask: str = "latest"
    version: int = 0
    answer: int = ABSENT
    answer_text: str = ABSENT_TEXT
    probe: str = "write"
    traps: Traps = field(default_factory=Traps)
    start: int = -1
    end: int = -1
    evidence_chunks: tuple[int, ...] = ()  # the chunks that decide the answer (the `evidence` column)
    #: index of the event after which the query is asked (-1: before every event)
    after: int = -1


@dataclass(frozen=True)
class Episode:
    id: str
    family: str
    events: tuple[Event, ...]
    queries: tuple[Query, ...]
    seed: int = 0
    rendering: str = ""
    target_length: int = 0
    length: int = 0

    @classmethod
    def from_row(cls, row: dict) -> Episode:
        """An episode from one stored row (a dict of the Arrow columns).  Each query is placed
        after the last event that starts before it."""
        events = tuple(Event(**{k: e[k] for k in _EVENT_FIELDS}) for e in row["events"])
        starts = [e.start for e in events]
        queries = []
        for q in row["queries"]:
            after = sum(1 for s in starts if s < q["start"]) - 1
            queries.append(Query(
                qid=q["qid"], key=q["key"], ask=q["ask"], version=q["version"], answer=q["answer"],
                answer_text=q["answer_text"], probe=q["probe"],
                traps=Traps(**{f: tuple(q["traps"][f]) for f in TRAP_FIELDS}), start=q["start"],
                end=q["end"], evidence_chunks=tuple(q["evidence"]), after=after))
        return cls(id=row["id"], family=row["family"], events=events, queries=tuple(queries),
                   seed=row["seed"], rendering=row["rendering"], target_length=row["target_length"],
                   length=row["length"])
