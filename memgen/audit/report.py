"""The audit of one text dataset folder: every task of :mod:`.classify` and every rule of
:mod:`.heuristics`, with the targets of a sound benchmark."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from memgen.audit.classify import TaskResult, classify
from memgen.audit.heuristics import RULES, Tally
from memgen.audit.units import FILLER, units
from memgen.format.codes import DISTRACTOR_KINDS
from memgen.format.errors import DataError, UsageError

#: the most a reader without memory may reach: AUC of telling events (and passing mentions)
#: from filler, and a heuristic's accuracy on any probe but ``write``
MAX_AUC = 0.80
MAX_HEURISTIC = 0.50
TRUE_WRITES = ("write", "overwrite", "silent_write")
EVENTS = (*TRUE_WRITES, "delete", *DISTRACTOR_KINDS)


@dataclass(frozen=True)
class Audit:
    dataset: str
    configs: tuple[str, ...]
    episodes: int
    sentences: dict[str, int]  # label -> count
    tasks: tuple[TaskResult, ...]
    heuristics: dict[str, dict[str, float]]  # probe -> rule -> accuracy
    queries: dict[str, int]  # probe -> count

    def misses(self) -> list[str]:
        """Each target this dataset misses, in words (empty: all met)."""
        out = []
        for t in self.tasks:
            if t.name in ("events_vs_filler", "silent_write_vs_filler") and t.auc is not None and t.auc > MAX_AUC:
                out.append(f"{t.name}: AUC {t.auc:.3f} > {MAX_AUC}")
        for probe, acc in self.heuristics.items():
            rule = max(acc, key=acc.get)
            if probe != "write" and acc[rule] > MAX_HEURISTIC:
                out.append(f"{probe}: heuristic {rule!r} reaches {acc[rule]:.1%} > {MAX_HEURISTIC:.0%}")
        return out

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "configs": list(self.configs), "episodes": self.episodes,
                "sentences": self.sentences, "tasks": [asdict(t) for t in self.tasks],
                "heuristics": self.heuristics, "queries": self.queries, "misses": self.misses(),
                "targets": {"max_auc": MAX_AUC, "max_heuristic": MAX_HEURISTIC}}

    def markdown(self) -> str:
        lines = [f"# memgen audit of {self.dataset}", "",
                 f"{self.episodes} episodes ({', '.join(self.configs)}); sentences: "
                 + ", ".join(f"{k} {v:,}" for k, v in sorted(self.sentences.items())), "",
                 "| task | sentences (train / test) | ROC AUC | words toward the first | words toward the second |",
                 "|---|---|---|---|---|"]
        for t in self.tasks:
            auc = "n/a" if t.auc is None else f"{t.auc:.3f}"
            lines.append(f"| {t.positive} vs {t.negative} | {t.n_train:,} / {t.n_test:,} | {auc} | "
                         f"{', '.join(t.toward_positive)} | {', '.join(t.toward_negative)} |")
        lines += ["", "| probe | queries | " + " | ".join(RULES) + " | best |",
                  "|---|---|" + "---|" * (len(RULES) + 1)]
        for probe, acc in self.heuristics.items():
            best = max(acc.values())
            lines.append(f"| {probe} | {self.queries[probe]:,} | " + " | ".join(f"{acc[r]:.1%}" for r in RULES)
                         + f" | {best:.1%} |")
        miss = self.misses()
        lines += ["", f"Targets (events and passing mentions vs filler: AUC <= {MAX_AUC}; heuristics <= "
                      f"{MAX_HEURISTIC:.0%} on every probe but write): "
                      + ("all met." if not miss else "missed: " + "; ".join(miss) + ".")]
        return "\n".join(lines) + "\n"

    def write_json(self, path: Path) -> None:
        from memgen.io.atomic import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")


def _rows(root: Path, configs: Iterable[str] | None, check: bool) -> tuple[list[str], Callable]:
    from memgen.io.dataset import open_verified

    ds = open_verified(root, check=check)
    names = list(configs) if configs else [c for c in ds.configs if ds.config(c).get("rendering") == "text"]
    unknown = [c for c in names if c not in ds.configs]
    if unknown:
        raise UsageError(f"--config {unknown[0]!r}: not in {root}; choose from: {', '.join(ds.configs)}")
    not_text = [c for c in names if ds.config(c).get("rendering") != "text"]
    if not_text or not names:
        raise UsageError(f"{root}: the audit reads text configs ({not_text[0] if not_text else 'none found'} is not "
                         "one); generate with --rendering text")

    def rows(name: str):
        for table in ds.iter_tables(name):
            yield from table.to_pylist()

    return names, rows


def audit_dataset(root: str | Path, configs: Iterable[str] | None = None, check: bool = True, seed: int = 0,
                  on_row: Callable[[], None] | None = None) -> Audit:
    """Audit the text configs of dataset folder ``root`` (all, or ``configs``); ``on_row`` is
    called after each episode (a progress bar)."""
    root = Path(root)
    names, rows = _rows(root, configs, check)
    by_label: dict[str, tuple[list[str], list[int]]] = {}
    tally = Tally()
    n = 0
    for name in names:
        for row in rows(name):
            if not isinstance(row.get("context"), str) or not row.get("domain"):
                raise DataError(f"{root}: config {name} has rows without context or domain")
            sentences = units(row, n)
            for u in sentences:
                texts, eps = by_label.setdefault(u.label, ([], []))
                texts.append(u.text)
                eps.append(u.episode)
            tally.add(row, sentences)
            n += 1
            if on_row:
                on_row()
    return Audit(str(root), tuple(names), n, {k: len(v[0]) for k, v in by_label.items()},
                 tuple(_tasks(by_label, seed)), tally.accuracy(), dict(sorted(tally.n.items())))


def _tasks(by_label: dict[str, tuple[list[str], list[int]]], seed: int) -> list[TaskResult]:
    def pool(labels: Iterable[str]) -> tuple[list[str], list[int]]:
        texts, eps = [], []
        for lab in labels:
            t, e = by_label.get(lab, ([], []))
            texts += t
            eps += e
        return texts, eps

    filler = pool([FILLER])
    out = [classify("events_vs_filler", *pool(EVENTS), *filler, "events", "filler", seed),
           classify("silent_write_vs_filler", *pool(["silent_write"]), *filler, "silent_write", "filler", seed)]
    writes = pool(TRUE_WRITES)
    for kind in DISTRACTOR_KINDS:
        if kind in by_label:
            out.append(classify(f"{kind}_vs_writes", *pool([kind]), *writes, kind, "true writes", seed))
    return out

