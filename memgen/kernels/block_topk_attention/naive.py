"""Block top-k attention, plain PyTorch: the reference twins of :mod:`.triton` (same signatures,
same layout).  What :mod:`memgen.baselines.topk_attention` and the learned hybrid's fallback
(:mod:`memgen.memslot_ref.model`) compute."""

from __future__ import annotations

import torch
from torch import Tensor

from memgen.kernels.slot_read.naive import masked_softmax_read

REDUCES = ("mean", "max")


def block_scores(q: Tensor, k: Tensor, block: int, reduce: str) -> Tensor:
    """Score of each query against each complete block of k: (B, Tq, H, nb), nb = Tk // block.

    ``mean``: q . (the block's mean key), NSA's compressed key; ``max``: the best q . k in the block."""
    B, Tk, H, D = k.shape
    Tq, nb = q.shape[1], Tk // block
    if reduce == "mean":
        mean = k[:, :nb * block].reshape(B, nb, block, H, D).mean(2)  # (B, nb, H, D)
        return torch.einsum("bqhd,bnhd->bqhn", q, mean)
    out = q.new_empty(B, Tq, H, nb)
    step = max(1, (1 << 22) // max(1, B * Tq * H * block))  # blocks per pass: bound the (.., step * block) scores
    for s in range(0, nb, step):
        kk = k[:, s * block:min(nb, s + step) * block]  # (B, n * block, H, D)
        sc = torch.einsum("bqhd,bphd->bqhp", q, kk)  # (B, Tq, H, n * block)
        out[..., s:s + sc.shape[-1] // block] = sc.unflatten(-1, (-1, block)).amax(-1)
    return out


def select_blocks(q: Tensor, k: Tensor, q_pos: Tensor, block: int, top_k: int,
                  reduce: str = "mean") -> tuple[Tensor, Tensor]:
    """The ``top_k`` earlier blocks of each query and head, by :func:`block_scores`.

    q (B, Tq, H, D) at absolute positions q_pos (B, Tq); k (B, Tk, H, D) at positions 0 .. Tk-1.
    A block b is *earlier* for a query at p when b < p // block (so it is complete).  Returns
    idx (B, Tq, H, top_k) long block numbers, best first, and ok (B, Tq, H, top_k) bool (False
    where fewer than top_k earlier blocks exist; idx is then 0).  Equal scores go to the more
    recent block, so the choice is deterministic (and the same in the kernel)."""
    B, Tq, H, _ = q.shape
    score = block_scores(q, k, block, reduce) + 0.0  # + 0.0: -0.0 and 0.0 are one score
    nb = score.shape[-1]
    earlier = torch.arange(nb, device=k.device)[None, None, None, :] < (q_pos // block)[:, :, None, None]
    score = score.masked_fill(~earlier, float("-inf"))
    if nb < top_k:  # pad with never-selected blocks
        score = torch.cat([score, score.new_full((B, Tq, H, top_k - nb), float("-inf"))], -1)
    # newest block first, then a stable sort: among equal scores the newer block keeps its lead
    order = torch.sort(score.flip(-1), dim=-1, descending=True, stable=True)
    n = score.shape[-1]
    idx = n - 1 - order.indices[..., :top_k]  # (B, Tq, H, top_k) block numbers
    ok = order.values[..., :top_k] > float("-inf")
    return idx.masked_fill(~ok, 0), ok


def block_positions(q_pos: Tensor, idx: Tensor, ok: Tensor, block: int) -> tuple[Tensor, Tensor]:
    """The positions a query reads: its selected blocks (idx, ok (B, Tq, H, n)), then its own block
    up to, not including, its position.  Returns pos (B, Tq, H, (n + 1) * block) and their mask."""
    B, Tq, H, _ = idx.shape
    own = (q_pos // block)[:, :, None, None].expand(B, Tq, H, 1)  # (B, Tq, H, 1)
    blocks = torch.cat([idx, own], -1)  # (B, Tq, H, n + 1)
    seen = torch.cat([ok, torch.ones_like(own, dtype=torch.bool)], -1)
    pos = (blocks[..., None] * block + torch.arange(block, device=idx.device)).flatten(-2)  # (B, Tq, H, P)
    mask = seen[..., None].expand(*seen.shape, block).flatten(-2) & (pos < q_pos[:, :, None, None])
    return pos, mask


def block_topk_attention(q: Tensor, k: Tensor, v: Tensor, q_pos: Tensor, idx: Tensor, ok: Tensor, block: int,
                         scale: float | None = None, bias: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Softmax attention of q (B, Tq, H, D) at q_pos (B, Tq) over k (B, Tk, H, D), v (B, Tk, H, Dv),
    restricted to the blocks ``idx``/``ok`` (B, Tq, H, n) of :func:`select_blocks` and the query's
    own block up to, not including, its position.  Logits are ``scale * q.k`` (default 1/sqrt(D))
    plus ``bias`` (B, Tk, H) of the key, if given.

    Returns o (B, Tq, H, Dv) and lse (B, Tq, H); a query that sees nothing reads zeros, lse -inf
    (:func:`memgen.kernels.with_null` adds a null entry every query sees)."""
    B, Tk, H, D = k.shape
    scale = D ** -0.5 if scale is None else scale
    pos, mask = block_positions(q_pos, idx, ok, block)
    pos = pos.clamp(max=max(Tk - 1, 0))
    b = torch.arange(B, device=k.device)[:, None, None, None]
    h = torch.arange(H, device=k.device)[None, None, :, None]
    kk, vv = k[b, pos, h], v[b, pos, h]  # (B, Tq, H, P, D), (B, Tq, H, P, Dv)
    s = (kk @ q[..., None]).squeeze(-1) * scale  # (B, Tq, H, P)
    if bias is not None:
        s = s + bias[b, pos, h]
    return masked_softmax_read(s, mask, vv, "bqhp,bqhpd->bqhd")
