"""The plain reference interpreter of the episode IR: DESIGN.md section 3, with the order rules
of ``docs/design.md`` ("Traps", "Evidence"), restated the obvious way.

It walks an :class:`~memgen.ir.episode.Episode` event by event, in reading order, keeping each
key's values in a list, and answers every query against the state at its own position.  It is
used only by the tests, which hold :mod:`memgen.ir.replay` (vectorised) and its compiled twin to
it: every op, version, answer, probe, trap list (in order) and evidence list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from memgen.format.codes import ABSENT
from memgen.ir.episode import Episode, Query, Traps

SETS = ("write", "overwrite", "silent_write")


@dataclass(frozen=True)
class NaiveReplay:
    """What :func:`naive_replay` finds: one entry per event (``ops``, ``versions``) and one per
    query in reading order (``answers``, ``probes``, ``traps``, ``evidence``: the indices in
    ``episode.events`` of the events that decide the answer)."""

    ops: list[str]
    versions: list[int]
    answers: list[int]
    probes: list[str]
    traps: list[Traps]
    evidence: list[tuple[int, ...]]


def naive_replay(ep: Episode) -> NaiveReplay:
    """Interpret ``ep``.  A query is asked right after event ``q.after`` (before every event if
    that is negative, after the last if it is past the end); queries asked at the same place
    keep their order, as :func:`memgen.ir.replay.replay` does (sorted by ``after``, stable)."""
    sets: dict[int, list[tuple[int, int]]] = {}  # key -> its sets so far: (event index, value)
    holds: dict[int, bool] = {}  # key -> it has a value now
    last_change: dict[int, int] = {}  # key -> event index of its last set or delete
    last_delete: dict[int, int] = {}  # key -> event index of its last delete
    distractors: dict[int, list[int]] = {}  # key -> values stated by its distractors so far
    silent: dict[int, bool] = {}  # key -> its current value was set without a write signal
    episode_last_change = max((i for i, e in enumerate(ep.events) if e.op in SETS or e.op == "delete"),
                              default=-1)
    out = NaiveReplay([], [], [], [], [], [])

    def ask(q: Query, position: int) -> None:
        """Answer ``q``, asked right after event ``position``."""
        k = q.key
        values = [v for _, v in sets.get(k, [])]
        n = len(values)
        # the deciding set: which of the key's sets gives the answer (None: the answer is absent)
        if not holds.get(k, False):
            deciding = None
        elif q.ask == "latest":
            deciding = n - 1  # the current value is the last one set
        elif q.ask == "version":
            deciding = q.version - 1 if 1 <= q.version <= n else None
        else:  # previous
            deciding = n - 2 if n >= 2 else None
        gold = values[deciding] if deciding is not None else ABSENT

        if q.ask != "latest":
            probe = "version"
        elif k in last_delete:
            probe = "discard"
        elif k in distractors:
            probe = "distractor"
        elif holds.get(k, False) and silent[k]:
            probe = "no_write_signal"
        elif n >= 2:
            probe = "overwrite"
        else:
            probe = "write"

        def once(vals: Iterable[int]) -> tuple[int, ...]:
            """``vals`` in order, without the answer, each value once."""
            kept: list[int] = []
            for v in vals:
                if v != gold and v not in kept:
                    kept.append(v)
            return tuple(kept)

        others = [kk for kk in sets if kk != k and holds[kk]]  # keys that hold a value now
        if position >= episode_last_change:  # no change after the query: key order, after k, wrapping
            others = sorted(kk for kk in others if kk > k) + sorted(kk for kk in others if kk < k)
        else:  # the reading order of the sets that gave them their values
            others.sort(key=lambda kk: sets[kk][-1][0])
        traps = Traps(
            stale=once(values),
            distractor=once(distractors.get(k, [])),
            other_keys=once(sets[kk][-1][1] for kk in others),
            deleted=once(v for i, v in sets.get(k, []) if i < last_delete.get(k, -1)),
        )

        evidence = []
        if deciding is not None:
            evidence.append(sets[k][deciding][0])
            if q.ask != "latest" and deciding != n - 1:  # the current value's set too
                evidence.append(sets[k][-1][0])
        if k in last_change and not holds[k]:  # emptied by a delete
            evidence.append(last_change[k])

        out.answers.append(gold)
        out.probes.append(probe)
        out.traps.append(traps)
        out.evidence.append(tuple(evidence))

    queries = sorted(ep.queries, key=lambda q: q.after)
    asked = 0

    def ask_those_after(position: int) -> None:
        nonlocal asked
        last = position == len(ep.events) - 1
        while asked < len(queries) and (queries[asked].after <= position or last):
            ask(queries[asked], position)
            asked += 1

    ask_those_after(-1)
    for i, e in enumerate(ep.events):
        k = e.key
        if e.op in SETS:
            out.ops.append("silent_write" if not e.signal else "overwrite" if holds.get(k, False) else "write")
            sets.setdefault(k, []).append((i, e.value))
            holds[k] = True
            silent[k] = not e.signal
            last_change[k] = i
            out.versions.append(len(sets[k]))
        elif e.op == "delete":
            out.ops.append("delete")
            holds[k] = False
            last_change[k] = i
            last_delete[k] = i
            out.versions.append(0)
        else:  # a distractor changes nothing
            out.ops.append("distractor")
            distractors.setdefault(k, []).append(e.value)
            out.versions.append(0)
        ask_those_after(i)
    return out
