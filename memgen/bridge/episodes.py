"""Text episodes as the bridge reads them: each event's sentence (its character span of the
context), each question, and, from the IR, the labels that training and scoring need.

Only public columns are read (``events`` with their spans, ``queries``, ``questions``,
``context``, ``domain``), never the phrasings, so any rewrite of the templates reads the same.
Training episodes are built in memory by the generate pipeline, from seeds disjoint from
evaluation (:data:`TRAIN_SEED`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from memgen.format.errors import DataError, UsageError
from memgen.harness.text_dataset import open_text_dataset

#: event types the heads tell apart: a write of some key (write, overwrite, silent write, and a
#: lookalike, which writes the look-alike key it names), a delete, and a statement that changes nothing
EVENT_TYPES = ("set", "delete", "none")
ASKS = ("latest", "previous", "version")
#: version ordinals the heads can answer, 1..K_MAX (memgen generate's default --max-version)
K_MAX = 32
#: base seed of training episodes; evaluation datasets made with this --seed are refused
TRAIN_SEED = 20_260_020
COLUMNS = ["id", "family", "target_length", "events", "queries", "questions", "context", "domain"]
#: ceilings checked before any work: events and queries per episode, characters per sentence
MAX_EVENTS, MAX_QUERIES, MAX_SENTENCE = 20_000, 4_096, 4_096


@dataclass(frozen=True)
class BridgeEpisode:
    """One text episode: sentences, the keys the oracle mode is given, and the labels.

    ``event_key`` and ``event_alias`` are the IR's (a lookalike names ``event_alias``, the
    look-alike of ``event_key``; :attr:`named_keys` are the keys the sentences name); ``gold``
    is per query the index of the event whose value answers it, or -1 for unknown."""

    id: str
    family: str
    domain: str
    target_length: int
    events: tuple[str, ...]
    questions: tuple[str, ...]
    event_type: tuple[int, ...]
    event_key: tuple[int, ...]
    event_alias: tuple[int, ...]
    event_value: tuple[int, ...]
    event_kind: tuple[str, ...]
    event_end: tuple[int, ...]
    query_key: tuple[int, ...]
    query_start: tuple[int, ...]  # -1: asked after the context
    qids: tuple[int, ...]
    asks: tuple[int, ...]
    ks: tuple[int, ...]  # 1-based version ordinal; 0 unless a version ask
    probes: tuple[str, ...]
    gold: tuple[int, ...]
    answers: tuple[str, ...]

    @property
    def named_keys(self) -> tuple[int, ...]:
        """Per event the key its sentence names: what the oracle mode is given."""
        return tuple(a if a >= 0 else k for k, a in zip(self.event_key, self.event_alias, strict=True))


def _event_type(op: str, kind: str) -> int:
    if op in ("write", "overwrite", "silent_write") or (op == "distractor" and kind == "lookalike"):
        return 0
    return 1 if op == "delete" else 2


def _gold(events: list[dict], q: dict) -> int:
    """Index of the state-changing event of ``q``'s key that set its answer (before ``q``), or -1."""
    if q["answer"] < 0:
        return -1
    before = q["start"] if q["start"] >= 0 else 1 << 62
    hits = [i for i, e in enumerate(events) if e["key"] == q["key"] and e["value"] == q["answer"]
            and e["op"] in ("write", "overwrite", "silent_write") and e["end"] <= before]
    if len(hits) != 1:
        raise DataError(f"query {q['qid']}: its answer is set by {len(hits)} events of its key, not one")
    return hits[0]


