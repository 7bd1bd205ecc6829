"""Aggregation of outcomes into reports: accuracy per probe, strict and lenient, with 95%
intervals that account for questions sharing an episode (a cluster bootstrap over episodes), the
outcome mix per probe, breakdowns by length, depth (and depth x length), number of updates and
number of distractors, and the provenance of every figure.

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
#: the two-way breakdowns: rows x target length
GRIDS = {"probe_by_length": "probe", "depth_by_length": "depth of the deciding event"}


#: the cluster bootstrap behind every interval of a report: resamples of the episodes, and the
#: seed of its generator (numpy's PCG64), so that a report is the same on every run
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
#: resamples drawn at a time (bounds the memory of the weights: BATCH x episodes)
_BATCH = 100


def wilson(k: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``k`` successes in ``n`` trials ((nan, nan) for n = 0);
    ``k`` and ``n`` may be effective (fractional) counts."""
    if n <= 0:
        return (math.nan, math.nan)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k <= 0 else max(0.0, centre - half)
    hi = 1.0 if k >= n else min(1.0, centre + half)
    return (lo, hi)


def cell(k: int, n: int) -> dict:
    """{"correct", "total", "accuracy", "ci95"} for ``k`` of ``n`` (accuracy null when n = 0),
    with the Wilson interval (questions taken as independent; a report's cells replace it by
    the clustered one)."""
    lo, hi = wilson(k, n)
    return {"correct": int(k), "total": int(n), "accuracy": k / n if n else None,
            "ci95": [lo, hi] if n else None}


def clustered_interval(k: int, n: int, variance: float) -> tuple[tuple[float, float], float]:
    """(95% interval, design effect) of ``k`` right of ``n`` when the accuracy's variance across
    resampled episodes is ``variance``: the Wilson interval at the effective sample size
    ``n / deff``, where the design effect ``deff = variance / (p (1 - p) / n)`` (at least 1)
    says how much sharing episodes inflates the variance of independent questions.  At p = 0 or
    1, or with no measured variance, ``deff`` is 1 and the interval is Wilson's."""
    if n <= 0:
        return (math.nan, math.nan), math.nan
    p = k / n
    binomial = p * (1 - p) / n
    deff = max(1.0, variance / binomial) if binomial > 0 and math.isfinite(variance) else 1.0
    n_eff = n / deff
    return wilson(p * n_eff, n_eff), deff


def bootstrap_variances(total: np.ndarray, right: Sequence[np.ndarray], resamples: int = BOOTSTRAP_RESAMPLES,
                        seed: int = BOOTSTRAP_SEED) -> list[np.ndarray]:
    """The variance of each column's accuracy over ``resamples`` cluster-bootstrap resamples.

    ``total``: ``(E, C)`` the questions of each episode in each column (a report cell);
    ``right``: per accuracy (strict, lenient), ``(E, C)`` how many of them are right.  Each
    resample draws the E episodes with replacement from ``numpy.random.default_rng(seed)`` and
    weights each by the number of times it was drawn; a column's accuracy in a resample is its
    weighted right / weighted total, and resamples that hold none of its episodes are left out
    of its variance.  Returns ``(C,)`` per accuracy; NaN for a column with fewer than two
    usable resamples."""
    n_ep, n_cols = total.shape
    total = total.astype(np.float64)
    right = [r.astype(np.float64) for r in right]
    rng = np.random.default_rng(seed)
    s1 = [np.zeros(n_cols) for _ in right]
    s2 = [np.zeros(n_cols) for _ in right]
    used = np.zeros(n_cols)
    for b0 in range(0, resamples, _BATCH):
        b = min(_BATCH, resamples - b0)
        draws = rng.integers(0, n_ep, size=(b, n_ep)) + (np.arange(b) * n_ep)[:, None]
        weights = np.bincount(draws.ravel(), minlength=b * n_ep).reshape(b, n_ep).astype(np.float64)
        n_w = weights @ total  # (b, C)
        ok = n_w > 0
        used += ok.sum(axis=0)
        for i, r in enumerate(right):
            acc = np.where(ok, (weights @ r) / np.where(ok, n_w, 1.0), 0.0)
            s1[i] += acc.sum(axis=0)
            s2[i] += (acc * acc).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return [np.where(used > 1, (q - m * m / used) / (used - 1), np.nan) for m, q in zip(s1, s2, strict=True)]


