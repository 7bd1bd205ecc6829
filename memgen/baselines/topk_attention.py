"""``topk_attention``, learned: block-sparse top-k attention (NSA-style) on the shared front end,
the learned counterpart of the ``sparse`` mechanism.

The positions are cut into blocks of ``block`` (64) tokens.  A query at answer slot t reads

* its causal **local block**: the positions of t's own block strictly before t, and
* the **top-k earlier blocks** (``top_k``, default 1, the budget of memslot_ref's fallback),
  chosen per head by the score of the query against each block's *mean key* (NSA's compressed
  keys, here a plain mean), ties going to the more recent block,

plus a learned null entry that reads "unknown", by softmax attention over those positions.  The
queries, keys and values are the transformer baseline's (:mod:`memgen.baselines.transformer`):
``q = W_q [key; context]``, ``k = W_k [key; context]``, ``v`` the value token's embedding (a
discard gate mixes in "unknown"), H heads, a per-query mix of the heads.  There is no position
scheme (NoPE): inside the blocks read, the newest write of a key and an older one score alike, so
this memory has no recency (overwrite, version and discard are where it is expected to fail),
and nothing in it depends on the length.  Selection is discrete (no gradient, as in NSA): the
keys learn through the attention, and a block whose mean key matches the query is a block
holding a write of it only when the other 63 keys are small, which the context part of W_k
can learn.

Selection (:func:`select_blocks`) and attention (:func:`block_attention`) are separate steps,
each one dispatch of :mod:`memgen.kernels` (the Triton kernel on a GPU, its plain PyTorch twin
elsewhere; layout ``[B, T, H, D]``).

**State** (:class:`BlockCache`, a value): the keys and values of every position so far (any
earlier block may be selected); chunked with the cache carried equals one pass.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from memgen import kernels
from memgen.models.frontend import Features, FrontEndConfig, check_ceilings, gather_reads


class BlockCache(NamedTuple):
    keys: Tensor  # (B, N, H, D) keys of the N positions so far
    values: Tensor  # (B, N, d) their values (shared by the heads)


def select_blocks(q: Tensor, k: Tensor, q_pos: Tensor, block: int, top_k: int) -> tuple[Tensor, Tensor]:
    """The ``top_k`` earlier blocks of each query and head by block-mean key score:
    :func:`memgen.kernels.select_blocks` (``reduce="mean"``; its docstring has the shapes).  Equal
    scores go to the more recent block, so the choice is deterministic."""
    return kernels.select_blocks(q, k, q_pos, block, top_k, "mean")


def block_attention(q: Tensor, k: Tensor, v: Tensor, q_pos: Tensor, idx: Tensor, ok: Tensor, block: int,
                    null_key: Tensor | None = None, null_value: Tensor | None = None) -> Tensor:
    """Softmax attention of q (B, Tq, H, D) at q_pos (B, Tq) over k (B, Tk, H, D), v (B, Tk, H, Dv)
    restricted to the blocks ``idx``/``ok`` (B, Tq, H, n) of :func:`select_blocks` and the query's
    own block up to (not including) its position (:func:`memgen.kernels.block_topk_attention`); with
    ``null_key`` (H, D) and ``null_value`` (Dv,), an entry every query sees.  Scores are scaled by
    1/sqrt(D).  Returns (B, Tq, H, Dv); a query that sees nothing reads zeros."""
    o, lse = kernels.block_topk_attention(q, k, v, q_pos, idx, ok, block)  # (B, Tq, H, Dv), (B, Tq, H)
    if null_key is None:
        return o
    null = (q * null_key).sum(-1) / q.shape[-1] ** 0.5  # (B, Tq, H)
    return kernels.with_null(o, lse, null, null_value)


class TopkAttentionMemory(nn.Module):
    #: heads x head_dim per position in the cache; top_k + 1 blocks read per query and head
    CEILINGS = {"heads": (1, 64), "head_dim": (1, 256), "block": (1, 4096), "top_k": (0, 64)}

    def __init__(self, cfg: FrontEndConfig, heads: int = 4, head_dim: int = 16, block: int = 64, top_k: int = 1):
        super().__init__()
        check_ceilings("topk_attention", self.CEILINGS, heads=heads, head_dim=head_dim, block=block, top_k=top_k)
        self.cfg, self.heads, self.head_dim, self.block, self.top_k = cfg, heads, head_dim, block, top_k
        dk, dc = cfg.d_key, cfg.d_context
        self.q = nn.Linear(dk + dc, heads * head_dim)
        self.k = nn.Linear(dk + dc, heads * head_dim)
        with torch.no_grad():  # tied on the key dims at the start: a match scores |P key|^2 / sqrt(D),
            p = 2.0 * torch.randn(heads * head_dim, dk)  # about 4 sqrt(D) = 16: sharp from the first step
            self.q.weight[:, :dk] = p
            self.k.weight[:, :dk] = p
        self.null_key = nn.Parameter(torch.zeros(heads, head_dim))
        self.discard = nn.Linear(dc, 1)
        nn.init.constant_(self.discard.bias, -2.0)
        self.mix = nn.Linear(dc, heads)

    def initial_state(self, batch: int) -> BlockCache:
        dev = self.null_key.device
        return BlockCache(torch.zeros(batch, 0, self.heads, self.head_dim, device=dev),
                          torch.zeros(batch, 0, self.cfg.d_model, device=dev))

    def forward(self, f: Features, state: BlockCache | None, read: Tensor) -> tuple[Tensor, BlockCache]:
        B, T, d = f.value.shape
        H, D = self.heads, self.head_dim
        state = state if state is not None else self.initial_state(B)
        x = torch.cat([f.key, f.context], -1)  # (B, T, dk + dc)
        k = self.k(x).view(B, T, H, D)  # (B, T, H, D)
        delta = torch.sigmoid(self.discard(f.context))  # (B, T, 1)
        v = (1 - delta) * f.value + delta * f.absent  # (B, T, d): a discard stores "unknown"
        cache = BlockCache(torch.cat([state.keys, k], 1), torch.cat([state.values, v], 1))  # (B, N, ...)
        out = torch.zeros(B, T, d, device=f.value.device, dtype=f.value.dtype)
        qpos, qmask = gather_reads(read)  # (B, Q)
        if qpos.shape[1] == 0:
            return out, cache
        rows = torch.arange(B, device=read.device)[:, None]
        xq = x[rows, qpos]  # (B, Q, dk + dc)
        qp = qpos + f.pos[0]  # (B, Q) absolute
        q = self.q(xq).view(B, -1, H, D)  # (B, Q, H, D)
        N = cache.keys.shape[1]
        with torch.no_grad():  # selection is discrete (NSA): gradients flow through the attention
            idx, ok = select_blocks(q, cache.keys, qp, self.block, self.top_k)  # (B, Q, H, top_k)
        vv = cache.values[:, :, None, :].expand(B, N, H, d)  # (B, N, H, d)
        o = block_attention(q, cache.keys, vv, qp, idx, ok, self.block, self.null_key, f.absent)  # (B, Q, H, d)
        w = torch.softmax(self.mix(f.context[rows, qpos]), -1)  # (B, Q, H)
        oq = (w[..., None] * o).sum(2)  # (B, Q, d)
        r = rows.expand_as(qpos)
        out = out.index_put((r[qmask], qpos[qmask]), oq[qmask])
        return out, cache
