"""``score()``: predictions in, one outcome per query out (DESIGN.md section 7).

The token path (token, chunk and bridge renderings) maps token ids to value ids with array
arithmetic; the text path normalises each distinct answer string once and looks it up among
the surfaces of the query's gold and trap values.  Both then meet in
:func:`memgen.scorers.outcomes.classify`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from memgen.format.codes import ASKS, OUTCOMES, PROBES
from memgen.format.errors import DataError, UsageError
from memgen.scorers.align import align
from memgen.scorers.answers import TokenVocab, ValueSurface, _default_value_surface, text_codes
from memgen.scorers.dataset import read_dataset
from memgen.scorers.frame import TEXT_RENDERINGS, QueryFrame, build_frame
from memgen.scorers.outcomes import CORRECT, PRED_UNPARSED, UNPARSED, classify
from memgen.scorers.predictions import Predictions, prediction_values, read_predictions


@dataclass
class ScoreResult:
    """Outcomes of one model's predictions on every query of ``frame``, strict and lenient.

    ``outcome[i]`` indexes :data:`OUTCOMES` (``unparsed`` where no prediction came);
    ``lenient[i]`` is the outcome of lenient scoring (the same as ``outcome`` for token
    answers; docs/scoring.md, "Strict and lenient"); ``scored[i]`` is False for queries left
    out of the score (configs the predictions do not touch at all).  ``sha256`` is the
    predictions file's (None for predictions given in memory)."""

    name: str
    source: str
    frame: QueryFrame
    outcome: np.ndarray
    scored: np.ndarray
    missing: int
    notes: list[str] = field(default_factory=list)
    lenient: np.ndarray | None = None
    sha256: str | None = None

    def __post_init__(self) -> None:
        if self.lenient is None:
            self.lenient = self.outcome

    @property
    def n(self) -> int:
        return int(self.scored.sum())

    @property
    def correct(self) -> int:
        return int(((self.outcome == CORRECT) & self.scored).sum())

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    @property
    def lenient_correct(self) -> int:
        return int(((self.lenient == CORRECT) & self.scored).sum())

    @property
    def lenient_accuracy(self) -> float:
        return self.lenient_correct / self.n if self.n else float("nan")

    def counts(self, lenient: bool = False) -> dict[str, int]:
        """Number of scored queries per outcome (strict, or ``lenient``), every outcome present."""
        c = np.bincount((self.lenient if lenient else self.outcome)[self.scored], minlength=len(OUTCOMES))
        return {o: int(c[i]) for i, o in enumerate(OUTCOMES)}

    def report(self):
        """The :class:`~memgen.scorers.aggregate.Report` of this one model."""
        from memgen.scorers.aggregate import report

        return report(self)

    def _repr_html_(self) -> str:
        """The notebook rendering: this model's report (per-probe accuracy strict and lenient
        with their intervals, and the outcome mix)."""
        return self.report()._repr_html_()

    def to_table(self) -> pa.Table:
        """One row per scored query: where it is, what it tests, and its outcome (strict and lenient)."""
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
            "lenient_outcome": np.asarray(OUTCOMES)[self.lenient[m]],
        })


#: a datasets.Dataset is taken too (checked by duck type: scoring never imports datasets)
DatasetLike = str | Path | QueryFrame | pa.Table
PredictionsLike = str | Path | Predictions | pa.Table | Mapping | np.ndarray | Sequence | Iterable


def load_frame(dataset: DatasetLike, config: str | None = None, split: str | None = None) -> QueryFrame:
    """A :class:`QueryFrame` from a dataset folder, a table, a ``datasets.Dataset``, or a frame
    (returned as is)."""
    if isinstance(dataset, QueryFrame):
        return dataset
    if isinstance(dataset, pa.Table):
        frame = build_frame(dataset)
        frame.manifest = _table_manifest(dataset)
        return frame
    if isinstance(dataset, (str, Path)):
        return read_dataset(dataset, config=config, split=split)
    if type(dataset).__module__.startswith("datasets") and hasattr(dataset, "with_format"):
        return load_frame(dataset.with_format("arrow")[:])  # a datasets.Dataset: its rows as Arrow
    raise UsageError(f"cannot score against a {type(dataset).__name__}; pass a dataset folder, a table, "
                     "or a datasets.Dataset")


