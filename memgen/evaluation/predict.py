"""``evaluate()``: run mechanism models on a dataset folder and score them (``memgen eval``);
``stress()``: the long-context stress test (``memgen stress``).

The models read the token or chunk rendering only (:class:`~memgen.models.stream.TokenBatch`);
the scorer (:mod:`memgen.scorers`) classifies every answer by DESIGN.md section 7.  Shards
are read one at a time (memory-mapped), each read once for every model, so memory follows the
largest shard, not the dataset.

A notebook calls it the same way as the CLI::

    from memgen.evaluation.predict import evaluate
    ev = evaluate("ds", ["hybrid", "sparse", "fixed_state:d=64"], out="preds")
    ev.cells()          # one dict per (model, probe): accuracy, counts, dominant wrong outcome
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from memgen.evaluation.zoo import default_models, get_model
from memgen.format.codes import OUTCOMES, PROBES
from memgen.format.errors import DataError, UsageError
from memgen.format.vocab import Vocab
from memgen.io.atomic import write_folder
from memgen.io.dataset import Dataset, open_verified
from memgen.io.shards import read_shard
from memgen.models.registry import ROUTES, Model, model_label
from memgen.models.stream import TokenBatch
from memgen.scorers.aggregate import TABLE_PROBES, outcome_cell
from memgen.scorers.answers import TokenVocab
from memgen.scorers.frame import REQUIRED_COLUMNS, build_frame
from memgen.scorers.outcomes import CORRECT
from memgen.scorers.scoring import score

#: renderings the mechanism models read
MODEL_RENDERINGS = ("token", "chunk")


@dataclass
class ModelResult:
    """One model's answers and outcomes on every evaluated query, in dataset order."""

    label: str
    prediction: np.ndarray  # (Q,) int64 token id
    route: np.ndarray  # (Q,) int8 index into ROUTES
    active_chunks: np.ndarray  # (Q,) int32
    outcome: np.ndarray  # (Q,) int8 index into OUTCOMES
    seconds: float  # time in predict()

    @property
    def correct(self) -> np.ndarray:
        return self.outcome == CORRECT


