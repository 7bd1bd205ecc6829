"""``transformer``, learned: causal softmax attention on the shared front end, the full-attention
baseline of the learned tier.

At every answer slot t the memory attends over every position s < t (strictly before: the slot
holds a placeholder, never evidence) and a learned null entry that reads "unknown"::

    q_t = W_q [key_t; context_t]    k_s = W_k [key_s; context_s]        (H heads of D dims)
    v_s = (1 - delta_s) value_s + delta_s absent                         (delta: a discard gate)
    o_t = sum_h mix_h(context_t) softmax_s(q_t . k_s / sqrt(D)) v_s

with the front end's key (one encoder for writes and reads), the value token's own embedding as
the value (tied to the answer head), and a per-query mix of the heads.  The query and key maps
start tied on the key dims, so attention is a key match from the first step; the context part
learns which positions state a value (a write, not a distractor's value).  The attention is
:func:`causal_attention` (``torch.nn.functional.scaled_dot_product_attention``, layout
``[B, T, H, D]``), computed at the read positions only: a memory answers at the answer slots.

**Position scheme: partial RoPE** (the first ``rope_dims`` of each head's D dims rotate by the
absolute position, the rest carry none; GPT-NeoX's ``rotary_dim``).  Why RoPE and why partial:

* an overwrite is a second ``WRITE key value`` of the same key, token for token, so on the
  front end's position-free features a NoPE attention layer cannot tell the newer value from
  the older one: it would average them, and fail overwrite, version and discard at every
  length, saying nothing about length.  Rotary dims give the relative distance ``t - s``, from
  which a head learns recency (the most recent write of the key wins);
* with RoPE on every dim, the key match itself would pass through angles of distances never
  seen in training, so beyond the training length even a plain write could be missed.  The
  unrotated dims keep the key match exact at any distance, so what can break past the training
  length is the learned recency alone (lowest wavelength about 6,283 tokens at base 10,000: the
  distances of a 192-token episode cover a thirtieth of it).

**State** (:class:`KVCache`, a value): the rotated keys and the values of every position so
far, so running a stream in chunks with the cache carried equals one pass over the whole.  It
grows with the stream (no eviction): memory and time are linear and quadratic in the length.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from memgen.models.frontend import Features, FrontEndConfig, check_ceilings, gather_reads


class KVCache(NamedTuple):
    keys: Tensor  # (B, N, H, D) keys of the N positions so far, rotated at their absolute positions
    values: Tensor  # (B, N, d) their values (shared by the heads)


def rope(x: Tensor, pos: Tensor, dims: int, base: float = 10000.0) -> Tensor:
    """Rotate the first ``dims`` of each head of x (B, T, H, D) by the absolute positions pos
    (B, T); the other D - dims dims pass unchanged (partial RoPE, rotate-half pairing)."""
    if dims == 0:
        return x
    half = dims // 2
    freq = base ** (-torch.arange(half, dtype=torch.float32, device=x.device) / half)  # (half,)
    ang = pos.to(torch.float32)[..., None] * freq  # (B, T, half)
    cos, sin = ang.cos()[:, :, None, :], ang.sin()[:, :, None, :]  # (B, T, 1, half)
    x1, x2, rest = x[..., :half], x[..., half:dims], x[..., dims:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos, rest], -1)


def causal_attention(q: Tensor, k: Tensor, v: Tensor, q_pos: Tensor, k_pos: Tensor) -> Tensor:
    """Softmax attention of q (B, Tq, H, D) at absolute positions q_pos (B, Tq) over k (B, Tk, H, D),
    v (B, Tk, H, Dv) at positions k_pos (Tk,): each query sees the keys strictly before it.
    Returns (B, Tq, H, Dv); a query that sees no key reads zeros."""
    mask = k_pos[None, None, :] < q_pos[:, :, None]  # (B, Tq, Tk)
    o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                       attn_mask=mask[:, None])  # (B, H, Tq, Dv)
    return o.transpose(1, 2).nan_to_num(0.0)  # (B, Tq, H, Dv)


class TransformerMemory(nn.Module):
    #: heads x head_dim per position in the KV cache
    CEILINGS = {"heads": (1, 64), "head_dim": (1, 256)}

    def __init__(self, cfg: FrontEndConfig, heads: int = 4, head_dim: int = 16, rope_dims: int = 8):
        super().__init__()
        check_ceilings("transformer", self.CEILINGS, heads=heads, head_dim=head_dim)
        if rope_dims % 2 or not 0 <= rope_dims <= head_dim:
            raise ValueError(f"rope_dims must be even and at most head_dim ({head_dim})")
        self.cfg, self.heads, self.head_dim, self.rope_dims = cfg, heads, head_dim, rope_dims
        dk, dc = cfg.d_key, cfg.d_context
        self.q = nn.Linear(dk + dc, heads * head_dim)
        self.k = nn.Linear(dk + dc, heads * head_dim)
        with torch.no_grad():  # tied on the key dims at the start: a match scores |P key|^2 / sqrt(D),
            p = 2.0 * torch.randn(heads * head_dim, dk)  # about 4 sqrt(D) = 16: sharp from the first step
            self.q.weight[:, :dk] = p
            self.k.weight[:, :dk] = p
        self.null_key = nn.Parameter(torch.zeros(heads, head_dim))  # the "unknown" entry (not rotated)
        self.discard = nn.Linear(dc, 1)
        nn.init.constant_(self.discard.bias, -2.0)
        self.mix = nn.Linear(dc, heads)

    def initial_state(self, batch: int) -> KVCache:
        dev = self.null_key.device
        return KVCache(torch.zeros(batch, 0, self.heads, self.head_dim, device=dev),
                       torch.zeros(batch, 0, self.cfg.d_model, device=dev))

    def forward(self, f: Features, state: KVCache | None, read: Tensor) -> tuple[Tensor, KVCache]:
        B, T, d = f.value.shape
        H, D = self.heads, self.head_dim
        state = state if state is not None else self.initial_state(B)
        x = torch.cat([f.key, f.context], -1)  # (B, T, dk + dc)
        pos = f.pos[None, :].expand(B, T)  # (B, T) absolute
        k = rope(self.k(x).view(B, T, H, D), pos, self.rope_dims)  # (B, T, H, D)
        delta = torch.sigmoid(self.discard(f.context))  # (B, T, 1)
        v = (1 - delta) * f.value + delta * f.absent  # (B, T, d): a discard stores "unknown"
        cache = KVCache(torch.cat([state.keys, k], 1), torch.cat([state.values, v], 1))  # (B, N, ...)
        out = torch.zeros(B, T, d, device=f.value.device, dtype=f.value.dtype)
        qpos, qmask = gather_reads(read)  # (B, Q)
        if qpos.shape[1] == 0:
            return out, cache
        rows = torch.arange(B, device=read.device)[:, None]
        xq = x[rows, qpos]  # (B, Q, dk + dc)
        qp = qpos + f.pos[0]  # (B, Q) absolute
        q = rope(self.q(xq).view(B, -1, H, D), qp, self.rope_dims)  # (B, Q, H, D)
        N = cache.keys.shape[1]
        # the null entry first, at position -1: every query sees it
        kk = torch.cat([self.null_key.expand(B, 1, H, D), cache.keys], 1)  # (B, 1 + N, H, D)
        vv = torch.cat([f.absent.expand(B, 1, d), cache.values], 1)[:, :, None, :].expand(B, 1 + N, H, d)
        k_pos = torch.arange(-1, N, device=read.device)  # (1 + N,)
        o = causal_attention(q, kk, vv, qp, k_pos)  # (B, Q, H, d)
        w = torch.softmax(self.mix(f.context[rows, qpos]), -1)  # (B, Q, H)
        oq = (w[..., None] * o).sum(2)  # (B, Q, d)
        r = rows.expand_as(qpos)
        out = out.index_put((r[qmask], qpos[qmask]), oq[qmask])
        return out, cache