def dominant_wrong(counts: Sequence[int]) -> tuple[str | None, int]:
    """The most frequent wrong outcome among ``counts`` (one count per :data:`OUTCOMES` entry;
    the first in that order on a tie) and its count; ``(None, 0)`` when no answer was wrong."""
    wrong = [0 if i == CORRECT else int(k) for i, k in enumerate(counts)]
    worst = max(range(len(wrong)), key=wrong.__getitem__)
    return (OUTCOMES[worst], wrong[worst]) if wrong[worst] else (None, 0)


def _depth_codes(depth: np.ndarray) -> np.ndarray:
    """The depth bin of each depth (:data:`DEPTH_LABELS`; NaN: the last code, ``n/a``)."""
    return np.where(np.isnan(depth), len(DEPTH_LABELS),
                    np.clip(np.searchsorted(DEPTH_EDGES, np.nan_to_num(depth), side="right") - 1,
                            0, len(DEPTH_LABELS) - 1))


class _Cells:
    """The cells of one model's report: every breakdown is a set of columns (one per label), all
    of them measured from one cluster bootstrap, strict and lenient."""

    def __init__(self, episode: np.ndarray, correct: np.ndarray, lenient: np.ndarray):
        self.episode, self.correct, self.lenient = episode, correct, lenient
        self.parts: list[tuple[np.ndarray, int]] = []  # (codes, size) per breakdown

    def add(self, codes: np.ndarray, size: int) -> int:
        """Register a breakdown (``codes``: ``(Q,)`` in ``[0, size)``); returns its index."""
        self.parts.append((codes, size))
        return len(self.parts) - 1

    def measure(self) -> None:
        """Count every cell per episode and run the cluster bootstrap."""
        _, e = np.unique(self.episode, return_inverse=True)
        n_ep = int(e.max(initial=-1)) + 1
        total, right = [], [[], []]
        for codes, size in self.parts:  # (E, size) blocks side by side: one column per cell
            flat = e * size + codes
            total.append(np.bincount(flat, minlength=n_ep * size).reshape(n_ep, size))
            for blocks, hits in zip(right, (self.correct, self.lenient), strict=True):
                blocks.append(np.bincount(flat, weights=hits, minlength=n_ep * size).reshape(n_ep, size))
        by_episode, right_by_episode = np.hstack(total), [np.hstack(b) for b in right]
        self.var = bootstrap_variances(by_episode, right_by_episode)
        self.total = by_episode.sum(axis=0)
        self.right = [r.sum(axis=0).round().astype(np.int64) for r in right_by_episode]
        self.episodes = (by_episode > 0).sum(axis=0)
        self.offsets = np.cumsum([0] + [size for _, size in self.parts])

    def cell(self, part: int, code: int) -> dict:
        """The JSON cell of label ``code`` of breakdown ``part`` (see docs/scoring.md, "Report")."""
        c = int(self.offsets[part]) + code
        n = int(self.total[c])
        k, k_lenient = int(self.right[0][c]), int(self.right[1][c])
        out = cell(k, n)
        ci, deff = clustered_interval(k, n, float(self.var[0][c]))
        out.update(ci95=list(ci) if n else None, design_effect=_round(deff), episodes=int(self.episodes[c]))
        ci, deff = clustered_interval(k_lenient, n, float(self.var[1][c]))
        out["lenient"] = {"correct": k_lenient, "accuracy": k_lenient / n if n else None,
                          "ci95": list(ci) if n else None, "design_effect": _round(deff)}
        return out

    def grouped(self, part: int, labels: Sequence) -> dict:
        """A cell per label with queries."""
        off = int(self.offsets[part])
        return {str(lab): self.cell(part, i) for i, lab in enumerate(labels) if self.total[off + i]}


def _round(x: float) -> float | None:
    return round(x, 4) if math.isfinite(x) else None


