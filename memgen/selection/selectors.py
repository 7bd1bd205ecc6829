"""The built-in selectors: lexical (``tfidf``, ``bm25``), ``recency``, and the ``oracle`` ceiling.

Each scores every passage of an episode for every query, ``(Q, P)`` float64; ranking, ties
(to the earlier passage) and the passages after a query are :func:`memgen.selection.metrics.rank`'s.
The lexical selectors build their index per episode, over ``SelectionEpisode.docs``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memgen.selection.episodes import SelectionEpisode
from memgen.selection.registry import register_selector


@register_selector("tfidf")
@dataclass(frozen=True)
class TfIdf:
    """Cosine of TF-IDF vectors (scikit-learn, l2-normalised, sublinear tf), unigrams."""

    k: int = 8

    def scores(self, ep: SelectionEpisode) -> np.ndarray:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(sublinear_tf=True, lowercase=True)
        try:
            docs = vec.fit_transform(ep.docs)  # (P, V) sparse
        except ValueError:  # no word in any passage
            return np.zeros((ep.n_queries, ep.n_passages))
        return (vec.transform(ep.questions) @ docs.T).toarray()  # (Q, P)


@register_selector("bm25")
@dataclass(frozen=True)
class BM25:
    """Okapi BM25 (bm25s, its default ``lucene`` variant, ``k1`` and ``b``), English stopwords
    left out of the text rendering's passages."""

    k: int = 8
    k1: float = 1.5
    b: float = 0.75

    def scores(self, ep: SelectionEpisode) -> np.ndarray:
        import bm25s

        stop = "en" if ep.rendering == "text" else None
        corpus = bm25s.tokenize(ep.docs, stopwords=stop, show_progress=False)
        out = np.zeros((ep.n_queries, ep.n_passages))
        if not corpus.vocab:
            return out
        index = bm25s.BM25(k1=self.k1, b=self.b)
        index.index(corpus, show_progress=False)
        queries = bm25s.tokenize(ep.questions, stopwords=stop, show_progress=False, return_ids=False)
        for i, words in enumerate(queries):
            words = [w for w in words if w in corpus.vocab]
            if words:
                out[i] = index.get_scores(words)
        return out


@register_selector("recency")
@dataclass(frozen=True)
class Recency:
    """The latest passages first, whatever they say."""

    k: int = 8

    def scores(self, ep: SelectionEpisode) -> np.ndarray:
        return np.broadcast_to(np.arange(ep.n_passages, dtype=np.float64), (ep.n_queries, ep.n_passages)).copy()


@register_selector("oracle")
@dataclass(frozen=True)
class Oracle:
    """The evidence passages (the ceiling: recall 1 at every k); the rest in reading order."""

    k: int = 8

    def scores(self, ep: SelectionEpisode) -> np.ndarray:
        out = np.zeros((ep.n_queries, ep.n_passages))
        for i, e in enumerate(ep.evidence):
            out[i, e] = 1.0
        return out
