"""Helpers for the scorer tests (imported by the test modules and conftest.py): tables of the
memgen schema built by hand from IR episodes (after ``replay``), and dataset folders."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from memgen.format.codes import ABSENT, ABSENT_TEXT
from memgen.format.schema import schema_for
from memgen.format.vocab import Vocab
from memgen.io.shards import write_shard
from memgen.ir.episode import Episode, Event, Query
from memgen.ir.replay import replay
from memgen.scorers.answers import TokenVocab
from memgen.scorers.outcomes import PRED_ABSENT, PRED_UNPARSED

#: the vocabulary of hand-built token tables: values at 1000 .. 1999, "unknown" at 6
_VOCAB = Vocab(vocab_size=3000, key_tokens=952, key_length=1, values=1000, max_version=32)
VOCAB = TokenVocab.from_manifest({"vocab": _VOCAB.to_dict()})
DOMAIN = "inventory"
COLOURS = ("red", "blue", "green", "amber", "violet")


def surface(domain: str, value: int) -> str:
    """A fake text surface with a thousands separator, so number formats matter."""
    return f"{COLOURS[value % len(COLOURS)]} crate {value * 100:,}"


def tok(value: int) -> int:
    """Token id of a value id (or of "unknown" for ABSENT)."""
    return VOCAB.absent_id if value == ABSENT else VOCAB.value_offset + value


def with_spans(ep: Episode, step: int = 100) -> Episode:
    """``ep`` with every event at ``step * i`` and each query just after its ``after`` event."""
    events = tuple(replace(e, start=step * i, end=step * i + 4) for i, e in enumerate(ep.events))
    queries = []
    for j, q in enumerate(ep.queries):
        after = q.after if q.after >= 0 else len(ep.events) - 1
        start = step * (after + 1) - step // 2 + j  # between event `after` and the next
        queries.append(replace(q, after=after, start=start, end=start + 1))
    length = step * (len(ep.events) + 1)
    return replace(ep, events=events, queries=tuple(queries), length=length,
                   target_length=ep.target_length or length)


def row_of(ep: Episode, rendering: str = "token", domain: str = DOMAIN) -> dict:
    """One table row (memgen.format.schema) of a replayed episode."""
    def text(v: int) -> str:
        if v == ABSENT:
            return ABSENT_TEXT
        return surface(domain, v) if rendering == "text" else str(tok(v))

    row = {
        "id": ep.id, "family": ep.family, "rendering": rendering, "seed": ep.seed,
        "target_length": ep.target_length, "length": ep.length,
        "events": [{"op": e.op, "key": e.key, "value": e.value, "version": e.version, "signal": e.signal,
                    "kind": e.kind, "alias": e.alias, "start": e.start, "end": e.end, "chunk": e.chunk,
                    "segment": e.segment} for e in ep.events],
        "queries": [{"qid": q.qid, "key": q.key, "ask": q.ask, "version": q.version, "answer": q.answer,
                     "answer_text": text(q.answer), "probe": q.probe,
                     "traps": {"stale": list(q.traps.stale), "distractor": list(q.traps.distractor),
                               "other_keys": list(q.traps.other_keys), "deleted": list(q.traps.deleted)},
                     "start": q.start, "end": q.end, "evidence": list(q.evidence_chunks)} for q in ep.queries],
    }
    if rendering == "text":
        row.update(context="", questions=[f"question {q.qid}" for q in ep.queries], prompt="",
                   tokenizer="cl100k", domain=domain)
    else:
        row["input_ids"] = []
        if rendering == "chunk":
            row["chunk_size"] = 64
        if rendering == "bridge":
            row["segments"] = [0, ep.length]
    return row


def episodes_table(episodes: list[Episode], rendering: str = "token", domain: str = DOMAIN) -> pa.Table:
    """Replay every episode (spans laid out by :func:`with_spans`) into one table."""
    rows = [row_of(replay(with_spans(ep)), rendering, domain) for ep in episodes]
    return pa.Table.from_pylist(rows, schema=schema_for(rendering))


def catalogue_episode(ep_id: str = "ep-0") -> Episode:
    """One episode in which every outcome can be produced (see test_outcomes.py).

    Keys: 1 written 10, overwritten 11, negated distractor 99; 2 written 20 then deleted;
    3 silently written 30; 4 never written, hypothetical distractor 44; 5 written 50;
    6 written 60, overwritten 61, deleted.  Queries come last, in key order."""
    ev = (
        Event("write", 1, 10), Event("write", 2, 20), Event("overwrite", 1, 11),
        Event("distractor", 1, 99, kind="negated"), Event("write", 5, 50), Event("delete", 2),
        Event("silent_write", 3, 30, signal=False), Event("distractor", 4, 44, kind="hypothetical"),
        Event("write", 6, 60), Event("overwrite", 6, 61), Event("delete", 6),
    )
    last = len(ev) - 1
    qs = (
        Query(0, 1, "latest", after=last), Query(1, 1, "version", version=1, after=last),
        Query(2, 1, "previous", after=last), Query(3, 2, "latest", after=last),
        Query(4, 3, "latest", after=last), Query(5, 4, "latest", after=last),
        Query(6, 6, "latest", after=last),
    )
    return Episode(ep_id, "mixed", ev, qs, target_length=128)


def write_folder(root: Path, tables: dict[str, pa.Table], vocab: dict | None = None) -> Path:
    """A dataset folder that passes ``memgen verify``: one shard per config, manifest, card."""
    configs = {}
    for name, table in tables.items():
        path = f"data/{name}/test-00000-of-00001.arrow"
        digest, size = write_shard(root / path, table)
        first = table.slice(0, 1).to_pylist()[0]
        configs[name] = {"family": first["family"], "rendering": first["rendering"],
                         "length": first["target_length"], "rows": table.num_rows, "seed": 0,
                         "shards": [{"path": path, "rows": table.num_rows, "bytes": size,
                                     "sha256": digest}]}
    manifest = {"status": "complete", "config": {"split": "test"}, "vocab": vocab, "configs": configs}
    (root / "manifest.json").write_text(json.dumps(manifest))
    names = "".join(f"- config_name: {n}\n  data_files: data/{n}/*.arrow\n" for n in configs)
    (root / "README.md").write_text(f"---\nconfigs:\n{names}---\n# hand-built test dataset\n")
    return root


def vocab_dict() -> dict:
    """The manifest's ``vocab`` table of hand-built folders."""
    return _VOCAB.to_dict()


def oracle_tokens(frame) -> np.ndarray:
    return np.where(frame.answer >= 0, frame.answer + VOCAB.value_offset, VOCAB.absent_id)


def reference(code: int, gold: int, ask: str, traps: dict[str, list[int]]) -> str:
    """DESIGN.md section 7, one query at a time."""
    if code == PRED_UNPARSED:
        return "unparsed"
    if code == gold:
        return "correct"
    if gold == ABSENT:
        if code in traps["deleted"]:
            return "resurrected"
        if code in traps["distractor"]:
            return "distractor"
        if code in traps["other_keys"]:
            return "cross_key"
        return "missed_absent"
    if code == PRED_ABSENT:
        return "false_absent"
    if code in traps["stale"]:
        return "stale" if ask == "latest" else "wrong_version"
    if code in traps["distractor"]:
        return "distractor"
    if code in traps["other_keys"]:
        return "cross_key"
    return "hallucinated"