def model_report(result: ScoreResult) -> dict:
    """The JSON report of one model (see docs/scoring.md, "Report")."""
    f, m = result.frame, result.scored
    outcome, lenient = result.outcome[m], result.lenient[m]
    rows = f.row[m]
    probe = f.probe[m]
    cells = _Cells(rows, outcome == CORRECT, lenient == CORRECT)
    lengths, l_code = np.unique(f.target_length[rows], return_inverse=True)
    n_len = lengths.size
    d_code = _depth_codes(f.depth[m])
    upd, dis = f.n_updates[m], f.n_distractors[m]
    n_upd, n_dis = int(upd.max(initial=0)) + 1, int(dis.max(initial=0)) + 1
    depth_labels = DEPTH_LABELS + (NO_DEPTH,)
    parts = {
        "overall": cells.add(np.zeros(outcome.size, np.int64), 1),
        "by_probe": cells.add(probe, len(PROBES)),
        "by_length": cells.add(l_code, n_len),
        "by_depth": cells.add(d_code, len(depth_labels)),
        "by_updates": cells.add(upd, n_upd),
        "by_distractors": cells.add(dis, n_dis),
        "probe_by_length": cells.add(probe * n_len + l_code, len(PROBES) * n_len),
        "depth_by_length": cells.add(d_code * n_len + l_code, len(depth_labels) * n_len),
    }
    cells.measure()
    out: dict = {
        "name": result.name,
        "predictions": result.source,
        "sha256": result.sha256,
        "queries": int(m.sum()),
        "text_queries": int(f.is_text()[m].sum()),
        "missing": result.missing,
        "notes": list(result.notes),
        "overall": cells.cell(parts["overall"], 0),
        "outcomes": result.counts(),
        "lenient_outcomes": result.counts(lenient=True),
    }
    by_probe = cells.grouped(parts["by_probe"], PROBES)
    for key, codes in (("outcomes", outcome), ("lenient_outcomes", lenient)):
        mix = np.zeros((len(PROBES), len(OUTCOMES)), dtype=np.int64)
        np.add.at(mix, (probe, codes), 1)
        for i, p in enumerate(PROBES):
            if p in by_probe:
                by_probe[p][key] = {o: int(mix[i, j]) for j, o in enumerate(OUTCOMES)}
    out["by_probe"] = by_probe
    out["by_length"] = cells.grouped(parts["by_length"], lengths.tolist())
    out["by_depth"] = cells.grouped(parts["by_depth"], depth_labels)
    out["by_updates"] = cells.grouped(parts["by_updates"], list(range(n_upd)))
    out["by_distractors"] = cells.grouped(parts["by_distractors"], list(range(n_dis)))
    for key, outer in (("probe_by_length", PROBES), ("depth_by_length", depth_labels)):
        flat = cells.grouped(parts[key], list(range(len(outer) * n_len)))
        nested: dict = {}
        for code, c in flat.items():
            i, j = divmod(int(code), n_len)
            nested.setdefault(str(outer[i]), {})[str(lengths[j])] = c
        out[key] = {str(o): nested[str(o)] for o in outer if str(o) in nested}
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

    def _repr_html_(self) -> str:
        """The notebook rendering (:func:`memgen.scorers.notebook.report_html`)."""
        from memgen.scorers.notebook import report_html

        return report_html(self.data)

    def print(self, console=None) -> None:
        """Print the Markdown tables: rendered by rich on a terminal, as plain text otherwise."""
        from rich.console import Console
        from rich.markdown import Markdown

        from memgen.format.names import escaped

        console = console or Console()
        # model names come from file names and --name: no control character reaches the terminal
        text = "\n".join(escaped(line) for line in self.to_markdown().split("\n"))
        if console.is_terminal:
            console.print(Markdown(text))
        else:
            console.file.write(text)


