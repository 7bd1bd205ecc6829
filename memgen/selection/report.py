"""The outputs of ``memgen select --out DIR``, written whole (:func:`memgen.io.atomic.write_folder`):

* ``report.json``: the cells (selector x probe: recall@k, MRR, trap mix, attribution), the
  throughput of each selector, and what was read;
* ``report.md``: the same as Markdown tables;
* ``queries.jsonl``: one row per (selector, query): id, qid, probe, evidence count, recall@k,
  reciprocal rank, trap, and the top k passages;
* ``recall.png``: recall@k against k, one panel per probe, one line per selector;
* ``traps.png``: the trap mix of each probe as stacked bars, one panel per selector.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from memgen.format.errors import UsageError
from memgen.io.atomic import write_folder
from memgen.selection.evaluate import TABLE_PROBES, SelectionResult
from memgen.selection.metrics import KS, TRAPS

FILES = ("report.json", "report.md", "queries.jsonl", "recall.png", "traps.png")
#: one fixed colour per trap, the same in every plot
TRAP_COLOURS = {"none": "#2e7d32", "deleted": "#6d4c41", "stale": "#f9a825", "distractor": "#8e24aa",
                "lookalike": "#ef6c00", "other_key": "#1e88e5", "filler": "#90a4ae", "unranked": "#212121"}


def summary(res: SelectionResult) -> dict:
    return {"dataset": res.dataset, "configs": res.configs, "episodes": res.episodes, "queries": len(res.qid),
            "passages": res.passages, "cells": res.cells(), "throughput": res.throughput()}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def trap_mix(cell: dict, top: int = 3) -> str:
    """``stale 40%, distractor 12%``: the most frequent traps other than ``none``."""
    n = sum(cell["traps"].values())
    wrong = sorted(((c, t) for t, c in cell["traps"].items() if t != "none" and c), reverse=True)[:top]
    return ", ".join(f"{t} {100 * c / n:.0f}%" for c, t in wrong) if wrong else "-"


def markdown(res: SelectionResult) -> str:
    cells = res.cells()
    lines = [f"# Selection on {res.dataset}", "",
             f"{res.episodes:,} episodes, {len(res.qid):,} queries, {res.passages:,} passages "
             f"({', '.join(res.configs)}).  recall@k: share of the evidence passages in the top k; "
             "trap: what the selector ranked first instead of the evidence.", ""]
    head = ("| selector | probe | n | " + " | ".join(f"R@{k}" for k in KS)
            + " | R@own k | MRR | evidence first | traps |")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for c in cells:
        own = next(v for key, v in c.items() if key.startswith("recall@k="))
        n = max(1, sum(c["traps"].values()))
        lines.append(f"| {c['selector']} | {c['probe']} | {c['n']} | "
                     + " | ".join(_pct(c[f"recall@{k}"]) for k in KS)
                     + f" | {_pct(own)} | {_pct(c['mrr'])} | {100 * c['traps']['none'] / n:.0f}% | {trap_mix(c)} |")
    attributed = [c for c in cells if "attribution" in c]
    if attributed:
        lines += ["", "Answers of the model behind each mechanism selector: wrong ones attributed to selection "
                  "(evidence not kept) or reading (evidence kept, answer still wrong).", "",
                  "| selector | probe | correct | selection | reading |", "|---|---|---|---|---|"]
        lines += [f"| {c['selector']} | {c['probe']} | {c['attribution']['correct']} | "
                  f"{c['attribution']['selection']} | {c['attribution']['reading']} |" for c in attributed]
    lines += ["", "| selector | seconds | (query, passage) pairs ranked | per second |", "|---|---|---|---|"]
    lines += [f"| {s} | {t['seconds']} | {t['ranked']:,} | {t['ranked_per_s'] or '-'} |"
              for s, t in res.throughput().items()]
    return "\n".join(lines) + "\n"


def query_rows(res: SelectionResult):
    for label, run in res.runs.items():
        for n in range(len(res.qid)):
            rr = run.rr[n]
            yield {"selector": label, "config": res.config[n], "id": res.ids[n], "qid": res.qid[n],
                   "probe": res.probe[n], "evidence": res.n_evidence[n],
                   **{f"recall@{k}": None if math.isnan(run.recall[n, j]) else float(run.recall[n, j])
                      for j, k in enumerate(KS)},
                   "rr": None if math.isnan(rr) else float(rr),
                   "trap": TRAPS[run.trap[n]] if run.trap[n] >= 0 else None, "top": run.top[n]}


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise UsageError("plots need matplotlib: pip install 'memgen-bench[plots]', or pass --no-plots") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_recall(res: SelectionResult, path: Path) -> None:
    plt = _plt()
    cells = [c for c in res.cells() if c["n"]]
    probes = [p for p in TABLE_PROBES if any(c["probe"] == p for c in cells)]
    ncols = min(4, len(probes))
    nrows = -(-len(probes) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.8 * nrows), squeeze=False, sharey=True,
                             constrained_layout=True)
    flat = [a for row in axes for a in row]
    for ax, p in zip(flat, probes, strict=False):
        for label in res.runs:
            c = next((c for c in cells if c["probe"] == p and c["selector"] == label), None)
            if c is not None:
                ax.plot(KS, [c[f"recall@{k}"] for k in KS], marker="o", label=label)
        ax.set_title(p)
        ax.set_xscale("log", base=2)
        ax.set_xticks(KS, [str(k) for k in KS])
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("k")
        ax.grid(alpha=0.3)
    for ax in flat[len(probes):]:
        ax.set_visible(False)
    flat[0].set_ylabel("evidence recall@k")
    flat[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("evidence recall@k per probe")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_traps(res: SelectionResult, path: Path) -> None:
    plt = _plt()
    cells = [c for c in res.cells() if c["n"]]
    labels = list(res.runs)
    ncols = min(3, len(labels))
    nrows = -(-len(labels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False, sharey=True,
                             constrained_layout=True)
    flat = [a for row in axes for a in row]
    for ax, label in zip(flat, labels, strict=False):
        mine = [c for c in cells if c["selector"] == label]
        x = np.arange(len(mine))
        bottom = np.zeros(len(mine))
        for t in TRAPS:
            share = np.asarray([c["traps"][t] / max(1, c["n"]) for c in mine])
            if share.any():
                ax.bar(x, share, bottom=bottom, color=TRAP_COLOURS[t], label=t)
                bottom += share
        ax.set_xticks(x, [c["probe"] for c in mine], rotation=35, ha="right", fontsize=7)
        ax.set_title(label, fontsize=9)
        ax.set_ylim(0, 1)
    for ax in flat[len(labels):]:
        ax.set_visible(False)
    flat[0].set_ylabel("share of queries")
    handles = {h.get_label(): h for ax in flat for h in ax.containers}
    fig.legend(list(handles.values()), list(handles), fontsize=7, loc="outside right upper")
    fig.suptitle("what each selector ranked first (none: the evidence)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(res: SelectionResult, out: str | Path, plots: bool = True) -> list[Path]:
    """Write the report folder ``out`` whole; returns the paths written."""
    if plots:
        _plt()  # a missing matplotlib fails before anything is written

    def write(tmp: Path) -> None:
        (tmp / "report.json").write_text(json.dumps(summary(res), indent=1) + "\n")
        (tmp / "report.md").write_text(markdown(res))
        with open(tmp / "queries.jsonl", "w") as f:
            for row in query_rows(res):
                f.write(json.dumps(row) + "\n")
        if plots:
            plot_recall(res, tmp / "recall.png")
            plot_traps(res, tmp / "traps.png")

    write_folder(out, write, own=lambda name: name in FILES)
    root = Path(out).expanduser()
    return [root / n for n in FILES if (root / n).exists()]