def episodes_from_table(table: pa.Table, where: str) -> Iterator[BridgeEpisode]:
    """The rows of a text-rendering table as :class:`BridgeEpisode` (ceilings checked first)."""
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"{where}: not a text rendering (no {', '.join(missing)} column)")
    cols = table.select(COLUMNS).to_pydict()
    for i in range(table.num_rows):
        evs, qs, ctx = cols["events"][i], cols["queries"][i], cols["context"][i]
        qtexts = cols["questions"][i]
        if len(evs) > MAX_EVENTS or len(qs) > MAX_QUERIES or len(qtexts) != len(qs):
            raise DataError(f"{where}: episode {cols['id'][i]} has {len(evs)} events, {len(qs)} queries and "
                            f"{len(qtexts)} questions (at most {MAX_EVENTS} / {MAX_QUERIES}, one question each)")
        spans = [(e["start"], e["end"]) for e in evs]
        if any(not 0 <= a < b <= len(ctx) or b - a > MAX_SENTENCE for a, b in spans):
            raise DataError(f"{where}: episode {cols['id'][i]}: an event's span lies outside its context")
        if any(q["ask"] == "version" and not 1 <= q["version"] <= K_MAX for q in qs):
            raise UsageError(f"{where}: a version ask beyond the {K_MAX}th value; the bridge heads answer "
                             f"ordinals 1..{K_MAX} (generate with --max-version {K_MAX} or less)")
        yield BridgeEpisode(
            id=cols["id"][i], family=cols["family"][i], domain=cols["domain"][i],
            target_length=int(cols["target_length"][i]), events=tuple(ctx[a:b] for a, b in spans),
            questions=tuple(qtexts), event_type=tuple(_event_type(e["op"], e["kind"]) for e in evs),
            event_key=tuple(e["key"] for e in evs),
            event_alias=tuple(e["alias"] if e["op"] == "distractor" and e["kind"] == "lookalike" else -1
                              for e in evs),
            event_value=tuple(e["value"] for e in evs), event_kind=tuple(e["kind"] or e["op"] for e in evs),
            event_end=tuple(e["end"] for e in evs), query_key=tuple(q["key"] for q in qs),
            query_start=tuple(q["start"] for q in qs), qids=tuple(q["qid"] for q in qs),
            asks=tuple(ASKS.index(q["ask"]) for q in qs),
            ks=tuple(q["version"] if q["ask"] == "version" else 0 for q in qs),
            probes=tuple(q["probe"] for q in qs), gold=tuple(_gold(evs, q) for q in qs),
            answers=tuple(q["answer_text"] for q in qs))


def dataset_episodes(root: str | Path, configs: Sequence[str] | None = None) -> dict[str, list[BridgeEpisode]]:
    """Every text config of a verified dataset folder -> its episodes.  A dataset generated with
    the training seed is refused: its episodes are the ones the shipped heads were trained on."""
    from memgen.ir.rng import derive_seed

    ds, names, _ = open_text_dataset(root, configs)
    for name in names:
        cfg = ds.config(name)
        if cfg.get("seed") == derive_seed("episode", TRAIN_SEED, cfg["family"]):
            raise UsageError(f"{root}: {name} was generated with --seed {TRAIN_SEED}, the bridge's training "
                             "seed; evaluate on episodes of any other seed")
    return {name: [ep for t in ds.iter_tables(name) for ep in episodes_from_table(t, f"{root}:{name}")]
            for name in names}


def training_episodes(families: Sequence[str], lengths: Sequence[int], episodes: int, *, domains: Sequence[str],
                      seed: int = TRAIN_SEED, **options) -> list[BridgeEpisode]:
    """``episodes`` per (family, length, domain), built in memory by the generate pipeline with
    ``seed`` (default :data:`TRAIN_SEED`) and generate ``options`` (``overwrites=...``)."""
    from memgen.pipeline.build import build_shard
    from memgen.pipeline.request import make_request, tasks, validate

    out = []
    for domain in domains:
        req = make_request(tuple(families), renderings="text", lengths=tuple(lengths), episodes=episodes,
                           seed=seed, domain=domain, **options)
        validate(req)
        for task in tasks(req):
            out.extend(episodes_from_table(build_shard(req, task), f"training {task.config}"))
    return out