def provenance(results: Sequence[ScoreResult]) -> dict:
    """Where a report's figures come from: the scorer's version, the dataset's versions and the
    sha256 of its manifest.json, every predictions file's sha256, and how intervals are made."""
    from memgen import __version__

    frame = results[0].frame if results else None
    manifest = frame.manifest if frame is not None else {}
    return {
        "memgen_version": __version__,
        "dataset_memgen_version": manifest.get("memgen_version"),
        "generator_version": manifest.get("generator_version"),
        "schema_version": manifest.get("schema_version"),
        "manifest_sha256": frame.manifest_sha256 if frame is not None else None,
        "predictions": [{"name": r.name, "source": r.source, "sha256": r.sha256} for r in results],
        "intervals": {"level": 0.95, "method": "Wilson at the effective sample size of a cluster bootstrap "
                      "over episodes", "resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED},
    }


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
    prov = provenance(results)
    for m, entry in zip(models, prov["predictions"], strict=True):
        entry["name"] = m["name"]
    src = dataset or (results[0].frame.source if results else "")
    return Report({"dataset": src, "provenance": prov, "outcomes": list(OUTCOMES), "probes": list(PROBES),
                   "models": models})


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
    wrong outcome and its count, and the 95% interval where the source has one."""

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
        overall accuracy), with their intervals (clustered by episode)."""
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


def _lenient_shown(data: dict) -> bool:
    """Lenient columns are printed where some scored query is text (token answers are ids:
    lenient scoring is strict scoring there)."""
    return any(m.get("text_queries") for m in data["models"])


def _lenient_text(c: dict | None, ci: bool = True) -> str:
    if not c or not c["total"]:
        return "–"
    lc = c["lenient"]
    return ProbeCell(lc["correct"], c["total"], ci95=tuple(lc["ci95"])).text(ci=ci)


def _markdown(data: dict) -> str:
    models = data["models"]
    names = [m["name"] for m in models]
    lenient = _lenient_shown(data)
    lenient_names = [f"{n} (lenient)" for n in names] if lenient else []
    parts = [f"# memgen score: {data['dataset']}", ""]
    for m in models:
        line = f"- **{m['name']}** ({m['predictions']}): {m['queries']} queries"
        if m["missing"]:
            line += f", {m['missing']} without a prediction (scored unparsed)"
        parts.append(line)
        parts += [f"  - note: {n}" for n in m["notes"] if "without a prediction" not in n
                  and "have no prediction" not in n]
    prov = data.get("provenance") or {}
    if prov:
        parts += ["", f"memgen {prov['memgen_version']}, generator {prov['generator_version']}, "
                  f"manifest sha256 {(prov['manifest_sha256'] or '(in memory)')[:16]}; intervals: 95%, "
                  f"clustered by episode ({prov['intervals']['resamples']} bootstrap resamples, "
                  f"seed {prov['intervals']['seed']})."]
    title = "## Accuracy by probe (95% interval clustered by episode)"
    parts += ["", title + (": strict, then lenient" if lenient else ""), ""]
    table = ProbeTable.from_report(data)
    rows = []
    for p, cells in table.rows():
        row = ["**all**" if p == "all" else p] + [c.text() if c else "–" for c in cells]
        if lenient:
            row += [_lenient_text(m["overall"] if p == "all" else m["by_probe"].get(p)) for m in models]
        rows.append(row)
    parts += [markdown_table(["probe"] + names + lenient_names, rows), ""]
    if not lenient:
        parts += ["Lenient scoring is strict scoring for token answers (no text query was scored).", ""]

    for key, label in (("outcomes", ""), ("lenient_outcomes", ", lenient")) if lenient else (("outcomes", ""),):
        used = [o for o in data["outcomes"] if any(m[key][o] for m in models) or o == "correct"]
        for m in models:
            title = f"## Outcomes by probe{label} (share of the probe's queries)"
            parts += [title + (f": {m['name']}" if len(models) > 1 else ""), ""]
            rows = []
            for p in data["probes"]:
                c = m["by_probe"].get(p)
                if not c:
                    continue
                rows.append([p, str(c["total"])] + [_pct(c[key][o], c["total"]) for o in used])
            rows.append(["**all**", str(m["queries"])] + [_pct(m[key][o], m["queries"]) for o in used])
            parts += [markdown_table(["probe", "n"] + used, rows), ""]
            dropped = [o for o in data["outcomes"] if o not in used]
            if dropped:
                parts += [f"No query landed in: {', '.join(dropped)}.", ""]

    for key, title in BREAKDOWNS.items():
        labels = sorted({lab for m in models for lab in m[key]}, key=_sort_key)
        if not labels:
            continue
        parts += [f"## Accuracy by {title}", ""]
        rows = [[lab] + [fmt_cell(m[key].get(lab), ci=False) for m in models]
                + ([_lenient_text(m[key].get(lab), ci=False) for m in models] if lenient else [])
                for lab in labels]
        parts += [markdown_table([key.removeprefix("by_")] + names + lenient_names, rows), ""]

    for m in models:
        grid = m["depth_by_length"]
        lengths = sorted({n for row in grid.values() for n in row}, key=float)
        if not lengths:
            continue
        title = "## Accuracy by depth of the deciding event x target length (strict)"
        parts += [title + (f": {m['name']}" if len(models) > 1 else ""), ""]
        rows = [[d] + [fmt_cell(grid[d].get(n), ci=False) for n in lengths]
                for d in DEPTH_LABELS + (NO_DEPTH,) if d in grid]
        parts += [markdown_table(["depth"] + lengths, rows), ""]
    return "\n".join(parts).rstrip() + "\n"


def _pct(k: int, n: int) -> str:
    if not k:
        return "·"
    return f"{100 * k / n:.1f}%"
