"""``score()``: predictions in, one outcome per query out (DESIGN.md section 7).

The token path (token, chunk and bridge renderings) maps token ids to value ids with array
arithmetic; the text path normalises each distinct answer string once and looks it up among
the surfaces of the query's gold and trap values.  Both then meet in
:func:`memgen.scorers.outcomes.classify`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataError, UsageError
from ..ir import ABSENT, ASKS, PROBES
from .dataset import read_dataset
from .frame import TEXT_RENDERINGS, QueryFrame, build_frame
from .normalise import is_absent, normalise
from .outcomes import (
    CORRECT,
    OUTCOMES,
    PRED_ABSENT,
    PRED_OTHER,
    PRED_UNPARSED,
    UNPARSED,
    classify,
)
from .predictions import NOT_INT, Predictions, prediction_values, read_predictions

#: (domain, value id) -> the value's surface text in that domain
ValueSurface = Callable[[str, int], str]


@dataclass(frozen=True)
class TokenVocab:
    """How token ids map to answers: value id ``v`` is token ``value_offset + v``; "unknown"
    is token ``absent_id``.  ``values`` (number of value ids) and ``vocab_size`` bound the
    ranges where known; without them every id from ``value_offset`` up reads as a value."""

    value_offset: int
    absent_id: int
    values: int | None = None
    vocab_size: int | None = None

    @classmethod
    def from_manifest(cls, manifest: Mapping, source: str = "manifest.json") -> TokenVocab:
        """From the manifest's ``vocab`` table (memgen.render.vocab.Vocab.to_dict())."""
        v = manifest.get("vocab")
        if not isinstance(v, Mapping) or "value_offset" not in v or "absent" not in v:
            raise DataError(f"{source}: no 'vocab' with 'value_offset' and 'absent'; "
                            "cannot read token predictions")
        return cls(int(v["value_offset"]), int(v["absent"]),
                   int(v["values"]) if "values" in v else None,
                   int(v["vocab_size"]) if "vocab_size" in v else None)

    def codes(self, tokens: np.ndarray) -> np.ndarray:
        """Value code of each token id (outcomes.PRED_*): a value id, absent, other (a
        special, key or filler id) or unparsed (negative, beyond the vocabulary, not an int)."""
        t = np.asarray(tokens, dtype=np.int64)
        hi = np.iinfo(np.int64).max if self.values is None else self.value_offset + self.values
        if self.vocab_size is not None:
            hi = min(hi, self.vocab_size)
        is_value = (t >= self.value_offset) & (t < hi)
        out = np.where(is_value, t - self.value_offset, PRED_OTHER)
        out[t == self.absent_id] = PRED_ABSENT
        bad = (t < 0) | (t == NOT_INT)
        if self.vocab_size is not None:
            bad |= t >= self.vocab_size
        out[bad] = PRED_UNPARSED
        return out


@dataclass
class ScoreResult:
    """Outcomes of one model's predictions on every query of ``frame``.

    ``outcome[i]`` indexes :data:`OUTCOMES` (``unparsed`` where no prediction came);
    ``scored[i]`` is False for queries left out of the score (configs the predictions do not
    touch at all)."""

    name: str
    source: str
    frame: QueryFrame
    outcome: np.ndarray
    scored: np.ndarray
    missing: int
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(self.scored.sum())

    @property
    def correct(self) -> int:
        return int(((self.outcome == CORRECT) & self.scored).sum())

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    def counts(self) -> dict[str, int]:
        """Number of scored queries per outcome, every outcome present."""
        c = np.bincount(self.outcome[self.scored], minlength=len(OUTCOMES))
        return {o: int(c[i]) for i, o in enumerate(OUTCOMES)}

    def to_table(self) -> pa.Table:
        """One row per scored query: where it is, what it tests, and its outcome."""
        f, m = self.frame, self.scored
        r = f.row[m]
        return pa.table({
            "id": f.ids.take(pa.array(r)),
            "qid": f.qid[m], "config": f.config[r].astype(str), "split": f.split[r].astype(str),
            "family": f.family[r].astype(str), "rendering": f.rendering[r].astype(str),
            "probe": np.asarray(PROBES)[f.probe[m]], "ask": np.asarray(ASKS)[f.ask[m]],
            "target_length": f.target_length[r], "depth": f.depth[m],
            "n_updates": f.n_updates[m], "n_distractors": f.n_distractors[m],
            "answer": f.answer[m], "outcome": np.asarray(OUTCOMES)[self.outcome[m]],
        })


# ---------------------------------------------------------------------------------------------
# alignment


