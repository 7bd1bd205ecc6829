"""``evaluate_selection()``: run selectors on a dataset folder and score what they select
(``memgen select``).  A notebook calls it the same way as the CLI::

    from memgen.selection.evaluate import evaluate_selection
    res = evaluate_selection("ds", ["bm25:k=8", "dense:k=8", "oracle"])
    res.cells()     # one dict per (selector, probe): recall@1/2/4/8, MRR, trap mix

For the mechanism selectors (``sparse``, ``hybrid`` on the chunk rendering) the model itself is
also run (:func:`memgen.evaluation.predict.evaluate`), and each of its answers is attributed:
``correct``; ``selection`` (wrong, and some evidence was not among its ``k`` chunks); or
``reading`` (wrong although every evidence chunk was kept).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from memgen.format.codes import PROBES
from memgen.format.errors import UsageError
from memgen.io.dataset import open_verified
from memgen.selection.episodes import SelectionEpisode, check_config, iter_selection_episodes
from memgen.selection.metrics import KS, TRAPS, rank, score_ranking
from memgen.selection.registry import Selector, check_rendering, parse_select, selector_label

ATTRIBUTION = ("correct", "selection", "reading")
#: the probes of the tables, then every query
TABLE_PROBES = (*PROBES, "all")


@dataclass
class SelectorRun:
    """One selector's scores on every query (Q, in dataset order) and its timing."""

    label: str
    k: int
    recall: np.ndarray  # (Q, len(KS))
    recall_k: np.ndarray  # (Q,)
    rr: np.ndarray  # (Q,)
    trap: np.ndarray  # (Q,) int8 index into TRAPS, -1 without evidence
    top: list[list[int]]  # (Q,) its top k passages
    seconds: float = 0.0  # in scores() and ranking
    ranked: int = 0  # (query, passage) pairs ranked
    attribution: np.ndarray | None = None  # (Q,) int8 index into ATTRIBUTION (mechanism selectors)


@dataclass
class SelectionResult:
    dataset: str
    configs: list[str]
    ids: list[str] = field(default_factory=list)  # (Q,) episode id of each query
    config: list[str] = field(default_factory=list)  # (Q,)
    qid: list[int] = field(default_factory=list)  # (Q,)
    probe: list[str] = field(default_factory=list)  # (Q,)
    n_evidence: list[int] = field(default_factory=list)  # (Q,)
    runs: dict[str, SelectorRun] = field(default_factory=dict)
    episodes: int = 0
    passages: int = 0

    def cells(self) -> list[dict]:
        """One dict per (selector, probe in TABLE_PROBES with queries): ``n`` (queries with
        evidence), ``no_evidence``, ``recall@k`` for k in KS and at the selector's k, ``mrr``,
        ``traps`` (counts by TRAPS) and, for mechanism selectors, ``attribution`` counts."""
        probe = np.asarray(self.probe)
        out = []
        for label, run in self.runs.items():
            for p in TABLE_PROBES:
                sel = np.ones(probe.size, bool) if p == "all" else probe == p
                if not sel.any():
                    continue
                has = sel & ~np.isnan(run.rr)
                cell = {"selector": label, "probe": p, "n": int(has.sum()), "no_evidence": int((sel & ~has).sum())}
                for j, kk in enumerate(KS):
                    cell[f"recall@{kk}"] = _mean(run.recall[has, j])
                cell[f"recall@k={run.k}"] = _mean(run.recall_k[has])
                cell["mrr"] = _mean(run.rr[has])
                counts = np.bincount(run.trap[has], minlength=len(TRAPS))
                cell["traps"] = {t: int(c) for t, c in zip(TRAPS, counts, strict=True)}
                if run.attribution is not None:
                    a = np.bincount(run.attribution[sel], minlength=len(ATTRIBUTION))
                    cell["attribution"] = {t: int(c) for t, c in zip(ATTRIBUTION, a, strict=True)}
                out.append(cell)
        return out

    def throughput(self) -> dict[str, dict]:
        """Per selector: seconds, (query, passage) pairs ranked, and pairs ranked per second."""
        return {label: {"seconds": round(r.seconds, 3), "ranked": r.ranked,
                        "ranked_per_s": round(r.ranked / r.seconds, 1) if r.seconds > 0 else None}
                for label, r in self.runs.items()}


def _mean(a: np.ndarray) -> float | None:
    return round(float(a.mean()), 4) if a.size else None


