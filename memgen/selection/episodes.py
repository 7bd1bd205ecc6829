"""What a selector reads: one episode as passages (text with ``--chunk-size``) or chunks (the
chunk rendering), its queries, and, for scoring, each query's evidence and the *kind* of every
other passage (which trap it is for that query), all from the IR's columns.

* ``docs``: what lexical and dense selectors index, one string per passage: the passage's text
  (text rendering), or its token ids as words ``t<id>`` (chunk rendering).  Questions asked
  inside the context are cut out of it: they state no fact, and a question would otherwise
  find itself.
* ``questions``: the query as a selector sees it: its question text, or its key tokens as words.
* ``before``: how many passages lie before each query (a passage that starts before it); a
  selector ranks only those, as a model answering at the query never reads ahead.
* ``kinds``: per query and passage, the most telling event of the passage before the query, in
  the precedence of :data:`PASSAGE_KINDS`: a ``deleted`` value or the key's delete, a ``stale``
  value of the key (any other set of it), a ``distractor`` about the key, a ``lookalike`` naming
  a key like it, an event of an ``other_key``, or none at all (``filler``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from memgen.format.errors import DataError, UsageError
from memgen.format.vocab import Vocab
from memgen.io.dataset import Dataset
from memgen.selection.registry import PASSAGE_RENDERINGS

#: what a non-evidence passage is to a query, most telling first (the code is the index)
PASSAGE_KINDS = ("deleted", "stale", "distractor", "lookalike", "other_key", "filler")
DELETED, STALE, DISTRACTOR, LOOKALIKE, OTHER_KEY, FILLER = range(len(PASSAGE_KINDS))
_SETS = ("write", "overwrite", "silent_write")


@dataclass(eq=False)
class SelectionEpisode:
    """One episode's P passages and Q queries (see the module docstring)."""

    id: str
    config: str
    rendering: str
    docs: list[str]  # (P,)
    questions: list[str]  # (Q,)
    before: np.ndarray  # (Q,) int64 passages before each query
    evidence: list[np.ndarray]  # (Q,) passage indices that decide each answer
    qid: np.ndarray  # (Q,) int64
    probe: list[str]  # (Q,)
    kinds: np.ndarray  # (Q, P) int8 index into PASSAGE_KINDS
    row: dict = field(repr=False)  # the row as stored (prompt rebuilt)
    table: pa.Table | None = field(default=None, repr=False)  # chunk rendering: the one-row table
    vocab: Vocab | None = field(default=None, repr=False)

    @property
    def n_passages(self) -> int:
        return len(self.docs)

    @property
    def n_queries(self) -> int:
        return len(self.questions)


def check_config(ds: Dataset, config: str) -> str:
    """The rendering of ``config``, checked to carry passages (UsageError otherwise)."""
    rendering = ds.config(config)["rendering"]
    if rendering not in PASSAGE_RENDERINGS:
        raise UsageError(f"--config {config}: the {rendering} rendering has no passages or chunks to select; use "
                         "the chunk rendering or the text rendering with --chunk-size N")
    if rendering == "text" and not ds.manifest.get("config", {}).get("render", {}).get("passage_size"):
        raise UsageError(f"--config {config}: a text config without passages; generate it with --chunk-size N "
                         "(tokens per passage)")
    return rendering


def iter_selection_episodes(ds: Dataset, config: str, limit: int | None = None) -> Iterator[SelectionEpisode]:
    """The episodes of ``config`` (text with passages, or chunk), in dataset order, at most
    ``limit``; one shard in memory at a time."""
    rendering = check_config(ds, config)
    vocab = Vocab.from_dict(ds.vocab) if rendering == "chunk" else None
    n = 0
    for table in ds.iter_tables(config):
        rows = table.to_pylist()
        for i, row in enumerate(rows):
            if limit is not None and n >= limit:
                return
            if rendering == "text":
                yield text_episode(row, config)
            else:
                yield chunk_episode(row, config, table.slice(i, 1), vocab)
            n += 1


def text_episode(row: dict, config: str) -> SelectionEpisode:
    """A text row with passages as a :class:`SelectionEpisode`."""
    off = np.asarray(row["passages"], dtype=np.int64)
    if off.size < 2 or off[0] != 0 or off[-1] != len(row["context"]) or (np.diff(off) <= 0).any():
        raise DataError(f"{config}/{row['id']}: its passages column does not cut its context")
    ctx = row["context"]
    qs = row["queries"]
    inline = sorted((q["start"], q["end"]) for q in qs if q["start"] >= 0)
    docs = []
    for a, b in zip(off[:-1].tolist(), off[1:].tolist(), strict=True):
        cut = [(max(s, a), min(e, b)) for s, e in inline if s < b and e > a]
        pieces, pos = [], a
        for s, e in cut:
            pieces.append(ctx[pos:s])
            pos = e
        pieces.append(ctx[pos:b])
        docs.append("".join(pieces))
    q_start = np.asarray([q["start"] for q in qs], dtype=np.int64)
    before = np.where(q_start < 0, off.size - 1, np.searchsorted(off[:-1], q_start, side="left"))
    return _episode(row, config, "text", docs, list(row["questions"]), before, off.size - 1)


