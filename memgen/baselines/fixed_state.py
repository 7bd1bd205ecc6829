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

Two implementations of the same recurrence sit side by side (as in flash-linear-attention):
:func:`delta_rule_naive`, one rank-1 update per write, and :func:`delta_rule_chunked`, the
chunkwise form (DeltaNet's WY representation: within a chunk of C writes the updates solve
one unit lower-triangular system, ``(I + diag(beta) tril(K K^T, -1)) U = diag(beta)(V - K S^T)``,
and ``S += U^T K`` once per chunk).  The model uses the chunked one: its cost is matrix
products, O(writes x d^2 / C) calls instead of O(writes); the tests hold them equal.

What that predicts (DESIGN.md section 8): with few keys (well under d) the keys are nearly
orthogonal and every probe but ``version`` is right; there is no history, so ``version`` and
``previous`` asks get the current value (``wrong_version``) unless they ask for it.  As keys
x updates outgrow d, writes interfere (S k drifts from v) and every probe degrades: the
capacity curve in tests/models.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from memgen.format.vocab import ABSENT_TOKEN, DELETE, DISTRACTOR_MARKER, QUERY, WRITE
from memgen.ir.rng import derive_seed, mix64
from memgen.models.registry import ROUTE_STATE, Answers, register_model
from memgen.models.stream import NO_MARKER, TokenBatch

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


def delta_rule_naive(keys: np.ndarray, targets: np.ndarray, beta: np.ndarray, read_keys: np.ndarray,
                     read_after: np.ndarray) -> np.ndarray:
    """The reference: ``S`` starts at zero; write i does ``S += beta_i (v_i - S k_i) k_i^T``; read j
    returns ``S k`` for ``read_keys[j]`` after the first ``read_after[j]`` writes.

    keys, targets: (m, d); beta: (m,); read_keys: (q, d); read_after: (q,) in [0, m].
    Returns (q, d)."""
    m, d = keys.shape
    S = np.zeros((d, d))  # (d, d) maps a key to a value
    out = np.zeros((read_after.size, d))
    order = np.argsort(read_after, kind="stable")
    j = 0
    for i in range(m + 1):
        while j < order.size and read_after[order[j]] == i:
            out[order[j]] = S @ read_keys[order[j]]  # (d,)
            j += 1
        if i < m:
            S += beta[i] * np.outer(targets[i] - S @ keys[i], keys[i])
    return out


def delta_rule_chunked(keys: np.ndarray, targets: np.ndarray, beta: np.ndarray, read_keys: np.ndarray,
                       read_after: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Same signature and result as :func:`delta_rule_naive`, ``chunk`` writes at a time.

    Within a chunk starting from state S0, write i's update is ``u_i = beta_i (v_i - S0 k_i -
    sum_{j<i} u_j (k_j . k_i))``: a unit lower-triangular system in the chunk's U (n, d).  A
    read after the chunk's first a writes is ``S0 k + sum_{j<a} u_j (k_j . k)``."""
    m, d = keys.shape
    S = np.zeros((d, d))
    out = np.zeros((read_after.size, d))
    n_chunks = m // chunk + 1  # the last chunk holds the rest (maybe none) and the final reads
    for c in range(n_chunks):
        lo, hi = c * chunk, min((c + 1) * chunk, m)
        K, b = keys[lo:hi], beta[lo:hi]  # (n, d), (n,)
        last = c == n_chunks - 1
        if hi > lo:
            A = np.eye(hi - lo) + b[:, None] * np.tril(K @ K.T, -1)  # (n, n) unit lower triangular
            U = np.linalg.solve(A, b[:, None] * (targets[lo:hi] - K @ S.T))  # (n, d)
        else:
            U = np.zeros((0, d))
        here = np.flatnonzero((read_after >= lo) & ((read_after < hi) | (last & (read_after == hi))))
        if here.size:
            Kq = read_keys[here]  # (r, d)
            seen = np.arange(hi - lo)[None, :] < (read_after[here] - lo)[:, None]  # (r, n)
            out[here] = Kq @ S.T + ((Kq @ K.T) * seen) @ U  # (r, d)
        S = S + U.T @ K  # (d, d)
    return out


def one_blas_thread() -> AbstractContextManager:
    """Run BLAS on one thread (when ``threadpoolctl`` is installed): the products here are
    small ((64, d) by (d, d)), and on a 2-core machine OpenBLAS's threads made them about four
    times slower, not faster."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(1, user_api="blas")


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

    #: the widest state: a d x d float64 state per episode is 128 MiB at d = 4,096
    MAX_D = 4096

    def __post_init__(self) -> None:
        if not 1 <= self.d <= self.MAX_D:
            raise ValueError(f"d must be 1 to {self.MAX_D} (the state is d x d floats per episode)")

    def gate(self, marker: np.ndarray) -> np.ndarray:
        """beta per mention: 1 for WRITE, DELETE and silent ``key value``; 0 for distractor
        markers and queries (a query reads, it does not write)."""
        beta = np.zeros(marker.shape)
        beta[(marker == WRITE) | (marker == DELETE) | (marker == NO_MARKER)] = 1.0
        beta[np.isin(marker, list(DISTRACTOR_MARKER.values())) | (marker == QUERY)] = 0.0
        return beta

    def predict(self, batch: TokenBatch) -> Answers:
        s, vocab, d = batch.stream, batch.vocab, self.d
        values = _value_table(vocab.values, d)  # (V, d)
        beta = self.gate(s.marker)  # (M,)
        qs = batch.queries
        writes = beta != 0  # a zero gate adds nothing: such mentions are skipped
        q_pos = batch.query_start
        best = np.zeros(batch.n_queries, dtype=np.int64)
        score = np.zeros(batch.n_queries)
        w_first = np.searchsorted(s.row[writes], np.arange(batch.n_rows + 1))
        q_first = np.searchsorted(batch.query_row, np.arange(batch.n_rows + 1))
        w_pos, w_key, w_value, w_beta = s.pos[writes], s.key[writes], s.value[writes], beta[writes]
        with one_blas_thread():
            for r in range(batch.n_rows):  # each episode starts from an empty state
                lo, hi = w_first[r], w_first[r + 1]
                qlo, qhi = q_first[r], q_first[r + 1]
                if qhi == qlo:
                    continue
                ids, where = np.unique(np.concatenate([w_key[lo:hi], qs.key[qlo:qhi]]), return_inverse=True)
                vectors = unit_vectors(ids, d, "key")  # (keys of the row, d)
                keys, read_keys = vectors[where[:hi - lo]], vectors[where[hi - lo:]]  # (m, d), (q, d)
                # what each write stores: its value's vector, or the null vector for a delete
                value = w_value[lo:hi]
                target = np.where((value >= 0)[:, None], values[np.maximum(value, 0)], 0.0)  # (m, d)
                after = np.searchsorted(w_pos[lo:hi], q_pos[qlo:qhi])  # writes before each query
                reads = delta_rule_chunked(keys, target, w_beta[lo:hi], read_keys, after)  # (q, d)
                sims = reads @ values.T  # (q, V)
                best[qlo:qhi] = np.argmax(sims, axis=1)
                score[qlo:qhi] = sims[np.arange(qhi - qlo), best[qlo:qhi]]

        prediction = np.where(score >= self.threshold, best + vocab.value_offset, ABSENT_TOKEN)
        n = batch.n_queries
        return Answers(prediction.astype(np.int64), np.full(n, ROUTE_STATE, dtype=np.int8),
                       np.zeros(n, dtype=np.int32))
