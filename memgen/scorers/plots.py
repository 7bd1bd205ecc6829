"""PNG plots of a :class:`~memgen.scorers.aggregate.Report` (matplotlib, Agg backend).

* ``heatmap.png``: accuracy per probe x target length, one panel per model;
* ``length.png``: accuracy against context length, one line per model with its 95% band
  (clustered by episode), lenient dashed beside strict where text answers were scored;
* ``depth.png``: accuracy per depth of the deciding event x target length, as needle tests draw
  it, with the number of queries in every cell, one panel per model;
* ``updates.png``: accuracy against the number of values the key had before the query (the
  proactive-interference curve), one line per model with its 95% Wilson band;
* ``outcomes.png``: the outcome mix of each probe as stacked bars, one panel per model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from memgen.format.names import escaped
from memgen.scorers.aggregate import DEPTH_LABELS, NO_DEPTH, Report

#: one fixed colour per outcome, so that every plot and every model reads the same way
OUTCOME_COLOURS = {
    "correct": "#2e7d32",
    "stale": "#f9a825",
    "wrong_version": "#ef6c00",
    "distractor": "#8e24aa",
    "cross_key": "#1e88e5",
    "resurrected": "#6d4c41",
    "false_absent": "#90a4ae",
    "missed_absent": "#d81b60",
    "hallucinated": "#c62828",
    "unparsed": "#212121",
    "overflow": "#5c6bc0",
    "refused": "#9e9e9e",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


#: panels per row when several models are plotted side by side
MAX_COLS = 3
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")


def _grid(plt, n: int, w: float, h: float, **kw):
    """A figure with ``n`` panels of ``w`` x ``h`` inches, at most MAX_COLS per row; the
    panels left over in the last row are hidden.  Returns (figure, panels in order)."""
    ncols = min(n, MAX_COLS)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False,
                             constrained_layout=True, **kw)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _label(model: dict) -> str:
    """A model's name as plain text for matplotlib (names come from files: a ``$`` would start
    mathtext, which can fail to parse)."""
    return escaped(model["name"]).replace("$", r"\$")


def _length_label(n: str) -> str:
    v = int(float(n))
    return f"{v // 1024}k" if v >= 1024 and v % 1024 == 0 else str(v)


def plot_heatmap(rep: Report, path: Path) -> Path:
    plt = _plt()
    models = rep.models
    probes = [p for p in rep.data["probes"] if any(p in m["probe_by_length"] for m in models)]
    lengths = sorted({lab for m in models for d in m["probe_by_length"].values() for lab in d}, key=float)
    w = max(4.0, 1.0 * len(lengths) + 2.6)
    fig, panels = _grid(plt, len(models), w, 0.55 * len(probes) + 2.0)
    im = None
    for ax, m in zip(panels, models, strict=True):
        acc = np.full((len(probes), len(lengths)), np.nan)
        for i, p in enumerate(probes):
            for j, n in enumerate(lengths):
                c = m["probe_by_length"].get(p, {}).get(n)
                if c and c["total"]:
                    acc[i, j] = c["accuracy"]
        im = ax.imshow(acc, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(len(lengths)), [_length_label(n) for n in lengths])
        ax.set_yticks(range(len(probes)), probes)
        ax.set_xlabel("target length (tokens)")
        ax.set_title(_label(m), fontsize=11)
        for i in range(len(probes)):
            for j in range(len(lengths)):
                if not np.isnan(acc[i, j]):
                    v = acc[i, j]
                    ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=9,
                            color="black" if 0.25 < v < 0.85 else "white")
                else:
                    ax.text(j, i, "–", ha="center", va="center", fontsize=9, color="#666")
    fig.colorbar(im, ax=panels, shrink=0.9, label="accuracy")
    fig.suptitle("Accuracy (%) by probe and length", fontsize=12)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_length(rep: Report, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.0, 4.2), constrained_layout=True)
    lenient = any(m.get("text_queries") for m in rep.models)
    lengths = sorted({int(float(n)) for m in rep.models for n in m["by_length"]})
    for j, m in enumerate(rep.models):
        pts = sorted((int(float(n)), c) for n, c in m["by_length"].items())
        if not pts:
            continue
        x = np.array([n for n, _ in pts])
        y = np.array([c["accuracy"] for _, c in pts])
        ci = np.array([c["ci95"] for _, c in pts])
        (line,) = ax.plot(x, y, marker=MARKERS[j % len(MARKERS)], label=_label(m) + (" (strict)" if lenient else ""))
        ax.fill_between(x, ci[:, 0], ci[:, 1], color=line.get_color(), alpha=0.15, linewidth=0)
        if lenient:
            ax.plot(x, [c["lenient"]["accuracy"] for _, c in pts], marker=MARKERS[j % len(MARKERS)],
                    linestyle="--", color=line.get_color(), alpha=0.8, label=_label(m) + " (lenient)")
    if len(lengths) > 1 and lengths[0] > 0:
        ax.set_xscale("log", base=2)
    ax.set_xticks(lengths, [_length_label(str(n)) for n in lengths])
    ax.minorticks_off()
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("target length (tokens)")
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy vs context length\n(95% band clustered by episode)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="best")
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_depth(rep: Report, path: Path) -> Path:
    plt = _plt()
    models = rep.models
    depths = [d for d in DEPTH_LABELS + (NO_DEPTH,) if any(d in m["depth_by_length"] for m in models)]
    lengths = sorted({n for m in models for row in m["depth_by_length"].values() for n in row}, key=float)
    w = max(4.0, 1.1 * len(lengths) + 2.6)
    fig, panels = _grid(plt, len(models), w, 0.6 * len(depths) + 2.0)
    im = None
    for ax, m in zip(panels, models, strict=True):
        acc = np.full((len(depths), len(lengths)), np.nan)
        counts = np.zeros((len(depths), len(lengths)), dtype=np.int64)
        for i, d in enumerate(depths):
            for j, n in enumerate(lengths):
                c = m["depth_by_length"].get(d, {}).get(n)
                if c and c["total"]:
                    acc[i, j], counts[i, j] = c["accuracy"], c["total"]
        im = ax.imshow(acc, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(len(lengths)), [_length_label(n) for n in lengths])
        ax.set_yticks(range(len(depths)), [d if d != NO_DEPTH else "never set" for d in depths])
        ax.set_xlabel("target length (tokens)")
        ax.set_ylabel("depth of the deciding event")
        ax.set_title(_label(m), fontsize=11)
        for i in range(len(depths)):
            for j in range(len(lengths)):
                if counts[i, j]:
                    v = acc[i, j]
                    ax.text(j, i, f"{100 * v:.0f}\nn={counts[i, j]}", ha="center", va="center", fontsize=8,
                            color="black" if 0.25 < v < 0.85 else "white")
                else:
                    ax.text(j, i, "–", ha="center", va="center", fontsize=9, color="#666")
    fig.colorbar(im, ax=panels, shrink=0.9, label="accuracy")
    fig.suptitle("Accuracy (%) by depth and length, n queries per cell", fontsize=12)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


#: a point of the interference curve holds at least this many queries (for every model); a
#: number of updates with fewer is pooled with its neighbours
MIN_POINT = 30


def pool_bins(ks: list[int], totals: list[list[int]], min_point: int = MIN_POINT) -> list[list[int]]:
    """Groups of consecutive numbers of updates ``ks`` (ascending), one point each, such that
    every model (``totals[m][i]``: model m's queries at ``ks[i]``) has at least ``min_point``
    queries in each group.  A number with enough queries is a group of its own; a smaller one
    is pooled with the next numbers until the group has enough, and a small tail joins the
    group before it.  Every k is in exactly one group, in order."""
    groups: list[list[int]] = []
    open_group: list[int] = []
    sums = [0] * len(totals)
    for i, k in enumerate(ks):
        open_group.append(k)
        sums = [s + t[i] for s, t in zip(sums, totals, strict=True)]
        if min(sums, default=0) >= min_point:
            groups.append(open_group)
            open_group, sums = [], [0] * len(totals)
    if open_group:
        if groups:
            groups[-1].extend(open_group)
        else:
            groups.append(open_group)
    return groups


def _pooled_updates(rep: Report) -> tuple[list[int], list[str], list[list[tuple[int, int]]]]:
    """x positions, tick labels and per-model (correct, total) of the interference curve: one
    point per number of updates where every model has at least MIN_POINT queries, the smaller
    numbers pooled with their neighbours (:func:`pool_bins`): "2-3" inside, "≥k" for the tail."""
    ks = sorted({int(k) for m in rep.models for k in m["by_updates"]})
    cells = [[m["by_updates"].get(str(k), {"correct": 0, "total": 0}) for k in ks] for m in rep.models]
    groups = pool_bins(ks, [[c["total"] for c in row] for row in cells])
    xs = [g[0] for g in groups]
    labels = [str(g[0]) if len(g) == 1 else f"≥{g[0]}" if g[-1] == ks[-1] else f"{g[0]}-{g[-1]}"
              for g in groups]
    at = {k: i for i, k in enumerate(ks)}
    per_model = [[(sum(row[at[k]]["correct"] for k in g), sum(row[at[k]]["total"] for k in g)) for g in groups]
                 for row in cells]
    return xs, labels, per_model


def plot_updates(rep: Report, path: Path) -> Path:
    from memgen.scorers.aggregate import wilson

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.0, 4.2), constrained_layout=True)
    xs, labels, per_model = _pooled_updates(rep)
    for j, (m, pts) in enumerate(zip(rep.models, per_model, strict=True)):
        keep = [i for i, (_, n) in enumerate(pts) if n]
        if not keep:
            continue
        x = np.array([xs[i] for i in keep])
        y = np.array([pts[i][0] / pts[i][1] for i in keep])
        ci = np.array([wilson(*pts[i]) for i in keep])
        # markers and dashes differ, so that models with the same curve stay visible
        (line,) = ax.plot(x, y, marker=MARKERS[j % len(MARKERS)], linestyle=LINESTYLES[j % len(LINESTYLES)],
                          label=_label(m))
        ax.fill_between(x, ci[:, 0], ci[:, 1], color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_xticks(xs, labels)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("values the key had before the query (writes + overwrites)")
    ax.set_ylabel("accuracy")
    ax.set_title("Proactive interference: accuracy vs number of updates\n"
                 f"(95% Wilson band; numbers with < {MIN_POINT} queries pooled with their neighbours)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="best")
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_outcomes(rep: Report, path: Path) -> Path:
    plt = _plt()
    models = rep.models
    probes = [p for p in rep.data["probes"] if any(p in m["by_probe"] for m in models)]
    outcomes = [o for o in rep.data["outcomes"] if any(m["outcomes"][o] for m in models)]
    fig, panels = _grid(plt, len(models), 6.2, 0.5 * len(probes) + 2.4, sharey=True)
    for ax, m in zip(panels, models, strict=True):
        left = np.zeros(len(probes))
        for o in outcomes:
            share = np.array([m["by_probe"][p]["outcomes"][o] / m["by_probe"][p]["total"]
                              if p in m["by_probe"] else 0.0 for p in probes])
            ax.barh(range(len(probes)), share, left=left, color=OUTCOME_COLOURS[o], label=o,
                    edgecolor="white", linewidth=0.5)
            for i, (s, l0) in enumerate(zip(share, left, strict=True)):
                if s >= 0.08:
                    ax.text(l0 + s / 2, i, f"{100 * s:.0f}", ha="center", va="center", fontsize=8,
                            color="white" if o not in ("stale", "false_absent") else "black")
            left += share
        ax.set_yticks(range(len(probes)), probes)
        ax.set_xlim(0, 1)
        ax.xaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}%")
        ax.set_xlabel("share of the probe's queries")
        ax.set_title(_label(m), fontsize=11)
    panels[0].invert_yaxis()  # the axes share y: invert once, so the first probe is on top
    handles, labels = panels[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 5), fontsize=9,
               frameon=False)
    fig.suptitle("Outcome mix per probe (%)", fontsize=12)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


#: the plots of :func:`write_plots`, by file name
PLOTS = {"heatmap.png": plot_heatmap, "length.png": plot_length, "depth.png": plot_depth,
         "updates.png": plot_updates, "outcomes.png": plot_outcomes}


def write_plots(rep: Report, out: str | Path) -> list[Path]:
    """Write every plot of :data:`PLOTS` under ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return [plot(rep, out / name) for name, plot in PLOTS.items()]