def select_configs(ds, configs: Sequence[str] | None) -> list[str]:
    """The configs to select on: the named ones (each checked to carry passages), or every
    config that does (UsageError if none)."""
    if configs:
        for c in configs:
            check_config(ds, c)
        return list(configs)
    ok = []
    for c in ds.configs:
        try:
            check_config(ds, c)
        except UsageError:
            continue
        ok.append(c)
    if not ok:
        raise UsageError(f"{ds.root}: no config with passages or chunks (it has {', '.join(ds.configs)}); "
                         f"selection reads the chunk rendering or the text rendering generated with --chunk-size N")
    return ok


def evaluate_selection(dataset: str | Path, specs: Sequence[str | Selector], *, configs: Sequence[str] | None = None,
                       limit: int | None = None, check: bool = True,
                       on_episode: Callable[[SelectionEpisode], None] | None = None) -> SelectionResult:
    """Run the selectors ``specs`` (``"bm25:k=8"`` or selector objects) on every episode of
    ``configs`` (default: every config with passages), at most ``limit`` episodes a config,
    and score each query.  UsageError for a bad spec, or a selector that does not read a
    config's rendering; DataError for a folder that fails verification (with ``check``)."""
    sels = [parse_select(s) if isinstance(s, str) else s for s in specs]
    if not sels:
        raise UsageError("--select: give at least one selector, e.g. --select bm25:k=8")
    labels = [selector_label(s) for s in sels]
    if len(set(labels)) < len(labels):
        raise UsageError(f"--select: a selector is given twice ({', '.join(labels)})")
    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1")
    ds = open_verified(dataset, check=check)
    names = select_configs(ds, configs)
    for c in names:
        for s in sels:
            check_rendering(s, ds.config(c)["rendering"], c)
    res = SelectionResult(str(dataset), names)
    parts: dict[str, list] = {lab: [] for lab in labels}
    timing = {lab: [0.0, 0] for lab in labels}
    for c in names:
        for ep in iter_selection_episodes(ds, c, limit):
            res.episodes += 1
            res.passages += ep.n_passages
            res.ids += [ep.id] * ep.n_queries
            res.config += [c] * ep.n_queries
            res.qid += ep.qid.tolist()
            res.probe += ep.probe
            res.n_evidence += [int(e.size) for e in ep.evidence]
            for sel, lab in zip(sels, labels, strict=True):
                t = time.perf_counter()
                r = rank(sel.scores(ep), ep.before)
                timing[lab][0] += time.perf_counter() - t
                timing[lab][1] += int(np.minimum(ep.before, ep.n_passages).sum())
                sc = score_ranking(ep, r, sel.k)
                parts[lab].append((sc, [r.top(q, sel.k).tolist() for q in range(ep.n_queries)]))
            if on_episode is not None:
                on_episode(ep)
    for sel, lab in zip(sels, labels, strict=True):
        got = parts[lab]
        scored = [sc for sc, _ in got]
        res.runs[lab] = SelectorRun(lab, sel.k, _cat(scored, "recall", (0, len(KS))), _cat(scored, "recall_k"),
                                    _cat(scored, "rr"), _cat(scored, "trap").astype(np.int8),
                                    [t for _, tops in got for t in tops], *timing[lab])
        if getattr(sel, "model", None):  # a model's own choice: attribute its answers too
            res.runs[lab].attribution = _attribute(dataset, sel, names, res, check)
    return res


def _cat(scored: list, name: str, empty: tuple[int, ...] = (0,)) -> np.ndarray:
    """One field of every episode's QueryScores, joined in dataset order."""
    return np.concatenate([getattr(sc, name) for sc in scored]) if scored else np.zeros(empty)


def _attribute(dataset, sel: Selector, configs: list[str], res: SelectionResult, check: bool) -> np.ndarray:
    """Each query's answer by the model behind a mechanism selector, attributed (ATTRIBUTION)."""
    from memgen.evaluation.predict import evaluate

    run = res.runs[selector_label(sel)]
    where = {(c, i, q): n for n, (c, i, q) in enumerate(zip(res.config, res.ids, res.qid, strict=True))}
    correct = np.zeros(len(res.ids), dtype=bool)
    for c in configs:
        ev = evaluate(dataset, [f"{sel.model}:k={sel.k}"], config=c, check=check)
        out = next(iter(ev.results.values()))
        for r, q, ok in zip(ev.query_row.tolist(), ev.qid.tolist(), out.correct.tolist(), strict=True):
            n = where.get((c, ev.row_ids[r], q))
            if n is not None:
                correct[n] = ok
    kept_all = ~(run.recall_k < 1.0)  # nan (no evidence) counts as kept: nothing to miss
    return np.where(correct, 0, np.where(kept_all, 2, 1)).astype(np.int8)
