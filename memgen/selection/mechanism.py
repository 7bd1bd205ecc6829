"""The mechanism models' own chunk choices, as selectors (chunk rendering): what ``sparse`` and
``hybrid``'s fallback keep at each query, ranked exactly as they rank them
(:func:`memgen.models.retrieval.top_chunks`), so their top ``k`` is the model's ``k`` chunks.

* ``sparse``: chunks by the number of mentions of the queried key before the query (any
  mention: events, distractors, earlier queries), ties to the earlier chunk;
* ``hybrid``: the fallback's chunks, by *unmarked* mentions of the key (silent writes), ties to
  the later chunk.  Chunks with no such mention are never chosen, so the fallback ranks nothing
  for a key that was only ever written with a marker: the slots answer those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from memgen.models.retrieval import mentions_before, top_chunks
from memgen.models.stream import NO_MARKER, TokenBatch
from memgen.selection.episodes import SelectionEpisode
from memgen.selection.registry import register_selector


def model_chunk_scores(ep: SelectionEpisode, unmarked_only: bool, recent_first: bool) -> np.ndarray:
    """(Q, P): minus each chunk's rank in the model's choice (0 is best), -inf where it ranks none."""
    batch = TokenBatch.from_table(ep.table, ep.vocab)
    s = batch.stream
    pairs = mentions_before(batch, s.marker == NO_MARKER if unmarked_only else np.ones(len(s), dtype=bool))
    chosen = top_chunks(batch, pairs, ep.n_passages, recent_first=recent_first)
    out = np.full((ep.n_queries, ep.n_passages), -np.inf)
    out[pairs.q, s.chunk[pairs.m]] = -chosen.rank.astype(np.float64)  # one row: chunks are local
    return out


@register_selector("sparse", renderings=("chunk",))
@dataclass(frozen=True)
class SparseChoice:
    """The ``sparse`` model's chunks (``k`` as the model's)."""

    model: ClassVar[str] = "sparse"  # the model whose answers the selection is held against
    k: int = 4

    def scores(self, ep: SelectionEpisode) -> np.ndarray:
        return model_chunk_scores(ep, unmarked_only=False, recent_first=False)


@register_selector("hybrid", renderings=("chunk",))
@dataclass(frozen=True)
class HybridFallback:
    """The ``hybrid`` model's fallback chunks (``k`` as the model's)."""

    model: ClassVar[str] = "hybrid"
    k: int = 4

    def scores(self, ep: SelectionEpisode) -> np.ndarray:
        return model_chunk_scores(ep, unmarked_only=True, recent_first=True)
