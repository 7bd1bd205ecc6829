"""Aggregation of outcomes into reports: accuracy per probe with Wilson intervals, outcome mix
per probe, breakdowns by length, depth, number of updates and number of distractors.

:func:`report` takes one or several :class:`~memgen.scorers.scoring.ScoreResult` (several models
side by side) and returns a :class:`Report`, whose ``data`` is plain JSON and which renders
itself as Markdown (and through rich on a terminal).

:class:`ProbeTable` is the models x probes table, written once: ``memgen score`` writes it as
Markdown, ``memgen eval`` and ``memgen stress`` print it through rich, and
``benchmarks/bench_stress.py`` prints it as Markdown with one row per model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from memgen.format.codes import OUTCOMES, PROBES
from memgen.scorers.outcomes import CORRECT
from memgen.scorers.scoring import ScoreResult

Z95 = 1.959963984540054
#: depth bins: [edge_i, edge_{i+1}) of the deciding event's position / context length
DEPTH_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
DEPTH_LABELS = tuple(f"{a:.1f}-{b:.1f}" for a, b in zip(DEPTH_EDGES[:-1], DEPTH_EDGES[1:], strict=True))
NO_DEPTH = "n/a"
BREAKDOWNS = {
    "by_length": "target length (tokens)",
    "by_depth": "depth of the deciding event (share of the context)",
    "by_updates": "values the key had before the query",
    "by_distractors": "distractors about the key before the query",
}


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``k`` successes in ``n`` trials ((nan, nan) for n = 0)."""
    if n <= 0:
        return (math.nan, math.nan)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return (lo, hi)


def cell(k: int, n: int) -> dict:
    """{"correct", "total", "accuracy", "ci95"} for ``k`` of ``n`` (accuracy null when n = 0)."""
    lo, hi = wilson(k, n)
    return {"correct": int(k), "total": int(n), "accuracy": k / n if n else None,
            "ci95": [lo, hi] if n else None}


def dominant_wrong(counts: Sequence[int]) -> tuple[str | None, int]:
    """The most frequent wrong outcome among ``counts`` (one count per :data:`OUTCOMES` entry;
    the first in that order on a tie) and its count; ``(None, 0)`` when no answer was wrong."""
    wrong = [0 if i == CORRECT else int(k) for i, k in enumerate(counts)]
    worst = max(range(len(wrong)), key=wrong.__getitem__)
    return (OUTCOMES[worst], wrong[worst]) if wrong[worst] else (None, 0)


def _grouped(codes: np.ndarray, correct: np.ndarray, labels: Sequence) -> dict:
    """Accuracy cell per group code (groups with no query are left out)."""
    size = len(labels)
    total = np.bincount(codes, minlength=size)
    good = np.bincount(codes[correct], minlength=size)
    return {str(labels[i]): cell(int(good[i]), int(total[i])) for i in range(size) if total[i]}


def model_report(result: ScoreResult) -> dict:
    """The JSON report of one model (see docs/scoring.md, "Report")."""
    f, m = result.frame, result.scored
    outcome = result.outcome[m]
    correct = outcome == CORRECT
    rows = f.row[m]
    probe = f.probe[m]
    out: dict = {
        "name": result.name,
        "predictions": result.source,
        "queries": int(m.sum()),
        "missing": result.missing,
        "notes": list(result.notes),
        "overall": cell(int(correct.sum()), int(m.sum())),
        "outcomes": result.counts(),
    }
    by_probe = _grouped(probe, correct, PROBES)
    mix = np.zeros((len(PROBES), len(OUTCOMES)), dtype=np.int64)
    np.add.at(mix, (probe, outcome), 1)
    for i, p in enumerate(PROBES):
        if p in by_probe:
            by_probe[p]["outcomes"] = {o: int(mix[i, j]) for j, o in enumerate(OUTCOMES)}
    out["by_probe"] = by_probe

    lengths, l_code = np.unique(f.target_length[rows], return_inverse=True)
    out["by_length"] = _grouped(l_code, correct, lengths.tolist())
    depth = f.depth[m]
    d_code = np.where(np.isnan(depth), len(DEPTH_LABELS),
                      np.clip(np.searchsorted(DEPTH_EDGES, np.nan_to_num(depth), side="right") - 1,
                              0, len(DEPTH_LABELS) - 1))
    out["by_depth"] = _grouped(d_code, correct, DEPTH_LABELS + (NO_DEPTH,))
    upd = f.n_updates[m]
    out["by_updates"] = _grouped(upd, correct, list(range(int(upd.max(initial=0)) + 1)))
    dis = f.n_distractors[m]
    out["by_distractors"] = _grouped(dis, correct, list(range(int(dis.max(initial=0)) + 1)))
    out["probe_by_length"] = {
        p: _grouped(l_code[probe == i], correct[probe == i], lengths.tolist())
        for i, p in enumerate(PROBES) if (probe == i).any()
    }
    return out


