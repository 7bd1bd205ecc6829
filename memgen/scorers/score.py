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
from ..ir import ASKS, PROBES
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


# ---------------------------------------------------------------------------------------------
# the text path


class _TextIndex:
    """What the text path needs of a frame, built once per (frame, surface function).

    Every normalised string the scorer meets (gold texts, value surfaces, answers) gets an
    integer id, so that per-query work is array work: the gold's id per query, each row's
    domain code, and a sorted table (domain code, normalised surface id) -> value id over the
    gold and trap values of every text query."""

    def __init__(self, frame: QueryFrame, value_surface: ValueSurface | None):
        self.notes: list[str] = []
        self.ids: dict[str, int] = {}
        gold = pc.dictionary_encode(pa.array(frame.answer_text, pa.string()))
        self.gold_id = self.norm_ids(gold.dictionary.to_pylist())[_indices(gold)]

        domain = pc.dictionary_encode(pa.array(frame.domain.tolist(), pa.string()))
        names = domain.dictionary.to_pylist()
        self.row_domain = _indices(domain)  # (R,) -1 outside the text rendering

        text_q = frame.is_text()
        q_dom = self.row_domain[frame.row]
        tr = frame.traps
        gold_q = np.flatnonzero(text_q & (frame.answer >= 0))
        qs, vals = [gold_q], [frame.answer[gold_q]]
        for rag in (tr.stale, tr.distractor, tr.other_keys, tr.deleted):
            sel = text_q[rag.owner]
            qs.append(rag.owner[sel])
            vals.append(rag.values[sel].astype(np.int64))
        q_all, v_all = np.concatenate(qs), np.concatenate(vals)
        vmax = int(v_all.max(initial=0)) + 1
        pairs = np.unique(q_dom[q_all] * vmax + v_all)
        # the dataset's own gold texts come first: they are what gold answers are compared to
        g_pairs, g_first = np.unique(q_dom[gold_q] * vmax + frame.answer[gold_q], return_index=True)
        known = dict(zip(g_pairs.tolist(), (frame.answer_text[i] for i in gold_q[g_first].tolist()),
                         strict=True))
        keys, values, without = [], [], 0
        for pair in pairs.tolist():
            d, v = pair // vmax, pair % vmax
            surface = known.get(pair)
            if surface is None and value_surface is not None:
                try:
                    surface = value_surface(names[d], v)
                except Exception:  # a surface the text rendering cannot give is counted below
                    surface = None
            if not surface:
                without += 1
                continue
            keys.append((d << 32) | self.norm_id(normalise(surface)))
            values.append(v)
        k, v = np.asarray(keys, dtype=np.int64), np.asarray(values, dtype=np.int64)
        order = np.lexsort((v, k))
        k, v = k[order], v[order]
        first = np.ones(k.size, dtype=bool)
        first[1:] = k[1:] != k[:-1]
        collisions = int((~first).sum())
        self.keys, self.values = k[first], v[first]  # the smaller value id where surfaces collide
        if without:
            self.notes.append(f"{without} of {pairs.size} gold/trap values have no known surface text "
                              "(text answers naming them count as hallucinated or missed_absent)")
        if collisions:
            self.notes.append(f"{collisions} values share a normalised surface with another value "
                              "(the smaller value id is assumed)")

    def norm_id(self, normalised: str) -> int:
        return self.ids.setdefault(normalised, len(self.ids))

    def norm_ids(self, texts: list[str | None]) -> np.ndarray:
        return np.fromiter((self.norm_id(normalise(t or "")) for t in texts), dtype=np.int64, count=len(texts))

    def lookup(self, domain: np.ndarray, nid: np.ndarray) -> np.ndarray:
        """Value id whose surface is ``nid`` in ``domain`` (PRED_OTHER where none is)."""
        if self.keys.size == 0:
            return np.full(nid.size, PRED_OTHER, dtype=np.int64)
        comp = (domain << 32) | nid
        pos = np.minimum(np.searchsorted(self.keys, comp), self.keys.size - 1)
        return np.where(self.keys[pos] == comp, self.values[pos], PRED_OTHER)


def _indices(encoded: pa.DictionaryArray) -> np.ndarray:
    """Dictionary indices as int64, -1 for nulls."""
    return pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _default_value_surface() -> ValueSurface | None:
    try:
        return importlib.import_module("memgen.text").value_surface
    except (ImportError, AttributeError):
        return None


def text_codes(frame: QueryFrame, queries: np.ndarray, texts: pa.Array | Sequence[str | None],
               value_surface: ValueSurface | None = None, notes: list[str] | None = None) -> np.ndarray:
    """Value code (outcomes.PRED_*) of each text answer ``texts[j]`` to query ``queries[j]``:
    the gold value id when it normalises to the gold text, ``PRED_ABSENT`` when it says the
    key has no value, the value id whose surface it names (gold or trap values of the
    episode's domain), ``PRED_OTHER`` otherwise, ``PRED_UNPARSED`` when empty or null.

    Each distinct answer string is normalised once; the rest is array work."""
    key = ("text_index", id(value_surface))
    if key not in frame._cache:
        frame._cache[key] = _TextIndex(frame, value_surface)
    index: _TextIndex = frame._cache[key]
    if notes is not None:
        notes.extend(index.notes)
    arr = texts if isinstance(texts, pa.Array) else pa.array(list(texts), pa.string())
    enc = pc.dictionary_encode(arr)
    uniq = enc.dictionary.to_pylist()
    norms = [normalise(t) for t in uniq]
    nid_u = np.fromiter((index.norm_id(n) for n in norms), dtype=np.int64, count=len(norms))
    absent_u = np.fromiter((is_absent(n) for n in norms), dtype=bool, count=len(norms))
    empty_u = np.fromiter((not n for n in norms), dtype=bool, count=len(norms))
    u = _indices(enc)
    null = u < 0
    u = np.maximum(u, 0)
    if not norms:  # every answer is null
        return np.full(queries.size, PRED_UNPARSED, dtype=np.int64)
    nid = nid_u[u]
    found = index.lookup(index.row_domain[frame.row[queries]], nid)
    return np.select(
        [null | empty_u[u], nid == index.gold_id[queries], absent_u[u]],
        [PRED_UNPARSED, frame.answer[queries], PRED_ABSENT], default=found)


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
    if isinstance(predictions, np.ndarray) and predictions.dtype.kind in "iu":
        tokens, texts = predictions.astype(np.int64).reshape(-1), None
    else:
        values = list(predictions.tolist() if isinstance(predictions, np.ndarray) else predictions)
        tokens, texts = prediction_values(values)
    n = tokens.size
    none = np.full(n, -1, np.int64)
    return Predictions(name or "predictions", "<aligned>", pa.nulls(n, pa.string()), none, none, tokens,
                       texts, np.zeros(n, np.int64), aligned=True)


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
        texts = preds.texts_at(pidx[is_text_q])
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


__all__ = ["ScoreResult", "TokenVocab", "align", "load_frame", "score", "text_codes"]
