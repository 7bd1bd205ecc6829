"""Running a bridge head on a text dataset: predictions that ``memgen score`` reads (the pointed
event's value surface, or "unknown"), scored by memgen's scorers, and a breakdown of the errors
by what was pointed at (a lookalike, another key with a similar name, another version, ...)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from memgen.bridge.episodes import BridgeEpisode
from memgen.bridge.heads import BridgeModel
from memgen.bridge.train import Encoded, make_block

#: what a wrong pointer pointed at, in the breakdown's order
ERRORS = ("lookalike", "similar_key", "other_key", "wrong_version", "same_key_distractor", "false_unknown",
          "missed_unknown")


@torch.inference_mode()
def point(model: BridgeModel, enc: Encoded) -> list[list[int]]:
    """Per episode, per query: the index of the pointed event, or -1 for unknown."""
    out = []
    for i, ep in enumerate(enc.episodes):
        logp, _ = model(make_block(enc, i))
        out.append([p if p < len(ep.events) else -1 for p in logp.argmax(-1).tolist()])
    return out


def answer_text(ep: BridgeEpisode, e: int) -> str:
    """The value surface that event ``e`` states, or "unknown" (a delete, or -1)."""
    from memgen.render.text.domain import value_surface

    return value_surface(ep.domain, ep.event_value[e]) if e >= 0 and ep.event_value[e] >= 0 else "unknown"


def _words(s: str) -> set[str]:
    return {w.strip(".,'’s").lower() for w in s.split() if len(w.strip(".,'’s")) > 1}


def error_kind(ep: BridgeEpisode, q: int, e: int) -> str | None:
    """Why pointing at event ``e`` (-1: unknown) for query ``q`` is wrong, or None if it is right."""
    if e == ep.gold[q]:
        return None
    if e < 0:
        return "false_unknown"
    if ep.gold[q] < 0 and ep.named_keys[e] != ep.query_key[q] and ep.event_alias[e] < 0:
        return "missed_unknown"
    key = ep.query_key[q]
    if ep.event_alias[e] >= 0 and ep.event_key[e] == key:
        return "lookalike"
    if ep.named_keys[e] == key:
        return "wrong_version" if ep.event_type[e] == 0 else "same_key_distractor"
    from memgen.render.text.domain import key_surface

    shared = _words(key_surface(ep.domain, key)) & _words(key_surface(ep.domain, ep.named_keys[e]))
    return "similar_key" if shared else "other_key"


@dataclass
class BridgeResult:
    """One head on one dataset: records for ``memgen score``, pointer accuracy and errors per config."""

    label: str
    records: list[dict]
    per_config: dict[str, dict]

    def summary(self) -> dict:
        total = Counter()
        for c in self.per_config.values():
            total.update({"correct": c["correct"], "queries": c["queries"], **c["errors"]})
        return {"label": self.label, "configs": self.per_config,
                "correct": total.pop("correct", 0), "queries": total.pop("queries", 0),
                "errors": {k: total.get(k, 0) for k in ERRORS}}


def evaluate_head(model: BridgeModel, encoded: dict[str, Encoded], label: str) -> BridgeResult:
    """Point every query of every config, and count what each wrong pointer pointed at."""
    records, per = [], {}
    for config, enc in encoded.items():
        errors, ok, n, probes = Counter(), 0, 0, {}
        for ep, pointed in zip(enc.episodes, point(model, enc), strict=True):
            for q, e in enumerate(pointed):
                kind = error_kind(ep, q, e)
                records.append({"id": ep.id, "qid": ep.qids[q], "prediction": answer_text(ep, e)})
                n, ok = n + 1, ok + (kind is None)
                cell = probes.setdefault(ep.probes[q], [0, 0])
                cell[0], cell[1] = cell[0] + (kind is None), cell[1] + 1
                if kind:
                    errors[kind] += 1
        per[config] = {"correct": ok, "queries": n, "errors": {k: errors.get(k, 0) for k in ERRORS},
                       "probes": {p: {"correct": c, "queries": t} for p, (c, t) in sorted(probes.items())}}
    return BridgeResult(label, records, per)


def write_result(results: Sequence[BridgeResult], dataset: str | Path, out: str | Path) -> dict:
    """Write ``<out>/<label>.jsonl`` (predictions), ``breakdown.json`` and memgen's score report
    (``report.json``, ``report.md``) for ``results``; the folder appears whole."""
    from memgen import scorers
    from memgen.io.atomic import write_folder

    scored = [scorers.score(dataset, r.records, name=r.label) for r in results]
    rep = scorers.report(scored)
    breakdown = {r.label: r.summary() for r in results}

    def write(tmp: Path) -> None:
        for r in results:
            with open(tmp / f"{r.label}.jsonl", "w") as f:
                f.writelines(json.dumps(rec) + "\n" for rec in r.records)
        (tmp / "breakdown.json").write_text(json.dumps(breakdown, indent=1) + "\n")
        (tmp / "report.json").write_text(rep.to_json())
        (tmp / "report.md").write_text(rep.to_markdown())

    names = {f"{r.label}.jsonl" for r in results} | {"breakdown.json", "report.json", "report.md"}
    write_folder(out, write, own=lambda name: name in names or name.endswith(".jsonl"))
    return {"breakdown": breakdown, "report": rep}
