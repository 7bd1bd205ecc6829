"""Outcome classification (DESIGN.md section 7), vectorised over queries.

Both renderings meet here: the token path and the text path each turn a prediction into a
*value code* (a value id, or one of the codes below), and :func:`classify` turns value codes,
gold answers and traps into one outcome per query with array operations only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memgen.format.codes import (
    ABSENT,
    ASK_LATEST,
    CORRECT,
    CROSS_KEY,
    DISTRACTOR,
    FALSE_ABSENT,
    HALLUCINATED,
    MISSED_ABSENT,
    RESURRECTED,
    STALE,
    UNPARSED,
    WRONG_VERSION,
)

#: value code of an "unknown" answer (the same id as the IR's absent value)
PRED_ABSENT = ABSENT
#: value code of an empty, missing or unreadable answer
PRED_UNPARSED = -2
#: value code of a readable answer that is no value id (a special, key or filler token; a text
#: that matches no value's surface)
PRED_OTHER = -3


class Ragged:
    """One list per query: ``values[offsets[i]:offsets[i + 1]]`` belong to query ``i``.

    ``owner`` (the query of each value) is built on first use and kept, since a membership
    test over most of the lists needs it."""

    def __init__(self, offsets: np.ndarray, values: np.ndarray):
        self.offsets = np.asarray(offsets, dtype=np.int64)  # (Q + 1,)
        self.values = np.asarray(values)  # (M,) value ids, any integer dtype
        self._owner: np.ndarray | None = None

    @classmethod
    def from_counts(cls, counts: np.ndarray, values: np.ndarray) -> Ragged:
        counts = np.asarray(counts, dtype=np.int64)
        offsets = np.zeros(counts.size + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return cls(offsets, values)

    @property
    def owner(self) -> np.ndarray:
        """(M,) the query of each value."""
        if self._owner is None:
            q = len(self)
            dtype = np.int32 if q < 2**31 else np.int64
            self._owner = np.repeat(np.arange(q, dtype=dtype), np.diff(self.offsets))
        return self._owner

    def __len__(self) -> int:
        return self.offsets.size - 1

    def row(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i]:self.offsets[i + 1]]

    def contains(self, codes: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        """``out[i]`` is True iff ``codes[i]`` is in list ``i`` (and ``where[i]``, if given).

        When ``where`` selects few lists only those are compared, so the cost follows the
        number of candidate answers rather than the total size of the lists."""
        q = len(self)
        out = np.zeros(q, dtype=bool)
        if where is None:
            where = np.ones(q, dtype=bool)
        rows = np.flatnonzero(where)
        if rows.size == 0 or self.values.size == 0:
            return out
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        counts = ends - starts
        total = int(counts.sum())
        if total == 0:
            return out
        if total * 4 >= self.values.size:  # most lists: one pass over all, no index arrays
            hit = self.values == codes[self.owner]
            out[self.owner[hit]] = True
            return out & where
        # indices of the selected lists' values, concatenated
        idx = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(total)
        hit = self.values[idx] == np.repeat(codes[rows], counts)
        out[np.repeat(rows, counts)[hit]] = True
        return out


@dataclass(frozen=True)
class TrapLists:
    """The four trap lists of every query, as :class:`Ragged` (DESIGN.md section 3)."""

    stale: Ragged
    distractor: Ragged
    other_keys: Ragged
    deleted: Ragged


def classify(codes: np.ndarray, gold: np.ndarray, ask: np.ndarray, traps: TrapLists) -> np.ndarray:
    """One outcome code (index into :data:`OUTCOMES`) per query, by DESIGN.md section 7.

    ``codes``: the prediction as a value id, or ``PRED_ABSENT``, ``PRED_UNPARSED``,
    ``PRED_OTHER``; ``gold``: the gold value id (``ABSENT`` for absent); ``ask``: index into
    ``ir.ASKS``.  All ``(Q,)``.  Precedence, first match wins:

    * unparsed -> ``unparsed``; equal to gold -> ``correct``;
    * gold absent: a value the key held before its delete -> ``resurrected``, a distractor's
      value -> ``distractor``, another key's current value -> ``cross_key``, any other answer
      (a value or a readable non-value) -> ``missed_absent``;
    * gold present, "unknown" -> ``false_absent``;
    * gold present, another answer: an older value of the key -> ``stale`` for ``latest`` asks
      and ``wrong_version`` for ``version``/``previous`` asks; else a distractor's value ->
      ``distractor``; else another key's value -> ``cross_key``; else ``hallucinated``.
    """
    codes = np.asarray(codes, dtype=np.int64)
    gold = np.asarray(gold, dtype=np.int64)
    ask = np.asarray(ask)
    out = np.full(codes.shape, HALLUCINATED, dtype=np.int8)

    unparsed = codes == PRED_UNPARSED
    correct = ~unparsed & (codes == gold)
    wrong = ~unparsed & ~correct
    gold_absent = gold == ABSENT
    said_absent = codes == PRED_ABSENT
    # a trap can only hold a value id, so only wrong answers that are values are looked up
    value_given = wrong & (codes >= 0)

    # each list is searched only where no list of higher precedence has matched
    in_deleted = traps.deleted.contains(codes, value_given & gold_absent)
    in_stale = traps.stale.contains(codes, value_given & ~gold_absent)
    open_ = value_given & ~in_deleted & ~in_stale
    in_distractor = traps.distractor.contains(codes, open_)
    in_other = traps.other_keys.contains(codes, open_ & ~in_distractor)

    absent_branch = wrong & gold_absent
    present_branch = wrong & ~gold_absent & ~said_absent
    latest = ask == ASK_LATEST

    # gold absent (said_absent cannot be wrong here: it would equal gold)
    out[absent_branch] = MISSED_ABSENT
    out[absent_branch & in_other] = CROSS_KEY
    out[absent_branch & in_distractor] = DISTRACTOR
    out[absent_branch & in_deleted] = RESURRECTED
    # gold present
    out[wrong & ~gold_absent & said_absent] = FALSE_ABSENT
    out[present_branch & in_other] = CROSS_KEY
    out[present_branch & in_distractor] = DISTRACTOR
    out[present_branch & in_stale & latest] = STALE
    out[present_branch & in_stale & ~latest] = WRONG_VERSION

    out[correct] = CORRECT
    out[unparsed] = UNPARSED
    return out