def chunk_episode(row: dict, config: str, table: pa.Table, vocab: Vocab) -> SelectionEpisode:
    """A chunk-rendering row as a :class:`SelectionEpisode`: chunks of ``chunk_size`` tokens,
    queries as their key tokens."""
    ids = np.asarray(row["input_ids"], dtype=np.int64)
    C = int(row["chunk_size"] or 0)
    if C < 1:
        raise DataError(f"{config}/{row['id']}: chunk_size {C}; not a chunk-rendering row")
    P = -(-ids.size // C)
    qs = row["queries"]
    keep = np.ones(ids.size, dtype=bool)
    for q in qs:
        keep[max(q["start"], 0):max(q["end"], 0)] = False
    words = np.char.add("t", ids.astype(str))
    docs = [" ".join(words[c * C:(c + 1) * C][keep[c * C:(c + 1) * C]].tolist()) for c in range(P)]
    L = vocab.key_length
    questions = [" ".join(words[q["start"] + 2:q["start"] + 2 + L].tolist()) for q in qs]
    q_start = np.asarray([q["start"] for q in qs], dtype=np.int64)
    before = -(-q_start // C)  # chunks starting before the query
    return _episode(row, config, "chunk", docs, questions, before, P, table, vocab)


def _episode(row: dict, config: str, rendering: str, docs: list[str], questions: list[str], before: np.ndarray,
             P: int, table: pa.Table | None = None, vocab: Vocab | None = None) -> SelectionEpisode:
    qs = row["queries"]
    evidence = [np.asarray(q["evidence"], dtype=np.int64) for q in qs]
    for q, e in zip(qs, evidence, strict=True):
        if e.size and (e.min() < 0 or e.max() >= P):
            raise DataError(f"{config}/{row['id']}: query {q['qid']} has evidence outside its {P} passages")
    return SelectionEpisode(
        id=row["id"], config=config, rendering=rendering, docs=docs, questions=questions,
        before=np.asarray(before, dtype=np.int64), evidence=evidence,
        qid=np.asarray([q["qid"] for q in qs], dtype=np.int64), probe=[q["probe"] for q in qs],
        kinds=passage_kinds(row, P), row=row, table=table, vocab=vocab)


def passage_kinds(row: dict, P: int) -> np.ndarray:
    """(Q, P) int8: the kind of every passage for every query (module docstring), from the row's
    events (their ``chunk``, ``op``, ``kind``, ``key``, ``value``, ``end``) and queries (``key``,
    ``start``, ``traps.deleted``); events after a query do not count for it."""
    evs, qs = row["events"], row["queries"]
    out = np.full((len(qs), P), FILLER, dtype=np.int8)
    if not evs or not qs:
        return out
    op = np.asarray([e["op"] for e in evs])
    key = np.asarray([e["key"] for e in evs], dtype=np.int64)
    value = np.asarray([e["value"] for e in evs], dtype=np.int64)
    chunk = np.asarray([e["chunk"] for e in evs], dtype=np.int64)
    end = np.asarray([e["end"] for e in evs], dtype=np.int64)
    look = np.asarray([e["kind"] == "lookalike" for e in evs])
    is_set, is_del, is_dis = np.isin(op, _SETS), op == "delete", op == "distractor"
    q_key = np.asarray([q["key"] for q in qs], dtype=np.int64)[:, None]
    q_start = np.asarray([q["start"] for q in qs], dtype=np.int64)[:, None]
    deleted = np.zeros((len(qs), len(evs)), dtype=bool)
    for i, q in enumerate(qs):
        deleted[i] = np.isin(value, q["traps"]["deleted"]) & is_set
    same = key[None, :] == q_key
    code = np.full((len(qs), len(evs)), OTHER_KEY, dtype=np.int8)
    code[same & is_dis & look] = LOOKALIKE
    code[same & is_dis & ~look] = DISTRACTOR
    code[same & is_set] = STALE
    code[same & (is_del | deleted)] = DELETED
    code[~((q_start < 0) | (end[None, :] <= q_start))] = FILLER  # after the query
    ok = (chunk >= 0) & (chunk < P)
    qi, ei = np.nonzero(np.broadcast_to(ok, code.shape))
    np.minimum.at(out, (qi, chunk[ei]), code[qi, ei])
    return out
