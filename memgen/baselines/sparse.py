"""``sparse``: top-k chunk retrieval by key match, no state, no recency.

At each query the model ranks the chunks before the query by how many times the queried key
occurs in them (any occurrence: a write, an overwrite, a silent write, a distractor, a
delete, an earlier query), keeps the best ``k``, and answers with the value token that follows
the key in the best kept chunk that has one (the first such occurrence in that chunk).  It
reads no marker's meaning and has no notion of time beyond what the score gives: ties between
chunks go to the earlier chunk, as in a stable top-k.  If no kept chunk states a value after
the key, it answers "unknown".

What that predicts (DESIGN.md section 8): right when a key was stated once; wrong when an
older statement ties or outscores the current one (``stale`` on overwrites, another version
on version asks), when a distractor's chunk wins (``distractor``), and after a delete, where
the value from before the delete is still there to be found (``resurrected``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memgen.format.vocab import ABSENT_TOKEN
from memgen.models.registry import ROUTE_RETRIEVAL, Answers, register_model
from memgen.models.retrieval import mentions_before, top_chunks
from memgen.models.stream import TokenBatch


@register_model("sparse")
@dataclass(frozen=True)
class Sparse:
    """``k``: chunks kept per query."""

    k: int = 4

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError("k must be at least 1")

    def predict(self, batch: TokenBatch) -> Answers:
        s, n_q = batch.stream, batch.n_queries
        pairs = mentions_before(batch, np.ones(len(s), dtype=bool))  # every mention of the key
        chosen = top_chunks(batch, pairs, self.k, recent_first=False)
        value = s.value[pairs.m]
        # candidates: a value stated after the key, in a kept chunk; best chunk, then earliest
        cand = np.flatnonzero((chosen.rank >= 0) & (value >= 0))
        order = cand[np.lexsort((s.pos[pairs.m[cand]], chosen.rank[cand], pairs.q[cand]))]
        q_sorted = pairs.q[order]
        first = np.ones(order.size, dtype=bool)
        first[1:] = q_sorted[1:] != q_sorted[:-1]
        prediction = np.full(n_q, ABSENT_TOKEN, dtype=np.int64)
        prediction[q_sorted[first]] = value[order[first]] + batch.vocab.value_offset
        return Answers(prediction, np.full(n_q, ROUTE_RETRIEVAL, dtype=np.int8), chosen.active)
