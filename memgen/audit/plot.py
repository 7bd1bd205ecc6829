"""The audit as one PNG: ROC AUC per task and each heuristic's accuracy per probe, with the
targets drawn as lines (matplotlib, Agg backend)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from memgen.audit.heuristics import RULES
from memgen.audit.report import MAX_AUC, MAX_HEURISTIC, Audit


def plot_audit(result: Audit, path: Path) -> None:
    """Write the two panels to ``path`` (atomically)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from memgen.io.atomic import atomic_write_bytes

    tasks = [t for t in result.tasks if t.auc is not None]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
    names = [f"{t.positive}\nvs {t.negative}" for t in tasks]
    left.barh(names, [t.auc for t in tasks], color=["#c62828" if t.auc > MAX_AUC and "filler" in t.negative
                                                     else "#546e7a" for t in tasks])
    left.axvline(MAX_AUC, color="#c62828", ls="--", lw=1, label=f"target for filler tasks ({MAX_AUC})")
    left.axvline(0.5, color="#9e9e9e", ls=":", lw=1, label="chance")
    left.set_xlim(0.4, 1.0)
    left.invert_yaxis()
    left.set_xlabel("ROC AUC on held-out episodes (keys masked)")
    left.legend(loc="lower right", fontsize=8)
    probes = list(result.heuristics)
    x = np.arange(len(probes))
    w = 0.8 / len(RULES)
    for i, rule in enumerate(RULES):
        right.bar(x + (i - (len(RULES) - 1) / 2) * w, [result.heuristics[p][rule] for p in probes], w, label=rule)
    right.axhline(MAX_HEURISTIC, color="#c62828", ls="--", lw=1, label=f"target ({MAX_HEURISTIC:.0%}, not write)")
    right.set_xticks(x, [f"{p}\n({result.queries[p]})" for p in probes], fontsize=8)
    right.set_ylim(0, 1)
    right.set_ylabel("accuracy without memory")
    right.legend(fontsize=8)
    fig.suptitle(f"memgen audit: {result.dataset} ({result.episodes} episodes)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