@dataclass
class Report:
    """A report of one or several models on one dataset.  ``data`` is JSON-ready."""

    data: dict

    @property
    def models(self) -> list[dict]:
        return self.data["models"]

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.data, indent=indent, allow_nan=False)

    def to_markdown(self) -> str:
        return _markdown(self.data)

    def print(self, console=None) -> None:
        """Print the Markdown tables: rendered by rich on a terminal, as plain text otherwise."""
        from rich.console import Console
        from rich.markdown import Markdown

        console = console or Console()
        if console.is_terminal:
            console.print(Markdown(self.to_markdown()))
        else:
            console.file.write(self.to_markdown())


def report(results: ScoreResult | Sequence[ScoreResult], dataset: str | None = None) -> Report:
    """A :class:`Report` of ``results`` (several: one column per model, in the given order).

    Model names are made unique by appending ``#2``, ``#3`` where they repeat."""
    if isinstance(results, ScoreResult):
        results = [results]
    models = [model_report(r) for r in results]
    seen: dict[str, int] = {}
    for m in models:
        n = seen.get(m["name"], 0) + 1
        seen[m["name"]] = n
        if n > 1:
            m["name"] = f"{m['name']}#{n}"
    src = dataset or (results[0].frame.source if results else "")
    return Report({"dataset": src, "outcomes": list(OUTCOMES), "probes": list(PROBES), "models": models})


# ---------------------------------------------------------------------------------------------
# The models x probes table

#: the probe rows of the models x probes table, in order ("all" pools every probe)
TABLE_PROBES = (*PROBES, "all")


def outcome_cell(model: str, probe: str, counts: Sequence[int]) -> dict:
    """The JSON cell of ``model`` on ``probe`` from its outcome ``counts`` (one per
    :data:`OUTCOMES` entry): ``model``, ``probe``, ``n``, ``correct``, ``accuracy``, and the
    most frequent wrong outcome with its count (``wrong`` None if all right): one entry of
    ``Evaluation.cells()`` and of ``"cells"`` in ``memgen eval``'s summary.json."""
    n = int(sum(counts))
    correct = int(counts[CORRECT])
    wrong, wrong_n = dominant_wrong(counts)
    return {"model": model, "probe": probe, "n": n, "correct": correct, "accuracy": correct / n if n else None,
            "wrong": wrong, "wrong_n": wrong_n}


@dataclass(frozen=True)
class ProbeCell:
    """One cell of the models x probes table: ``correct`` of ``n`` queries, the most frequent
    wrong outcome and its count, and the 95% Wilson interval where the source has one."""

    correct: int
    n: int
    wrong: str | None = None
    wrong_n: int = 0
    ci95: tuple[float, float] | None = None

    @property
    def accuracy_text(self) -> str:
        """'99.2%' ('–' for no query)."""
        return f"{100 * (self.correct / self.n):.1f}%" if self.n else "–"

    @property
    def counts_text(self) -> str:
        """'595/600'."""
        return f"{self.correct}/{self.n}"

    @property
    def ci_text(self) -> str:
        """'[98.1, 99.6]' ('' without an interval)."""
        if self.ci95 is None:
            return ""
        lo, hi = self.ci95
        return f"[{100 * lo:.1f}, {100 * hi:.1f}]"

    @property
    def wrong_text(self) -> str:
        """'stale 3' ('' when every answer was right)."""
        return f"{self.wrong} {self.wrong_n}" if self.wrong else ""

    def text(self, ci: bool = True) -> str:
        """'99.2% [98.1, 99.6] 595/600', or '99.2% 595/600' without the interval; '–' for no query."""
        if not self.n:
            return "–"
        parts = [self.accuracy_text, self.ci_text if ci else "", self.counts_text]
        return " ".join(x for x in parts if x)


