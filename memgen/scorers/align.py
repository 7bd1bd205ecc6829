"""Aligning predictions with the queries of a dataset: each prediction keyed by (``id``,
``qid``) or by episode answer block finds its query, and predictions for ids that are not in the
dataset are an error."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from memgen.format.errors import DataError, UsageError
from memgen.scorers.frame import QueryFrame
from memgen.scorers.predictions import Predictions


def align(frame: QueryFrame, preds: Predictions) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(prediction index, query index) pairs: which query of ``frame`` each answer is for.

    Raises :class:`DataError` ``file:line: ...`` for an id or qid not in the dataset and for a
    second answer to the same query.  Answers to a question number past the end of an
    episode (answer blocks, aligned lists) are dropped and counted in the returned notes."""
    notes: list[str] = []
    n = len(preds)
    if preds.aligned:
        if n != frame.n_queries:
            raise UsageError(f"{n} predictions for {frame.n_queries} queries; an aligned sequence needs "
                             "one answer per query, in dataset order")
        every = np.arange(n, dtype=np.int64)
        return every, every, notes
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), notes
    pred_ids = preds.ids
    rows = pc.index_in(pred_ids, value_set=frame.ids)
    unknown = np.asarray(rows.is_null())
    if unknown.any() and frame.other_ids is not None:
        elsewhere = np.asarray(pc.is_in(pred_ids, value_set=frame.other_ids))
        if (unknown & elsewhere).any():
            notes.append(f"{int((unknown & elsewhere).sum())} predictions for rows outside the chosen "
                         "config/split were skipped")
        unknown &= ~elsewhere
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise DataError(f"{_at(preds, i)}: id {preds.id_at(i)!r} is not in the dataset {frame.source}")
    rows = rows.to_numpy(zero_copy_only=False)
    rows = np.nan_to_num(rows, nan=-1).astype(np.int64)  # skipped rows (other configs) are -1
    qidx = np.full(n, -1, dtype=np.int64)

    by_slot = (preds.slots >= 0) & (rows >= 0)
    by_qid = (preds.slots < 0) & (rows >= 0)
    if by_qid.any():
        width = int(frame.qid.max(initial=0)) + 1
        comp = frame.row * width + frame.qid
        order = np.argsort(comp, kind="stable")
        sorted_comp = comp[order]
        pq_ = preds.qids[by_qid]
        want = rows[by_qid] * width + np.clip(pq_, 0, width - 1)
        pos = np.minimum(np.searchsorted(sorted_comp, want), max(sorted_comp.size - 1, 0))
        found = (pq_ >= 0) & (pq_ < width) & (sorted_comp.size > 0)
        found &= sorted_comp[pos] == want if sorted_comp.size else False
        if not found.all():
            i = int(np.flatnonzero(by_qid)[np.flatnonzero(~found)[0]])
            raise DataError(f"{_at(preds, i)}: qid {int(preds.qids[i])} is not a query of id "
                            f"{preds.id_at(i)!r} in {frame.source}")
        qidx[by_qid] = order[pos]
    if by_slot.any():
        r = rows[by_slot]
        s = preds.slots[by_slot]
        count = frame.q_offsets[r + 1] - frame.q_offsets[r]
        inside = (s >= 0) & (s < count)
        qidx[np.flatnonzero(by_slot)[inside]] = frame.q_offsets[r[inside]] + s[inside]
        if (~inside).any():
            notes.append(f"{int((~inside).sum())} answers name a question number beyond their "
                         "episode's questions (ignored)")
    keep = np.flatnonzero(qidx >= 0)
    q = qidx[keep]
    order = np.argsort(q, kind="stable")
    dup = np.flatnonzero(q[order][1:] == q[order][:-1])
    if dup.size:
        # report the later line of the first repeated query
        pairs = [(keep[order[d]], keep[order[d + 1]]) for d in dup]
        first, second = min(pairs, key=lambda p: max(preds.lines[p[0]], preds.lines[p[1]]))
        later = second if preds.lines[second] >= preds.lines[first] else first
        qq = int(qidx[later])
        raise DataError(f"{_at(preds, later)}: a second prediction for id {preds.id_at(later)!r} "
                        f"qid {int(frame.qid[qq])} (first at line {int(preds.lines[first])})")
    return keep, q, notes


def _at(preds: Predictions, i: int) -> str:
    line = int(preds.lines[i])
    return f"{preds.source}:{line}" if line > 0 else preds.source
