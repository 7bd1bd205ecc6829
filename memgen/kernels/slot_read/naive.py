"""Slot read, plain PyTorch: the reference twin of :mod:`.triton` (same signature, same layout)."""

from __future__ import annotations

import torch
from torch import Tensor


def masked_softmax_read(s: Tensor, mask: Tensor, v: Tensor, eq: str) -> tuple[Tensor, Tensor]:
    """Softmax of the scores ``s`` (..., S) over the entries where ``mask``, applied to ``v`` by the
    einsum ``eq``; a row with no entry reads zeros and has lse -inf.  Returns (o, lse (...))."""
    s = s.masked_fill(~mask, float("-inf"))
    m = s.amax(-1, keepdim=True).detach()
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # all-masked rows: exp(-inf) = 0
    e = torch.exp(s - m)
    z = e.sum(-1, keepdim=True)
    seen = z > 0
    p = e / torch.where(seen, z, torch.ones_like(z))
    lse = torch.where(seen, m + torch.log(torch.where(seen, z, torch.ones_like(z))), torch.full_like(z, float("-inf")))
    return torch.einsum(eq, p, v), lse.squeeze(-1)


def slot_read(q: Tensor, k: Tensor, v: Tensor, valid: Tensor, scale: float | None = None) -> tuple[Tensor, Tensor]:
    """Queries q (B, T, H, D) read S slots: keys k (B, S, H, D), values v (B, S, H, Dv), softmax of
    ``scale * q.k`` (default 1/sqrt(D)) over the slots where ``valid`` (B, S), or per head (B, S, H).

    Keys and values shared by the heads (a stride-0 view over H, both) are read as such.

    Returns o (B, T, H, Dv) and lse (B, T, H), the log-sum-exp of the valid scores.  A query whose
    row has no valid slot reads zeros and has lse -inf (so a read can be merged with another softmax
    read exactly, and an empty table reads nothing)."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    mask = valid[:, None, None, :] if valid.dim() == 2 else valid.permute(0, 2, 1)[:, None]  # (B, 1, H|1, S)
    if k.shape[2] > 1 and k.stride(2) == 0 and v.stride(2) == 0:
        # keys and values shared by the heads (stride-0 views, e.g. one read per head with its own
        # mask): read them once, never expanded into H copies
        s = torch.einsum("bthd,bsd->bths", q, k[:, :, 0]) * scale  # (B, T, H, S)
        return masked_softmax_read(s, mask, v[:, :, 0], "bths,bsd->bthd")
    s = torch.einsum("bthd,bshd->bths", q, k) * scale  # (B, T, H, S)
    return masked_softmax_read(s, mask, v, "bths,bshd->bthd")
