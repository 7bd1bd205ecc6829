"""Helpers for the model tests: hand-built episodes rendered as chunk-rendering tables with
every item in a chunk the test chooses, and one call that runs a model and scores it.

The tables go through the real rendering code for everything but positions: item tokens from
``memgen.render.token.item_tokens``, columns (answers, probes, traps) from
``memgen.render.columns.common_columns`` after ``replay``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from memgen.evaluation.zoo import get_model
from memgen.format.codes import ABSENT, ITEM_PAD, OUTCOMES
from memgen.format.vocab import BOS, Vocab
from memgen.generators.knobs import Knobs
from memgen.ir.episode import Episode, Event, Query
from memgen.ir.program import Program
from memgen.ir.replay import replay_program
from memgen.models.registry import Answers
from memgen.models.stream import TokenBatch
from memgen.pipeline.build import build_shard
from memgen.pipeline.request import Request, tasks
from memgen.render.columns import common_columns
from memgen.render.registry import Batch
from memgen.render.token import item_tokens, token_answer_text
from memgen.scorers.answers import TokenVocab
from memgen.scorers.scoring import score

VOCAB = Vocab()
TOKEN_VOCAB = TokenVocab.from_manifest({"vocab": VOCAB.to_dict()})
CHUNK = 16


def W(key: int, value: int) -> Event:  # noqa: N802  (reads like the stream: W k v)
    return Event("write", key, value)


def S(key: int, value: int) -> Event:  # noqa: N802
    return Event("silent_write", key, value, signal=False)


def D(key: int) -> Event:  # noqa: N802
    return Event("delete", key)


def X(key: int, value: int, kind: str = "negated", alias: int = -1) -> Event:  # noqa: N802
    return Event("distractor", key, value, kind=kind, alias=alias)


def ask(key: int, what: str = "latest", k: int = 0, after: int = 10**6) -> Query:
    """A query on ``key``; ``after`` is the index of the event it follows (default: the end)."""
    return Query(qid=0, key=key, ask=what, version=k, after=after)


def episode(events: Sequence[Event], queries: Sequence[Query], id_: str = "hand-0") -> Episode:
    qs = tuple(Query(qid=i, key=q.key, ask=q.ask, version=q.version,
                     after=min(q.after, len(events) - 1)) for i, q in enumerate(queries))
    return Episode(id=id_, family="hand", events=tuple(events), queries=qs)


def _program(episodes: Sequence[Episode]) -> Program:
    return replay_program(Program.from_episodes(episodes))


def hand_table(episodes: Sequence[Episode], chunk_of: Sequence[Sequence[int]] | None = None,
               chunk: int = CHUNK, vocab: Vocab = VOCAB) -> pa.Table:
    """A chunk-rendering table of ``episodes`` (replayed).  Item n of a row (events and
    queries in reading order) sits in chunk ``chunk_of[row][n]`` (default: chunk n + 1; chunk 0
    holds BOS); items sharing a chunk follow each other with one filler token between."""
    p = _program(episodes)
    B, N = p.shape
    tok, lens = item_tokens(p, vocab)
    real = p.item != ITEM_PAD
    where = np.zeros((B, N), dtype=np.int64)
    for b in range(B):
        n_real = int(real[b].sum())
        where[b, :n_real] = chunk_of[b] if chunk_of is not None else np.arange(1, n_real + 1)
    T = int(where.max() + 1) * chunk
    ids = (vocab.filler_offset + np.arange(T) % 97).astype(np.int32)[None, :].repeat(B, axis=0)
    ids[:, 0] = BOS
    start = np.zeros((B, N), dtype=np.int64)
    for b in range(B):
        used: dict[int, int] = {}
        for n in np.flatnonzero(real[b]):
            c = int(where[b, n])
            s = c * chunk + 1 + used.get(c, 0)
            used[c] = used.get(c, 0) + int(lens[b, n]) + 1
            assert used[c] < chunk, "too many items for one chunk"
            start[b, n] = s
            ids[b, s:s + lens[b, n]] = tok[b, n, :lens[b, n]]
    batch = Batch(program=p, seeds=np.arange(B, dtype=np.uint64), ids=[ep.id for ep in episodes],
                  family="hand", target_length=T)
    cols = common_columns(batch, start, start + lens, start // chunk, None, np.full(B, T), "chunk",
                          token_answer_text(vocab))
    cols["input_ids"] = pa.ListArray.from_arrays(pa.array(np.arange(B + 1, dtype=np.int32) * T),
                                                 pa.array(ids.reshape(-1)))
    cols["chunk_size"] = pa.array(np.full(B, chunk, dtype=np.int32))
    return pa.table(cols)


def run(model: str, table: pa.Table, vocab: Vocab = VOCAB) -> tuple[Answers, list[str]]:
    """The model's answers on ``table`` and each query's outcome name (DESIGN.md section 7)."""
    m = get_model(model)
    answers = m.predict(TokenBatch.from_table(table, vocab, with_gold=m.reads_gold))
    result = score(table, answers.prediction.tolist(), vocab=TOKEN_VOCAB)
    return answers, [OUTCOMES[o] for o in result.outcome]


def token_of(value: int) -> int:
    """The token a model should emit for a value id (or for "unknown")."""
    return TOKEN_VOCAB.absent_id if value == ABSENT else VOCAB.value_offset + value


def generated_table(family: str, length: int, episodes: int, seed: int = 0, rendering: str = "chunk",
                    **knobs) -> pa.Table:
    """One config's episodes as a table, built in memory (no files)."""
    req = Request(families=(family,), renderings=(rendering,), lengths=(length,), episodes=episodes,
                  seed=seed, shard_size=episodes, knobs=Knobs(**knobs))
    (task,) = tasks(req)
    return build_shard(req, task)