def align(frame: QueryFrame, preds: Predictions) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(prediction index, query index) pairs: which query of ``frame`` each answer is for.

    Raises :class:`DataError` ``file:line: ...`` for an id or qid not in the dataset and for a
    second answer to the same query.  Answers to a question number past the end of an
    episode (answer blocks, aligned lists) are dropped and counted in the returned notes."""
    notes: list[str] = []
    n = len(preds)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), notes
    pred_ids = pa.array(preds.ids, pa.string())
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
        raise DataError(f"{_at(preds, i)}: id {preds.ids[i]!r} is not in the dataset {frame.source}")
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
                            f"{preds.ids[i]!r} in {frame.source}")
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
        raise DataError(f"{_at(preds, later)}: a second prediction for id {preds.ids[later]!r} "
                        f"qid {int(frame.qid[qq])} (first at line {int(preds.lines[first])})")
    return keep, q, notes


def _at(preds: Predictions, i: int) -> str:
    line = int(preds.lines[i])
    return f"{preds.source}:{line}" if line > 0 else preds.source


# ---------------------------------------------------------------------------------------------
# the text path


class _Surfaces:
    """Per-domain reverse lookup: normalised surface -> value id, for every value that is the
    gold or a trap of some text query."""

    def __init__(self, frame: QueryFrame, value_surface: ValueSurface | None):
        self.notes: list[str] = []
        text_q = frame.is_text()
        domains = frame.domain[frame.row].astype(str)
        tr = frame.traps
        qs, vals = [np.flatnonzero(text_q & (frame.answer >= 0))], []
        vals.append(frame.answer[qs[0]])
        for rag in (tr.stale, tr.distractor, tr.other_keys, tr.deleted):
            sel = text_q[rag.owner]
            qs.append(rag.owner[sel])
            vals.append(rag.values[sel])
        q_all, v_all = np.concatenate(qs), np.concatenate(vals)
        dom_names, dom_code = np.unique(domains, return_inverse=True) if domains.size else ([], [])
        dom_code = np.asarray(dom_code, dtype=np.int64)
        vmax = int(v_all.max(initial=0)) + 1
        pairs = np.unique(dom_code[q_all] * vmax + v_all) if q_all.size else np.zeros(0, np.int64)
        # the dataset's own gold texts come first: they are what gold answers are compared to
        known: dict[tuple[str, int], str] = {}
        gold_q = qs[0]
        for d, v, t in zip(domains[gold_q].tolist(), frame.answer[gold_q].tolist(),
                           [frame.answer_text[i] for i in gold_q.tolist()], strict=True):
            known.setdefault((d, v), t)
        self.reverse: dict[str, dict[str, int]] = {str(d): {} for d in dom_names}
        without, collisions = 0, 0
        for pair in pairs.tolist():
            d, v = str(dom_names[pair // vmax]), pair % vmax
            surface = known.get((d, v))
            if surface is None and value_surface is not None:
                try:
                    surface = value_surface(d, v)
                except Exception:  # a surface the text rendering cannot give is counted below
                    surface = None
            if not surface:
                without += 1
                continue
            key = normalise(surface)
            prev = self.reverse[d].get(key)
            if prev is not None and prev != v:
                collisions += 1
                self.reverse[d][key] = min(prev, v)
            else:
                self.reverse[d][key] = v
        if without:
            self.notes.append(f"{without} of {pairs.size} gold/trap values have no known surface text "
                              "(text answers naming them count as hallucinated or missed_absent)")
        if collisions:
            self.notes.append(f"{collisions} values share a normalised surface with another value "
                              "(the smaller value id is assumed)")


def _default_value_surface() -> ValueSurface | None:
    try:
        return importlib.import_module("memgen.text").value_surface
    except (ImportError, AttributeError):
        return None


def text_codes(frame: QueryFrame, queries: np.ndarray, texts: Sequence[str | None],
               value_surface: ValueSurface | None = None, notes: list[str] | None = None) -> np.ndarray:
    """Value code (outcomes.PRED_*) of each text answer ``texts[j]`` to query ``queries[j]``:
    the gold value id when it normalises to the gold text, ``PRED_ABSENT`` when it says the
    key has no value, the value id whose surface it names (gold or trap values of the
    episode's domain), ``PRED_OTHER`` otherwise, ``PRED_UNPARSED`` when empty."""
    cache = frame._cache
    if "gold_norm" not in cache:
        uniq = {t: normalise(t) for t in set(frame.answer_text)}
        cache["gold_norm"] = [uniq[t] for t in frame.answer_text]
    skey = ("surfaces", id(value_surface))
    if skey not in cache:
        cache[skey] = _Surfaces(frame, value_surface)
    surfaces: _Surfaces = cache[skey]
    if notes is not None:
        notes.extend(surfaces.notes)
    gold_norm: list[str] = cache["gold_norm"]
    answer = frame.answer.tolist()
    dom = frame.domain[frame.row[queries]].astype(str).tolist()
    reverse = surfaces.reverse
    seen: dict[str, tuple[str, bool]] = {}
    out = np.empty(len(texts), dtype=np.int64)
    for j, (q, t) in enumerate(zip(queries.tolist(), texts, strict=True)):
        if t is None:
            out[j] = PRED_UNPARSED
            continue
        hit = seen.get(t)
        if hit is None:
            n = normalise(t)
            hit = seen[t] = (n, is_absent(n))
        n, absent = hit
        if not n:
            out[j] = PRED_UNPARSED
        elif n == gold_norm[q]:
            out[j] = answer[q]
        elif absent:
            out[j] = PRED_ABSENT
        else:
            out[j] = reverse.get(dom[j], {}).get(n, PRED_OTHER)
    return out


# ---------------------------------------------------------------------------------------------
# the entry point

DatasetLike = str | Path | QueryFrame | pa.Table
PredictionsLike = str | Path | Predictions | pa.Table | Mapping | np.ndarray | Sequence


def load_frame(dataset: DatasetLike, config: str | None = None, split: str | None = None) -> QueryFrame:
    """A :class:`QueryFrame` from a dataset folder, a table, or a frame (returned as is)."""
    if isinstance(dataset, QueryFrame):
        return dataset
    if isinstance(dataset, pa.Table):
        return build_frame(dataset)
    if isinstance(dataset, (str, Path)):
        return read_dataset(dataset, config=config, split=split)
    raise UsageError(f"cannot score against a {type(dataset).__name__}; pass a dataset folder or table")


def _as_predictions(predictions: PredictionsLike, frame: QueryFrame, name: str | None) -> Predictions:
    if isinstance(predictions, Predictions):
        return predictions
    if isinstance(predictions, (str, Path)):
        return read_predictions(predictions, name=name)
    if isinstance(predictions, pa.Table):
        return Predictions.from_table(predictions, name=name or "predictions")
    if isinstance(predictions, Mapping):
        recs = ({"id": i, "qid": q, "prediction": v} for (i, q), v in predictions.items())
        return Predictions.from_records(recs, name=name or "predictions", source="<mapping>")
    values = list(predictions.tolist() if isinstance(predictions, np.ndarray) else predictions)
    if len(values) != frame.n_queries:
        raise UsageError(f"{len(values)} predictions for {frame.n_queries} queries; an aligned "
                         "sequence needs one answer per query, in dataset order")
    ids = frame.ids.take(pa.array(frame.row)).to_pylist()
    slots = np.arange(frame.n_queries, dtype=np.int64) - frame.q_offsets[frame.row]
    tokens, texts = prediction_values(values)
    return Predictions(name or "predictions", "<aligned>", ids, np.full(len(ids), -1, np.int64), slots,
                       tokens, texts, np.zeros(len(ids), np.int64))


def score(dataset: DatasetLike, predictions: PredictionsLike, *, name: str | None = None,
          vocab: TokenVocab | None = None, value_surface: ValueSurface | None = None,
          config: str | None = None, split: str | None = None) -> ScoreResult:
    """Classify every query of ``dataset`` by ``predictions`` (DESIGN.md section 7).

    ``dataset``: a dataset folder (restricted to ``config``/``split`` if given), a table of
    the memgen schema, or a :class:`QueryFrame` (reuse one to score several models fast).
    ``predictions``: a predictions file or table (see :mod:`memgen.scorers.predictions`), a
    :class:`Predictions`, a mapping ``{(id, qid): answer}``, or a sequence with one answer per
    query in dataset order.  ``vocab`` maps token ids (default: the folder's manifest);
    ``value_surface`` gives the text of trap values (default: ``memgen.text.value_surface``).

    Queries without a prediction are ``unparsed`` and counted in ``missing``.  When the
    dataset has several configs and the predictions touch only some of them, the others are
    left out of the score (and named in ``notes``)."""
    frame = load_frame(dataset, config=config, split=split)
    preds = _as_predictions(predictions, frame, name)
    pidx, qidx, notes = align(frame, preds)
    notes = list(preds.notes) + notes

    scored = np.ones(frame.n_queries, dtype=bool)
    configs = np.unique(frame.config.astype(str))
    if configs.size > 1 and qidx.size:
        touched = np.unique(frame.config[frame.row[qidx]].astype(str))
        left_out = sorted(set(configs.tolist()) - set(touched.tolist()))
        if left_out:
            scored = np.isin(frame.config[frame.row].astype(str), touched)
            notes.append(f"configs without any prediction left out: {', '.join(left_out)}")

    codes = np.full(frame.n_queries, PRED_UNPARSED, dtype=np.int64)
    text_rows = np.isin(frame.rendering, TEXT_RENDERINGS)
    is_text_q = text_rows[frame.row[qidx]]
    if (~is_text_q).any():
        if vocab is None:
            vocab = TokenVocab.from_manifest(frame.manifest, f"{frame.source}/manifest.json")
        codes[qidx[~is_text_q]] = vocab.codes(preds.tokens[pidx[~is_text_q]])
    if is_text_q.any():
        tq = qidx[is_text_q]
        texts = [preds.texts[i] for i in pidx[is_text_q].tolist()]
        if value_surface is None:
            value_surface = _default_value_surface()
        codes[tq] = text_codes(frame, tq, texts, value_surface, notes)

    outcome = classify(codes, frame.answer, frame.ask, frame.traps)
    has_pred = np.zeros(frame.n_queries, dtype=bool)
    has_pred[qidx] = True
    missing = int((scored & ~has_pred).sum())
    if missing:
        notes.append(f"{missing} of {int(scored.sum())} queries have no prediction (scored unparsed)")
    outcome[~has_pred] = UNPARSED
    return ScoreResult(preds.name, preds.source, frame, outcome, scored, missing, notes)


__all__ = ["ABSENT", "ScoreResult", "TokenVocab", "align", "load_frame", "score", "text_codes"]