@dataclass(frozen=True)
class ProbeTable:
    """The models x probes table: one row per probe with queries (:data:`TABLE_PROBES` order),
    one cell per model (None where the model has no query of that probe), then per-model
    ``figures`` rows of ready text (episodes all right, active chunks, seconds)."""

    models: tuple[str, ...]
    probes: tuple[str, ...]
    cells: Mapping[tuple[str, str], ProbeCell]
    figures: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def rows(self) -> list[tuple[str, list[ProbeCell | None]]]:
        """(probe, the cell of each model in order) per probe."""
        return [(p, [self.cells.get((m, p)) for m in self.models]) for p in self.probes]

    def by_model(self) -> list[tuple[str, list[ProbeCell | None], list[str]]]:
        """The table turned: (model, its cell per probe, its figure texts) per model."""
        return [(m, [self.cells.get((m, p)) for p in self.probes], [texts[i] for _, texts in self.figures])
                for i, m in enumerate(self.models)]

    @classmethod
    def from_cells(cls, cells: Iterable[dict], models: Sequence[str],
                   figures: Sequence[tuple[str, Sequence[str]]] = ()) -> ProbeTable:
        """From :func:`outcome_cell` dicts (``Evaluation.cells()``, summary.json's ``"cells"``)."""
        table = {(c["model"], c["probe"]): ProbeCell(c["correct"], c["n"], c["wrong"], c["wrong_n"])
                 for c in cells}
        probes = tuple(p for p in TABLE_PROBES if any((m, p) in table for m in models))
        return cls(tuple(models), probes, table, tuple((label, tuple(t)) for label, t in figures))

    @classmethod
    def from_summary(cls, summary: dict) -> ProbeTable:
        """From ``Evaluation.summary()`` (``memgen eval --out``'s summary.json, or ``memgen stress
        --json``): its cells, and each model's episodes all right, active chunks and seconds."""
        info = summary["models"]
        figures = [("episodes all right", [f"{m['episodes_correct']}/{m['episodes']}" for m in info.values()]),
                   ("active chunks", [f"{m['active_chunks'][0]}-{m['active_chunks'][1]}" for m in info.values()]),
                   ("seconds", [f"{m['seconds']:.2f}" for m in info.values()])]
        return cls.from_cells(summary["cells"], list(info), figures)

    @classmethod
    def from_report(cls, data: dict) -> ProbeTable:
        """From a :class:`Report`'s ``data``: its probes with queries, then "all" (each model's
        overall accuracy), with Wilson intervals."""
        def probe_cell(c: dict, outcomes: dict) -> ProbeCell:
            wrong, wrong_n = dominant_wrong([outcomes[o] for o in OUTCOMES])
            ci = tuple(c["ci95"]) if c["ci95"] else None
            return ProbeCell(c["correct"], c["total"], wrong, wrong_n, ci)

        models = data["models"]
        table = {}
        for m in models:
            for p, c in m["by_probe"].items():
                table[(m["name"], p)] = probe_cell(c, c["outcomes"])
            table[(m["name"], "all")] = probe_cell(m["overall"], m["outcomes"])
        probes = [p for p in data["probes"] if any(p in m["by_probe"] for m in models)]
        return cls(tuple(m["name"] for m in models), (*probes, "all"), table)


# ---------------------------------------------------------------------------------------------
# Markdown


def fmt_cell(c: dict | None, ci: bool = True) -> str:
    """'99.2% [98.1, 99.6] 595/600' (or '97.0% 291/300' without the interval); '–' if empty."""
    if not c or not c["total"]:
        return "–"
    return ProbeCell(c["correct"], c["total"], ci95=tuple(c["ci95"])).text(ci=ci)


def markdown_table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    """A Markdown table; ``align`` is "l" or "r" per column (default: the first left, the rest right)."""
    align = align or ["l"] + ["r"] * (len(header) - 1)
    sep = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _sort_key(label: str):
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)


def _markdown(data: dict) -> str:
    models = data["models"]
    names = [m["name"] for m in models]
    parts = [f"# memgen score: {data['dataset']}", ""]
    for m in models:
        line = f"- **{m['name']}** ({m['predictions']}): {m['queries']} queries"
        if m["missing"]:
            line += f", {m['missing']} without a prediction (scored unparsed)"
        parts.append(line)
        parts += [f"  - note: {n}" for n in m["notes"] if "without a prediction" not in n
                  and "have no prediction" not in n]
    parts += ["", "## Accuracy by probe (95% Wilson interval)", ""]
    rows = [["**all**" if p == "all" else p] + [c.text() if c else "–" for c in cells]
            for p, cells in ProbeTable.from_report(data).rows()]
    parts += [markdown_table(["probe"] + names, rows), ""]

    used = [o for o in data["outcomes"]
            if any(m["outcomes"][o] for m in models) or o == "correct"]
    for m in models:
        title = "## Outcomes by probe (share of the probe's queries)"
        parts += [title + (f": {m['name']}" if len(models) > 1 else ""), ""]
        rows = []
        for p in data["probes"]:
            c = m["by_probe"].get(p)
            if not c:
                continue
            rows.append([p, str(c["total"])] + [_pct(c["outcomes"][o], c["total"]) for o in used])
        rows.append(["**all**", str(m["queries"])] + [_pct(m["outcomes"][o], m["queries"]) for o in used])
        parts += [markdown_table(["probe", "n"] + used, rows), ""]
        dropped = [o for o in data["outcomes"] if o not in used]
        if dropped:
            parts += [f"No query landed in: {', '.join(dropped)}.", ""]

    for key, title in BREAKDOWNS.items():
        labels = sorted({lab for m in models for lab in m[key]}, key=_sort_key)
        if not labels:
            continue
        parts += [f"## Accuracy by {title}", ""]
        rows = [[lab] + [fmt_cell(m[key].get(lab), ci=False) for m in models] for lab in labels]
        parts += [markdown_table([key.removeprefix("by_")] + names, rows), ""]
    return "\n".join(parts).rstrip() + "\n"


def _pct(k: int, n: int) -> str:
    if not k:
        return "·"
    return f"{100 * k / n:.1f}%"
