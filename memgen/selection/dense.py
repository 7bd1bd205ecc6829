"""``dense``: cosine of sentence embeddings from all-MiniLM-L6-v2 (:mod:`memgen.bridge.encoder`,
plain PyTorch on the CPU), passages against the query's question.

Embeddings are cached by content: one ``.npy`` file per list of texts (an episode's passages, or
its questions), named by the sha256 of the encoder's fingerprint and the texts, under
``$MEMGEN_CACHE/selection`` (default ``~/.cache/memgen/selection``).  Datasets are never written
to, and a cached file is trusted only with the right shape and dtype, else it is recomputed.
The encoder reads at most its 256 word pieces of a passage (MiniLM's own limit); torch uses
``$MEMGEN_THREADS`` threads where that is set.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from memgen.io.atomic import atomic_write_bytes
from memgen.selection.episodes import SelectionEpisode
from memgen.selection.registry import register_selector


def cache_root() -> Path:
    """Where embeddings are cached: ``$MEMGEN_CACHE/selection`` or ``~/.cache/memgen/selection``."""
    base = os.environ.get("MEMGEN_CACHE")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "memgen") / "selection"


@lru_cache(maxsize=2)
def _encoder(layers: int | None):
    import torch

    from memgen.bridge.encoder import load_encoder

    if os.environ.get("MEMGEN_THREADS", "").isdigit():  # else torch's own default: every core
        torch.set_num_threads(max(1, int(os.environ["MEMGEN_THREADS"])))
    return load_encoder(layers=layers)


def embed(texts: list[str], layers: int | None = None, batch_size: int = 32) -> np.ndarray:
    """(N, dim) float32 L2-normalised embeddings of ``texts``, from the cache when there."""
    enc = _encoder(layers)
    h = hashlib.sha256(enc.fingerprint.encode())
    for t in texts:
        h.update(len(t).to_bytes(8, "little"))
        h.update(t.encode())
    path = cache_root() / f"{h.hexdigest()}.npy"
    if path.is_file():
        try:
            got = np.load(path, allow_pickle=False)
            if got.dtype == np.float32 and got.shape == (len(texts), enc.dim):
                return got
        except (OSError, ValueError):
            pass  # a damaged cache file: encode again and replace it
    out = enc.encode(texts, batch_size=batch_size).numpy().astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, out, allow_pickle=False)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError:
        pass  # an unwritable cache costs time, not results
    return out


@register_selector("dense", renderings=("text",))
@dataclass(frozen=True)
class Dense:
    """Cosine of MiniLM sentence embeddings; ``layers``: keep the encoder's first N (0: all)."""

    k: int = 8
    layers: int = 0

    def scores(self, ep: SelectionEpisode) -> np.ndarray:
        layers = self.layers or None
        docs = embed(ep.docs, layers)  # (P, C)
        qs = embed(ep.questions, layers)  # (Q, C)
        return (qs @ docs.T).astype(np.float64)  # (Q, P)
