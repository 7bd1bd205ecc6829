"""Frozen encoder states of sentences, cached on disk.

A cache file holds the states of one list of sentences and is named by the sha256 of the
encoder's fingerprint and the sentences, so a change of weights, layers, precision or text
never reads a stale entry.  Datasets are read-only and untrusted, so the cache lives apart from
them: ``--cache DIR``, else ``$MEMGEN_CACHE/bridge``, else ``~/.cache/memgen/bridge``."""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from memgen.bridge.encoder import Encoder, batches
from memgen.io.atomic import atomic_write_bytes


def cache_dir(explicit: str | Path | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    root = os.environ.get("MEMGEN_CACHE")
    return Path(root).expanduser() / "bridge" if root else Path.home() / ".cache" / "memgen" / "bridge"


@dataclass
class States:
    """States of N sentences: ``pooled`` (N, D), and their word pieces packed one after the
    other: ``tokens`` (sum L_i, D), ``ids`` (sum L_i,), sentence i at ``offsets[i]:offsets[i+1]``."""

    pooled: torch.Tensor
    tokens: torch.Tensor
    ids: torch.Tensor
    offsets: torch.Tensor

    def token_block(self, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sentences ``rows`` padded: states (R, L, D) float32, ids (R, L) (-1 pad), mask (R, L)."""
        lens = [int(self.offsets[r + 1] - self.offsets[r]) for r in rows]
        L = max(lens, default=0) or 1
        out = torch.zeros(len(rows), L, self.tokens.shape[1])
        ids = torch.full((len(rows), L), -1, dtype=torch.long)
        for j, (r, n) in enumerate(zip(rows, lens, strict=True)):
            lo = int(self.offsets[r])
            out[j, :n] = self.tokens[lo:lo + n].float()
            ids[j, :n] = self.ids[lo:lo + n]
        return out, ids, ids >= 0


def _key(encoder: Encoder, texts: list[str]) -> str:
    h = hashlib.sha256(encoder.fingerprint.encode())
    for t in texts:
        h.update(b"\0" + t.encode())
    return h.hexdigest()


def _valid(obj: object, n: int) -> bool:
    if not isinstance(obj, dict) or set(obj) != {"pooled", "tokens", "ids", "offsets"}:
        return False
    if not all(isinstance(v, torch.Tensor) for v in obj.values()):
        return False
    off = obj["offsets"]
    return (obj["pooled"].shape[0] == n and off.shape == (n + 1,) and int(off[0]) == 0
            and int(off[-1]) == obj["tokens"].shape[0] == obj["ids"].shape[0]
            and bool((off[1:] >= off[:-1]).all()))


def encode_cached(encoder: Encoder, texts: list[str], cache: str | Path | None = None, *,
                  progress: bool = False, batch_size: int = 64) -> States:
    """States of ``texts`` (computed once, then read from the cache; an unreadable entry is
    computed again and replaced).  ``cache=False`` turns the cache off."""
    path = None if cache is False else cache_dir(cache) / f"{_key(encoder, texts)}.pt"
    if path is not None and path.is_file():
        try:
            obj = torch.load(path, weights_only=True)
        except Exception:  # a truncated or foreign file: recompute below
            obj = None
        if _valid(obj, len(texts)):
            return States(**obj)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch with little padding
    pooled = torch.zeros(len(texts), encoder.dim, dtype=torch.float16)
    toks: list[torch.Tensor | None] = [None] * len(texts)
    ids: list[torch.Tensor | None] = [None] * len(texts)
    for lo in batches(len(order), batch_size, progress, "encoding sentences"):
        rows = order[lo:lo + batch_size]
        batch = [texts[i] for i in rows]
        h, tid, mask = encoder.forward(batch)  # (B, T, D), (B, T), (B, T)
        m = mask[..., None].float()
        pooled[rows] = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1).half()
        for j, i in enumerate(rows):
            keep = mask[j].clone()
            keep[0] = False
            keep[int(mask[j].sum()) - 1] = False  # [CLS] and [SEP] carry no name
            toks[i], ids[i] = h[j][keep].half(), tid[j][keep].int()
    lens = torch.tensor([0] + [t.shape[0] for t in toks])
    states = States(pooled, torch.cat(toks) if toks else torch.zeros(0, encoder.dim, dtype=torch.float16),
                    torch.cat(ids) if ids else torch.zeros(0, dtype=torch.int32), lens.cumsum(0))
    if path is not None:
        buf = io.BytesIO()
        torch.save(states.__dict__, buf)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.getvalue())
    return states