@dataclass
class Evaluation:
    """Every evaluated query (Q of them, over R episodes) and each model's result."""

    dataset: str
    configs: list[str]
    row_ids: list[str]  # (R,) episode ids
    row_config: np.ndarray  # (R,) index into configs
    query_row: np.ndarray  # (Q,) int64
    qid: np.ndarray  # (Q,) int64
    probe: np.ndarray  # (Q,) index into PROBES
    results: dict[str, ModelResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the whole evaluation
    parse_seconds: float = 0.0  # reading shards and parsing token streams (shared by the models)

    @property
    def n_queries(self) -> int:
        return self.query_row.size

    @property
    def n_episodes(self) -> int:
        return len(self.row_ids)

    def episodes_correct(self, label: str) -> int:
        """Episodes whose every query the model answered correctly."""
        wrong = np.bincount(self.query_row[~self.results[label].correct], minlength=self.n_episodes)
        return int((wrong == 0).sum())

    def cells(self) -> list[dict]:
        """One :func:`~memgen.scorers.aggregate.outcome_cell` per (model, probe in TABLE_PROBES
        with queries): ``n``, ``correct``, ``accuracy``, and the most frequent wrong outcome with
        its count (None if all right)."""
        out = []
        for label, res in self.results.items():
            for probe in TABLE_PROBES:
                sel = np.ones(self.n_queries, bool) if probe == "all" else self.probe == PROBES.index(probe)
                if sel.any():
                    out.append(outcome_cell(label, probe, np.bincount(res.outcome[sel], minlength=len(OUTCOMES))))
        return out

    def routes(self, label: str) -> dict[str, int]:
        """Queries answered by each route of the model."""
        c = np.bincount(self.results[label].route, minlength=len(ROUTES))
        return {r: int(c[i]) for i, r in enumerate(ROUTES) if c[i]}

    def summary(self) -> dict:
        """A JSON-able summary: cells, episodes fully correct, routes, active chunks, times."""
        models = {}
        for label, res in self.results.items():
            a = res.active_chunks
            models[label] = {
                "queries": self.n_queries, "correct": int(res.correct.sum()),
                "episodes": self.n_episodes, "episodes_correct": self.episodes_correct(label),
                "routes": self.routes(label),
                "active_chunks": [int(a.min(initial=0)), int(a.max(initial=0))],
                "seconds": round(res.seconds, 3),
            }
        return {"dataset": self.dataset, "configs": self.configs, "models": models,
                "cells": self.cells(), "notes": self.notes, "seconds": round(self.seconds, 3),
                "parse_seconds": round(self.parse_seconds, 3)}


def _file_name(label: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "-" for c in label.replace("=", "")) + ".jsonl"


def write_predictions(ev: Evaluation, out: str | Path) -> list[Path]:
    """Write ``<out>/<model>.jsonl`` per model (rows ``{"id", "qid", "prediction", "route",
    "active_chunks"}``, prediction a token id: the format ``memgen score`` reads) and
    ``<out>/summary.json``, the folder written whole (:func:`memgen.io.atomic.write_folder`: a
    kill never leaves predictions of two datasets side by side).  Returns the paths written."""
    root = Path(out)
    quoted = [json.dumps(i) for i in ev.row_ids]
    ids = [quoted[r] for r in ev.query_row.tolist()]
    qids = ev.qid.tolist()
    names = [_file_name(label) for label in ev.results]

    def write(tmp: Path) -> None:
        for name, res in zip(names, ev.results.values(), strict=True):
            routes = [json.dumps(ROUTES[r]) for r in res.route.tolist()]
            lines = [f'{{"id": {i}, "qid": {q}, "prediction": {p}, "route": {r}, "active_chunks": {a}}}\n'
                     for i, q, p, r, a in zip(ids, qids, res.prediction.tolist(), routes,
                                              res.active_chunks.tolist(), strict=True)]
            (tmp / name).write_text("".join(lines))
        (tmp / "summary.json").write_text(json.dumps(ev.summary(), indent=1) + "\n")

    write_folder(root, write, own=lambda name: name.endswith(".jsonl") or name == "summary.json")
    return [*(root / n for n in names), root / "summary.json"]


def _models(models: Sequence[str | Model] | None) -> list[Model]:
    specs = list(models) if models else default_models()
    built = [get_model(m) if isinstance(m, str) else m for m in specs]
    labels = [model_label(m) for m in built]
    dup = {x for x in labels if labels.count(x) > 1}
    if dup:
        raise UsageError(f"--model {sorted(dup)[0]} given twice")
    return built


def _configs(ds: Dataset, config: str | None) -> tuple[list[str], list[str]]:
    """(configs to evaluate, notes about the ones left out)."""
    if config is not None:
        rendering = ds.config(config)["rendering"]
        if rendering not in MODEL_RENDERINGS:
            raise UsageError(f"--config {config}: the {rendering} rendering; mechanism models read "
                             f"the {' or '.join(MODEL_RENDERINGS)} rendering")
        return [config], []
    names = [n for n in ds.configs if ds.config(n)["rendering"] in MODEL_RENDERINGS]
    skipped = [n for n in ds.configs if n not in names]
    if not names:
        raise UsageError(f"{ds.root}: no config in the {' or '.join(MODEL_RENDERINGS)} rendering "
                         "(mechanism models read token ids)")
    notes = [f"left out (not a token or chunk rendering): {', '.join(skipped)}"] if skipped else []
    return names, notes


def _read_batch(table: pa.Table, vocab: Vocab, where: str) -> TokenBatch:
    """The shard's batch, parsed (once, shared by every model); :class:`DataError` naming the
    shard when its columns cannot be read as the token layout."""
    try:
        batch = TokenBatch.from_table(table, vocab)
        _ = batch.stream, batch.queries
    except DataError as e:
        raise DataError(f"{where}: {e.message}") from None
    except (pa.ArrowException, KeyError, ValueError, TypeError, IndexError) as e:
        raise DataError(f"{where}: columns the models read are malformed ({e})") from None
    return batch


def evaluate(dataset: str | Path, models: Sequence[str | Model] | None = None, *,
             config: str | None = None, out: str | Path | None = None, check: bool = True,
             on_shard: Callable[[str, int, int], None] | None = None, workers: int | None = None,
             engine: str = "local", address: str | None = None) -> Evaluation:
    """Run ``models`` (names such as ``"fixed_state:d=64"``, or model objects; default:
    every registered model) on the dataset folder ``dataset`` and score their answers.

    Evaluates ``config``, or every config in the token or chunk rendering.  With ``check``
    the folder must pass ``memgen verify`` first (:class:`DataError` otherwise).  With ``out``,
    writes the predictions and a summary there (:func:`write_predictions`).  ``on_shard(config,
    shard index, shards in config)`` is called after each shard, in dataset order.  Shards are
    evaluated by ``engine`` with ``workers`` (see :func:`memgen.pipeline.engines.map_tasks`); the
    predictions and outcomes are the same for any engine and worker count."""
    from memgen.pipeline.engines import check_engine, engine_session, map_tasks

    check_engine(engine, workers, address)
    t0 = time.perf_counter()
    root = Path(dataset)
    if not root.is_dir():
        raise DataError(f"{root}: no such dataset folder")
    built = _models(models)  # unknown model names fail before any work
    ds = open_verified(root, check)
    names, notes = _configs(ds, config)
    if not ds.vocab:
        raise DataError(f"{root}/manifest.json: no vocab table; cannot read token ids")
    try:
        vocab = Vocab.from_dict(ds.vocab)
    except (KeyError, TypeError, ValueError, UsageError) as e:
        raise DataError(f"{root}/manifest.json: unreadable vocab table ({e})") from None
    token_vocab = TokenVocab.from_manifest(ds.manifest)

    labels = [model_label(m) for m in built]
    parts: dict[str, list[tuple]] = {label: [] for label in labels}
    seconds = dict.fromkeys(labels, 0.0)
    row_ids: list[str] = []
    row_config, query_row, qid, probe = [], [], [], []
    parse_s = 0.0
    jobs = [(ci, si, shard["path"]) for ci, name in enumerate(names)
            for si, shard in enumerate(ds.config(name)["shards"])]
    run = partial(_eval_shard, root, vocab, token_vocab, built)
    done: dict[tuple[int, int, str], dict] = {}
    with engine_session(engine, workers, address):
        for job, part in map_tasks(run, jobs, workers, engine, address):
            done[job] = part
            while len(row_config) < len(jobs) and jobs[len(row_config)] in done:  # in dataset order
                ci, si, _ = jobs[len(row_config)]
                part = done.pop(jobs[len(row_config)])
                parse_s += part["parse_s"]
                for label in labels:
                    *arrays, secs = part["models"][label]
                    parts[label].append(tuple(arrays))
                    seconds[label] += secs
                query_row.append(part["row"] + len(row_ids))
                qid.append(part["qid"])
                probe.append(part["probe"])
                row_ids.extend(part["ids"])
                row_config.append(np.full(len(part["ids"]), ci))
                if on_shard:
                    on_shard(names[ci], si, len(ds.config(names[ci])["shards"]))

    cat = lambda xs, dtype: np.concatenate(xs).astype(dtype) if xs else np.zeros(0, dtype)
    ev = Evaluation(dataset=str(root), configs=names, row_ids=row_ids, row_config=cat(row_config, np.int64),
                    query_row=cat(query_row, np.int64), qid=cat(qid, np.int64), probe=cat(probe, np.int64),
                    notes=notes, parse_seconds=parse_s)
    for label in labels:
        cols = list(zip(*parts[label], strict=True)) or [[], [], [], []]
        ev.results[label] = ModelResult(label, cat(cols[0], np.int64), cat(cols[1], np.int8),
                                        cat(cols[2], np.int32), cat(cols[3], np.int8), seconds[label])
    ev.seconds = time.perf_counter() - t0
    if out is not None:
        write_predictions(ev, out)
    return ev


def _eval_shard(root: Path, vocab: Vocab, token_vocab: TokenVocab, built: list[Model],
                job: tuple[int, int, str]) -> dict:
    """Every model's answers and outcomes on one shard (a pure function of its arguments, so
    that any worker may run it): per model label (prediction, route, active_chunks, outcome,
    seconds in predict()), and the shard's query rows, qids, probes and row ids."""
    path = job[2]
    t = time.perf_counter()
    table = read_shard(root / path)
    batch = _read_batch(table, vocab, path)
    parse_s = time.perf_counter() - t
    frame = build_frame(table.select(list(REQUIRED_COLUMNS)), source=path)
    out: dict[str, tuple] = {}
    for model in built:
        label = model_label(model)
        b = replace(batch, gold=frame.answer) if model.reads_gold else batch
        t = time.perf_counter()
        answers = model.predict(b)
        secs = time.perf_counter() - t
        scored = score(frame, answers.prediction.tolist(), name=label, vocab=token_vocab)
        out[label] = (answers.prediction, answers.route, answers.active_chunks, scored.outcome, secs)
    return {"parse_s": parse_s, "models": out, "row": frame.row, "qid": frame.qid, "probe": frame.probe,
            "ids": pc.cast(table.column("id"), "string").to_pylist()}
