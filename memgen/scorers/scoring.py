"""``score()``: predictions in, one outcome per query out (DESIGN.md section 7).

The token path (token, chunk and bridge renderings) maps token ids to value ids with array
arithmetic; the text path normalises each distinct answer string once and looks it up among
the surfaces of the query's gold and trap values.  Both then meet in
:func:`memgen.scorers.outcomes.classify`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from memgen.format.codes import ASKS, OUTCOMES, PROBES
from memgen.format.errors import UsageError
from memgen.scorers.align import align
from memgen.scorers.answers import TokenVocab, ValueSurface, _default_value_surface, text_codes
from memgen.scorers.dataset import read_dataset
from memgen.scorers.frame import TEXT_RENDERINGS, QueryFrame, build_frame
from memgen.scorers.outcomes import CORRECT, PRED_UNPARSED, UNPARSED, classify
from memgen.scorers.predictions import Predictions, prediction_values, read_predictions


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
    ``value_surface`` gives the text of trap values (default: ``memgen.render.text.domain.value_surface``).

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
