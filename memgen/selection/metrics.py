"""Scoring a selector apart from any answer: per query, where its evidence passages rank.

* ``recall@k``: the share of the query's evidence passages in the top ``k`` (a version ask has
  two, its asked-for value's and the current value's, so even the oracle finds half at k = 1);
* ``rr``: the reciprocal rank of the best-ranked evidence passage (0 if unranked), averaged to MRR;
* ``trap``: what the selector put first instead of the evidence: the kind
  (:data:`~memgen.selection.episodes.PASSAGE_KINDS`) of its top passage when that is not
  evidence, ``none`` when it is, ``unranked`` when it ranked nothing.

Queries whose answer nothing decides (a key never written) have no evidence and are counted
apart (``no_evidence``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memgen.selection.episodes import PASSAGE_KINDS, SelectionEpisode

KS = (1, 2, 4, 8)
TRAPS = (*PASSAGE_KINDS, "none", "unranked")


@dataclass(frozen=True)
class Ranking:
    """Per query of one episode, the passages a selector ranks, best first."""

    order: np.ndarray  # (Q, P) int64 passage indices by rank; entries past n_ranked are padding
    n_ranked: np.ndarray  # (Q,) int64
    scores: np.ndarray  # (Q, P) float64 the scores, -inf where not ranked

    def top(self, q: int, k: int) -> np.ndarray:
        return self.order[q, :min(k, int(self.n_ranked[q]))]


def rank(scores: np.ndarray, before: np.ndarray) -> Ranking:
    """Order ``scores`` ((Q, P), higher first, ties to the earlier passage), keeping for query q
    only its first ``before[q]`` passages and finite scores."""
    Q, P = scores.shape
    s = np.where(np.arange(P)[None, :] < before[:, None], scores, -np.inf)
    s = np.where(np.isnan(s), -np.inf, s)
    order = np.argsort(-s, axis=1, kind="stable")
    return Ranking(order, np.isfinite(s).sum(axis=1), s)


@dataclass(frozen=True)
class QueryScores:
    """One episode's queries scored: recall (Q, len(KS)) and at the selector's own k, rr, trap."""

    recall: np.ndarray  # (Q, len(KS)) float64, nan without evidence
    recall_k: np.ndarray  # (Q,) at the selector's k
    rr: np.ndarray  # (Q,) float64, nan without evidence
    trap: np.ndarray  # (Q,) int8 index into TRAPS, -1 without evidence


def score_ranking(ep: SelectionEpisode, r: Ranking, k: int) -> QueryScores:
    Q = ep.n_queries
    ks = (*KS, k)
    recall = np.full((Q, len(ks)), np.nan)
    rr = np.full(Q, np.nan)
    trap = np.full(Q, -1, dtype=np.int8)
    pos = np.empty_like(r.order)
    np.put_along_axis(pos, r.order, np.arange(r.order.shape[1])[None, :].repeat(Q, 0), axis=1)
    for q, ev in enumerate(ep.evidence):
        if ev.size == 0:
            continue
        at = pos[q, ev]
        at = np.where(at < r.n_ranked[q], at, np.iinfo(np.int64).max)
        recall[q] = [(at < kk).sum() / ev.size for kk in ks]
        best = at.min()
        rr[q] = 1.0 / (best + 1) if best < r.n_ranked[q] else 0.0
        if r.n_ranked[q] == 0:
            trap[q] = TRAPS.index("unranked")
        elif best == 0:
            trap[q] = TRAPS.index("none")
        else:
            trap[q] = ep.kinds[q, r.order[q, 0]]
    return QueryScores(recall[:, :len(KS)], recall[:, -1], rr, trap)