def _table_manifest(table: pa.Table) -> dict:
    """The manifest that :func:`memgen.generate` and :func:`memgen.load` keep in a table's
    schema metadata (for its token vocabulary), or ``{}``."""
    import json

    raw = (table.schema.metadata or {}).get(b"memgen.manifest")
    if raw is None:
        return {}
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise DataError("<table>: its memgen.manifest metadata is not JSON") from None
    return manifest if isinstance(manifest, dict) else {}


def _as_predictions(predictions: PredictionsLike, frame: QueryFrame, name: str | None) -> Predictions:
    """The :class:`Predictions` of any input :func:`score` accepts; anything else is one
    :class:`UsageError` (never a silent 0%: a list of records read as answers scores nothing)."""
    label = name or "predictions"
    if isinstance(predictions, Predictions):
        return predictions
    if isinstance(predictions, (str, Path)):
        return read_predictions(predictions, name=name)
    if isinstance(predictions, pa.Table):
        return Predictions.from_table(predictions, name=label)
    if _is_pandas_frame(predictions):
        return _from_pandas(predictions, label)
    if isinstance(predictions, Mapping):
        return _from_mapping(predictions, label)
    if isinstance(predictions, np.ndarray) and predictions.dtype.kind in "iu":
        return _aligned(predictions.astype(np.int64).reshape(-1), None, label)
    if isinstance(predictions, np.ndarray) and predictions.ndim == 1:
        values = predictions.tolist()
    elif isinstance(predictions, (pa.Array, pa.ChunkedArray)):
        values = predictions.to_pylist()
    elif hasattr(predictions, "tolist") and type(predictions).__module__.startswith("pandas"):
        values = predictions.tolist()  # a pandas Series of answers, in dataset order
    elif isinstance(predictions, Iterable) and not isinstance(predictions, _NOT_A_SEQUENCE):
        values = list(predictions)
    else:
        raise UsageError(_WHAT_PREDICTIONS.format(type(predictions).__name__))
    if values and all(isinstance(v, Mapping) for v in values):
        return Predictions.from_records(values, name=label, source="<records>")
    bad = next((v for v in values if not isinstance(v, _PLAIN_ANSWER)), None)
    if bad is not None:
        what = "records and plain answers mixed" if any(isinstance(v, Mapping) for v in values) \
            else f"an answer of type {type(bad).__name__}"
        raise UsageError(f"predictions: {what}; " + _WHAT_PREDICTIONS.format("sequence"))
    # numpy scalars (list(np.array(...))) are answers as their Python counterparts are
    values = [v.item() if isinstance(v, np.generic) else str(v) if isinstance(v, str) else v for v in values]
    tokens, texts = prediction_values(values)
    return _aligned(tokens, texts, label)


#: iterables that are no sequence of answers (bytes iterate as ints; a set has no order)
_NOT_A_SEQUENCE = (bytes, bytearray, memoryview, np.ndarray, set, frozenset)
#: the elements of an aligned sequence: a token id, a text, or nothing (unparsed)
_PLAIN_ANSWER = (str, int, float, np.generic, type(None))
_WHAT_PREDICTIONS = (
    "cannot read predictions from a {}; pass a predictions file, a list of records ({{'id', 'qid', "
    "'prediction'}} or {{'id', 'answer_block'}}), a dict {{(id, qid): answer}}, a pandas DataFrame "
    "or Arrow table with those columns, or one plain answer (token id or text) per query in dataset order")


def _aligned(tokens: np.ndarray, texts: list | None, name: str) -> Predictions:
    n = tokens.size
    none = np.full(n, -1, np.int64)
    return Predictions(name, "<aligned>", pa.nulls(n, pa.string()), none, none, tokens,
                       texts, np.zeros(n, np.int64), aligned=True)


