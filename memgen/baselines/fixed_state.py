"""``fixed_state``: a d-dimensional delta-rule associative memory (fast weights, DeltaNet).

Keys and values are embedded as fixed random unit vectors (a counter-based hash of the id:
the same vectors on every machine, no global random state).  The state is one ``(d, d)``
matrix S, starting at zero, written in reading order at every key/value the stream states::

    S <- S + beta (v - S k) k^T        # (d, d): move S k towards v

with the best gate the markers allow: ``beta = 1`` for a WRITE and for a silent ``key value``
(an unmarked statement is as good as a write to a model that cannot tell), ``beta = 0`` at a
distractor marker (the statement is skipped), and a DELETE writes towards the null vector
(``v = 0``).  A query reads ``r = S k`` and answers the value whose vector has the largest dot
product with ``r``, or "unknown" when that is below ``threshold``.

What that predicts (DESIGN.md section 8): with few keys (well under d) the keys are nearly
orthogonal and every probe but ``version`` is right; there is no history, so ``version`` and
``previous`` asks get the current value (``wrong_version``) unless they ask for it.  As keys
x updates outgrow d, writes interfere (S k drifts from v) and every probe degrades: the
capacity curve in tests/models.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..render.vocab import ABSENT_TOKEN, DELETE, DISTRACTOR_MARKER, QUERY, WRITE
from ..rng import derive_seed, mix64
from .registry import ROUTE_STATE, Answers, register_model
from .stream import SILENT, TokenBatch

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def unit_vectors(ids: np.ndarray, d: int, salt: str) -> np.ndarray:
    """(n, d) float64 rows of unit norm: a fixed Gaussian direction per id (Box-Muller on a
    counter-based hash of (salt, id, coordinate)); the same on every machine."""
    base = mix64(np.asarray(ids, dtype=np.uint64) ^ np.uint64(derive_seed("fixed_state", salt)))
    c = np.arange(1, 2 * d + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        bits = mix64(base[:, None] + c[None, :] * _GOLDEN)  # (n, 2d)
    u = ((bits >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)  # (0, 1)
    z = np.sqrt(-2.0 * np.log(u[:, :d])) * np.cos(2.0 * np.pi * u[:, d:])  # (n, d)
    return z / np.linalg.norm(z, axis=1, keepdims=True)


@lru_cache(maxsize=8)
def _value_table(values: int, d: int) -> np.ndarray:
    return unit_vectors(np.arange(values), d, "value")  # (values, d)


@register_model("fixed_state")
@dataclass(frozen=True)
class FixedState:
    """``d``: state width (the state is d x d); ``threshold``: the smallest read-out dot
    product that counts as a value; below it the answer is "unknown"."""

    d: int = 128
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.d < 1:
            raise ValueError("d must be at least 1")

    def gate(self, marker: np.ndarray) -> np.ndarray:
        """beta per mention: 1 for WRITE, DELETE and silent ``key value``; 0 for distractor
        markers and queries (a query reads, it does not write)."""
        beta = np.zeros(marker.shape)
        beta[(marker == WRITE) | (marker == DELETE) | (marker == SILENT)] = 1.0
        beta[np.isin(marker, list(DISTRACTOR_MARKER.values())) | (marker == QUERY)] = 0.0
        return beta

    def predict(self, batch: TokenBatch) -> Answers:
        s, vocab, d = batch.stream, batch.vocab, self.d
        values = _value_table(vocab.values, d)  # (V, d)
        beta = self.gate(s.marker)  # (M,)
        # the mention each query is (its QUERY marker)
        query_of = np.full(len(s), -1, dtype=np.int64)
        query_of[np.searchsorted(s.pos, batch.query_start)] = np.arange(batch.n_queries)

        best = np.zeros(batch.n_queries, dtype=np.int64)
        score = np.zeros(batch.n_queries)
        row_first = np.searchsorted(s.row, np.arange(batch.n_rows + 1))
        for r in range(batch.n_rows):
            lo, hi = row_first[r], row_first[r + 1]
            keys = unit_vectors(s.key[lo:hi], d, "key")  # (m, d), one per mention of the row
            # what each mention writes: its value's vector, or the null vector for a delete
            value = s.value[lo:hi]
            target = np.where((value >= 0)[:, None], values[np.maximum(value, 0)], 0.0)  # (m, d)
            S = np.zeros((d, d))  # (d, d): each episode starts empty
            for i in range(hi - lo):
                k, q = keys[i], query_of[lo + i]  # (d,)
                if q >= 0:
                    sims = values @ (S @ k)  # (V,)
                    best[q] = int(np.argmax(sims))
                    score[q] = sims[best[q]]
                elif beta[lo + i]:  # a zero gate skips the update (it would add nothing)
                    S += beta[lo + i] * np.outer(target[i] - S @ k, k)

        prediction = np.where(score >= self.threshold, best + vocab.value_offset, ABSENT_TOKEN)
        n = batch.n_queries
        return Answers(prediction.astype(np.int64), np.full(n, ROUTE_STATE, dtype=np.int8),
                       np.zeros(n, dtype=np.int32))