def _from_mapping(predictions: Mapping, name: str) -> Predictions:
    recs = []
    for key, value in predictions.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise UsageError(f"predictions: a dict must be keyed by (id, qid) pairs, not {key!r}; "
                             + _WHAT_PREDICTIONS.format("dict keyed that way"))
        i, q = key
        recs.append({"id": i.item() if isinstance(i, np.generic) else i,
                     "qid": q.item() if isinstance(q, np.integer) else q,
                     "prediction": value.item() if isinstance(value, np.generic) else value})
    return Predictions.from_records(recs, name=name, source="<mapping>")


def _is_pandas_frame(x: object) -> bool:
    # checked by duck type: scoring never imports pandas
    return type(x).__module__.startswith("pandas") and hasattr(x, "columns") and hasattr(x, "to_dict")


def _from_pandas(df, name: str) -> Predictions:
    """A DataFrame of prediction columns (as :meth:`Predictions.from_table` reads them), or
    of records of any kind (answer blocks, lm-eval samples) when its columns are not flat."""
    cols = [str(c) for c in df.columns]
    if ("prediction" in cols or "predictions" in cols) and not {"answer_block", "doc"} & set(cols):
        try:
            table = pa.Table.from_pandas(df, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            table = None  # a column of mixed token ids and texts: read row by row
        if table is not None:
            pred = "prediction" if "prediction" in cols else "predictions"
            col = table.column(pred)
            if pa.types.is_floating(col.type):
                # pandas stores integer ids with a missing one as floats: read them as ids again
                vals = col.to_numpy(zero_copy_only=False)
                ok = ~np.isnan(vals)
                if np.all(vals[ok] == np.round(vals[ok])):
                    ints = pa.array(np.where(ok, vals, 0).astype(np.int64), mask=~ok)
                    table = table.set_column(table.column_names.index(pred), pred, ints)
            return Predictions.from_table(table, name=name, source="<DataFrame>")
    records = df.to_dict("records")
    for r in records:
        for k, v in list(r.items()):
            if isinstance(v, float) and v != v:
                del r[k]  # pandas fills a field a row lacks with NaN: it is absent, not an answer
            elif k in ("qid", "prediction") and isinstance(v, float) and v.is_integer():
                r[k] = int(v)  # an integer column with a gap is stored as floats
    if not records:
        raise UsageError("predictions: the DataFrame has no rows")
    return Predictions.from_records(records, name=name, source="<DataFrame>")


def _block_rows(frame: QueryFrame, preds: Predictions) -> np.ndarray:
    """Rows of ``frame`` answered by an answer block of ``preds`` (empty blocks included); an
    id that is not in the dataset is a :class:`DataError`, as for any other answer."""
    if not preds.block_ids:
        return np.zeros(0, np.int64)
    ids = pa.array(preds.block_ids, pa.string())
    rows = pc.index_in(ids, value_set=frame.ids)
    unknown = np.asarray(rows.is_null())
    if unknown.any() and frame.other_ids is not None:
        unknown &= ~np.asarray(pc.is_in(ids, value_set=frame.other_ids))
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise DataError(f"{preds.source}:{preds.block_lines[i]}: id {preds.block_ids[i]!r} is not in the "
                        f"dataset {frame.source}")
    rows = rows.drop_null().to_numpy(zero_copy_only=False)
    return np.unique(rows.astype(np.int64))


def _run_outcome_rows(frame: QueryFrame, preds: Predictions) -> dict[str, np.ndarray]:
    """Per run outcome (``overflow``, ``refused``), the rows of ``frame`` it was recorded for
    (ids outside the frame's selection are skipped; :func:`_block_rows` checked the others)."""
    out = {}
    for name in sorted(set(preds.run_outcomes.values())):
        ids = pa.array([i for i, o in preds.run_outcomes.items() if o == name], pa.string())
        out[name] = pc.index_in(ids, value_set=frame.ids).drop_null().to_numpy(zero_copy_only=False).astype(np.int64)
    return out


def score(dataset: DatasetLike, predictions: PredictionsLike, *, name: str | None = None,
          vocab: TokenVocab | None = None, value_surface: ValueSurface | None = None,
          config: str | None = None, split: str | None = None) -> ScoreResult:
    """Classify every query of ``dataset`` by ``predictions`` (DESIGN.md section 7).

    ``dataset``: a dataset folder (restricted to ``config``/``split`` if given), a table of
    the memgen schema, or a :class:`QueryFrame` (reuse one to score several models fast).
    ``predictions``: a predictions file or table (see :mod:`memgen.scorers.predictions`), a
    :class:`Predictions`, a list (or any iterable) of prediction records as the JSONL rows are
    (``{"id", "qid", "prediction"}``, ``{"id", "answer_block"}``, lm-eval samples), a mapping
    ``{(id, qid): answer}``, a pandas DataFrame with those columns, or a sequence with one plain
    answer (token id, text or None) per query in dataset order; anything else raises
    :class:`UsageError`.  ``vocab`` maps token ids (default: the folder's manifest);
    ``value_surface`` gives the text of trap values (default: ``memgen.render.text.domain.value_surface``).

    Every answer is scored strictly and leniently (``outcome``, ``lenient``; docs/scoring.md).
    The questions of an episode recorded as ``overflow`` or ``refused`` by ``memgen run`` take
    that outcome.  Queries without a prediction are ``unparsed`` and counted in ``missing``.  When the
    dataset has several configs and the predictions touch only some of them, the others are
    left out of the score (and named in ``notes``)."""
    frame = load_frame(dataset, config=config, split=split)
    preds = _as_predictions(predictions, frame, name)
    pidx, qidx, notes = align(frame, preds)
    notes = list(preds.notes) + notes
    block_rows = _block_rows(frame, preds)

    scored = np.ones(frame.n_queries, dtype=bool)
    configs = np.unique(frame.config.astype(str))
    if configs.size > 1 and (qidx.size or block_rows.size):
        touched = np.unique(np.concatenate([frame.config[frame.row[qidx]], frame.config[block_rows]]).astype(str))
        left_out = sorted(set(configs.tolist()) - set(touched.tolist()))
        if left_out:
            scored = np.isin(frame.config[frame.row].astype(str), touched)
            notes.append(f"configs without any prediction left out: {', '.join(left_out)}")

    codes = np.full(frame.n_queries, PRED_UNPARSED, dtype=np.int64)
    lenient_codes = None
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
        lenient_codes = codes.copy()
        codes[tq], lenient_codes[tq] = text_codes(frame, tq, texts, value_surface, notes)

    outcome = classify(codes, frame.answer, frame.ask, frame.traps)
    lenient = outcome if lenient_codes is None else classify(lenient_codes, frame.answer, frame.ask, frame.traps)
    has_pred = np.zeros(frame.n_queries, dtype=bool)
    has_pred[qidx] = True
    run_outcomes = {name: np.isin(frame.row, rows) for name, rows in _run_outcome_rows(frame, preds).items()}
    for hit in run_outcomes.values():
        has_pred |= hit
    # a question of an episode answered by a block, without a line of its own, got an empty answer
    blank = ~has_pred & np.isin(frame.row, block_rows)
    if (scored & blank).any():
        notes.append(f"{int((scored & blank).sum())} questions have no numbered line in their episode's "
                     "answer block (scored unparsed)")
    has_pred |= blank
    missing = int((scored & ~has_pred).sum())
    if missing:
        notes.append(f"{missing} of {int(scored.sum())} queries have no prediction (scored unparsed)")
    outcome[~has_pred] = UNPARSED
    if lenient is not outcome:
        lenient[~has_pred] = UNPARSED
    for name, hit in run_outcomes.items():
        # an episode the runner got no answer for: its questions take the run's outcome
        outcome[hit] = lenient[hit] = OUTCOMES.index(name)
    return ScoreResult(preds.name, preds.source, frame, outcome, scored, missing, notes, lenient=lenient,
                       sha256=preds.sha256)
