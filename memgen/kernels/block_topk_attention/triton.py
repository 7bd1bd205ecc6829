"""Block top-k attention, Triton: a selection kernel (block scores and a running top-k in one
pass over the earlier blocks) and an attention kernel (one program per query and head, online
softmax over its selected blocks and its own block), forward and backward, the attention wrapped
in one ``torch.autograd.Function``.  Same signatures as :mod:`.naive`."""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from memgen.format.errors import UsageError
from memgen.kernels.slot_read.triton import _pow2

# Selection packs (score, block) into one int64 so that "best" is a plain max with no ties: the
# score's bits, mapped to an int32 of the same order, above the block number (so among equal
# scores the newer block wins, as in the reference).  NONE is below every packed key.
NONE = tl.constexpr(-9200000000000000000)
ABOVE = tl.constexpr(9200000000000000000)


@triton.jit
def _select(q_ptr, k_ptr, qpos_ptr, idx_ptr, ok_ptr, Tq, nb, H, D, block,
            sqb, sqt, sqh, skb, skn, skh, sob, sot, soh,
            TOP_K: tl.constexpr, KP: tl.constexpr, BN: tl.constexpr, BLOCK: tl.constexpr, BD: tl.constexpr,
            MAX: tl.constexpr):
    """One query and head: score every earlier block (k holds block means when not MAX, else the
    raw keys, BLOCK per block) and keep the TOP_K best packed keys."""
    pid_t, pid_bh = tl.program_id(0), tl.program_id(1)
    b, h = pid_bh // H, pid_bh % H
    d = tl.arange(0, BD)
    q = tl.load(q_ptr + b * sqb + pid_t * sqt + h * sqh + d, mask=d < D, other=0.0).to(tl.float32)  # (BD,)
    own = tl.load(qpos_ptr + b * Tq + pid_t) // block
    col = tl.arange(0, KP)
    best = tl.full([KP], NONE, tl.int64)
    for n0 in range(0, tl.minimum(own, nb), BN):
        n = n0 + tl.arange(0, BN)
        if MAX:
            p = n0 * BLOCK + tl.arange(0, BN * BLOCK)  # (BN * BLOCK,) positions of BN blocks
            kk = tl.load(k_ptr + b * skb + h * skh + p[:, None] * skn + d[None, :],
                         mask=(p[:, None] < nb * BLOCK) & (d[None, :] < D), other=0.0).to(tl.float32)
            s = tl.max(tl.reshape(tl.sum(kk * q[None, :], 1), [BN, BLOCK]), 1)  # (BN,)
        else:
            kk = tl.load(k_ptr + b * skb + h * skh + n[:, None] * skn + d[None, :],
                         mask=(n[:, None] < nb) & (d[None, :] < D), other=0.0).to(tl.float32)
            s = tl.sum(kk * q[None, :], 1)  # (BN,)
        s = s + 0.0  # -0.0 -> 0.0
        bits = s.to(tl.int32, bitcast=True)
        ordered = tl.where(bits >= 0, bits, bits ^ 0x7FFFFFFF)
        key = tl.where(n < own, ordered.to(tl.int64) * 4294967296 + n.to(tl.int64), NONE)  # (BN,)
        # merge: the TOP_K best of (best, key), each round the best below the previous round's
        merged = tl.full([KP], NONE, tl.int64)
        prev = tl.full([1], ABOVE, tl.int64)
        for r in tl.static_range(TOP_K):
            a = tl.max(tl.where(key[None, :] < prev[:, None], key[None, :], NONE), 1)  # (1,)
            c = tl.max(tl.where(best[None, :] < prev[:, None], best[None, :], NONE), 1)
            prev = tl.maximum(a, c)
            merged = tl.where(col == r, prev, merged)  # prev (1,) broadcasts
        best = merged
    found = best != NONE
    out = b * sob + pid_t * sot + h * soh + col
    tl.store(idx_ptr + out, tl.where(found, best & 0xFFFFFFFF, 0), mask=col < TOP_K)
    tl.store(ok_ptr + out, found.to(tl.int8), mask=col < TOP_K)


def select_blocks(q: Tensor, k: Tensor, q_pos: Tensor, block: int, top_k: int,
                  reduce: str = "mean") -> tuple[Tensor, Tensor]:
    """The Triton twin of :func:`memgen.kernels.block_topk_attention.naive.select_blocks`."""
    B, Tk, H, D = k.shape
    Tq, nb = q.shape[1], Tk // block
    if reduce == "max" and block != _pow2(block, 1):
        raise UsageError(f"the max-score selection kernel needs a power-of-two block, not {block}")
    if reduce == "mean":
        keys = k[:, :nb * block].reshape(B, nb, block, H, D).mean(2)  # (B, nb, H, D) compressed keys
        BLOCK, BN = 1, min(64, _pow2(max(nb, 1), 16))
    else:
        keys, BLOCK, BN = k, _pow2(block, 1), max(1, 1024 // _pow2(block, 1))
    keys = keys if keys.stride(-1) == 1 else keys.contiguous()
    qc = q if q.stride(-1) == 1 else q.contiguous()
    idx = torch.empty(B, Tq, H, top_k, device=q.device, dtype=torch.long)
    ok = torch.empty(B, Tq, H, top_k, device=q.device, dtype=torch.int8)
    _select[(Tq, B * H)](qc, keys, q_pos.contiguous(), idx, ok, Tq, nb, H, D, block,
                         *qc.stride()[:3], *keys.stride()[:3], *idx.stride()[:3],
                         TOP_K=top_k, KP=_pow2(top_k, 2), BN=BN, BLOCK=BLOCK, BD=_pow2(D), MAX=reduce == "max")
    return idx, ok.bool()


@triton.jit
def _attend_fwd(q_ptr, k_ptr, v_ptr, bias_ptr, qpos_ptr, idx_ptr, ok_ptr, o_ptr, lse_ptr,
                Tq, Tk, H, D, DV, NSEL, scale,
                sqb, sqt, sqh, skb, skn, skh, svb, svn, svh, sbb, sbn, sbh, sib, sit, sih,
                BLOCK: tl.constexpr, BD: tl.constexpr, BDV: tl.constexpr, HAS_BIAS: tl.constexpr):
    """One query and head: online softmax over its NSEL selected blocks, then its own block."""
    pid_t, pid_bh = tl.program_id(0), tl.program_id(1)
    b, h = pid_bh // H, pid_bh % H
    d, dv, j = tl.arange(0, BD), tl.arange(0, BDV), tl.arange(0, BLOCK)
    q = tl.load(q_ptr + b * sqb + pid_t * sqt + h * sqh + d, mask=d < D, other=0.0).to(tl.float32)  # (BD,)
    qp = tl.load(qpos_ptr + b * Tq + pid_t)
    m_i = tl.full([1], float("-inf"), tl.float32)
    l_i = tl.zeros([1], tl.float32)
    acc = tl.zeros([BDV], tl.float32)
    for n in range(0, NSEL + 1):
        sel = b * sib + pid_t * sit + h * sih + n
        blk = tl.where(n < NSEL, tl.load(idx_ptr + sel, mask=n < NSEL, other=0), qp // BLOCK)
        use = tl.where(n < NSEL, tl.load(ok_ptr + sel, mask=n < NSEL, other=0) != 0, True)
        p = blk * BLOCK + j  # (BLOCK,) positions
        live = use & (p < qp) & (p < Tk)
        kk = tl.load(k_ptr + b * skb + h * skh + p[:, None] * skn + d[None, :],
                     mask=live[:, None] & (d[None, :] < D), other=0.0).to(tl.float32)  # (BLOCK, BD)
        s = tl.sum(kk * q[None, :], 1) * scale  # (BLOCK,)
        if HAS_BIAS:
            s += tl.load(bias_ptr + b * sbb + h * sbh + p * sbn, mask=live, other=0.0).to(tl.float32)
        s = tl.where(live, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 0))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        e = tl.exp(s - m_safe)  # (BLOCK,)
        alpha = tl.exp(m_i - m_safe)
        vv = tl.load(v_ptr + b * svb + h * svh + p[:, None] * svn + dv[None, :],
                     mask=live[:, None] & (dv[None, :] < DV), other=0.0).to(tl.float32)  # (BLOCK, BDV)
        acc = acc * alpha + tl.sum(e[:, None] * vv, 0)
        l_i = l_i * alpha + tl.sum(e, 0)
        m_i = m_new
    seen = l_i > 0
    o = acc / tl.where(seen, l_i, 1.0)
    lse = tl.where(seen, m_i + tl.log(tl.where(seen, l_i, 1.0)), float("-inf"))
    row = (b * Tq + pid_t) * H + h
    tl.store(o_ptr + row * DV + dv, o.to(o_ptr.dtype.element_ty), mask=dv < DV)
    tl.store(lse_ptr + row + tl.arange(0, 1), lse)


@triton.jit
def _attend_bwd(q_ptr, k_ptr, v_ptr, bias_ptr, qpos_ptr, idx_ptr, ok_ptr, do_ptr, lse_ptr, dl_ptr,
                dq_ptr, dk_ptr, dv_ptr, db_ptr, Tq, Tk, H, D, DV, NSEL, scale,
                sqb, sqt, sqh, skb, skn, skh, svb, svn, svh, sbb, sbn, sbh, sib, sit, sih,
                BLOCK: tl.constexpr, BD: tl.constexpr, BDV: tl.constexpr, HAS_BIAS: tl.constexpr):
    """One query and head: dq in place, dk / dv / dbias of the positions it read by atomic adds
    (several queries read one block).  dk, dv, db are contiguous fp32 (B, Tk, H, .)."""
    pid_t, pid_bh = tl.program_id(0), tl.program_id(1)
    b, h = pid_bh // H, pid_bh % H
    d, dv, j = tl.arange(0, BD), tl.arange(0, BDV), tl.arange(0, BLOCK)
    q = tl.load(q_ptr + b * sqb + pid_t * sqt + h * sqh + d, mask=d < D, other=0.0).to(tl.float32)
    qp = tl.load(qpos_ptr + b * Tq + pid_t)
    row = (b * Tq + pid_t) * H + h
    do = tl.load(do_ptr + row * DV + dv, mask=dv < DV, other=0.0).to(tl.float32)  # (BDV,)
    lse = tl.load(lse_ptr + row)
    dl = tl.load(dl_ptr + row)  # delta - dlse
    fin = tl.where(lse > float("-inf"), 1, 0)  # the query read something
    dq = tl.zeros([BD], tl.float32)
    for n in range(0, NSEL + 1):
        sel = b * sib + pid_t * sit + h * sih + n
        blk = tl.where(n < NSEL, tl.load(idx_ptr + sel, mask=n < NSEL, other=0), qp // BLOCK)
        use = tl.where(n < NSEL, tl.load(ok_ptr + sel, mask=n < NSEL, other=0) != 0, True)
        p = blk * BLOCK + j
        live = use & (p < qp) & (p < Tk) & (fin != 0)
        kk = tl.load(k_ptr + b * skb + h * skh + p[:, None] * skn + d[None, :],
                     mask=live[:, None] & (d[None, :] < D), other=0.0).to(tl.float32)
        s = tl.sum(kk * q[None, :], 1) * scale
        if HAS_BIAS:
            s += tl.load(bias_ptr + b * sbb + h * sbh + p * sbn, mask=live, other=0.0).to(tl.float32)
        pr = tl.where(live, tl.exp(s - tl.where(fin != 0, lse, 0.0)), 0.0)  # (BLOCK,)
        vv = tl.load(v_ptr + b * svb + h * svh + p[:, None] * svn + dv[None, :],
                     mask=live[:, None] & (dv[None, :] < DV), other=0.0).to(tl.float32)
        ds = pr * (tl.sum(vv * do[None, :], 1) - dl)  # (BLOCK,)
        dq += tl.sum(ds[:, None] * kk, 0)
        out = (b * Tk + p) * H + h  # (BLOCK,) rows of the contiguous (B, Tk, H) outputs
        tl.atomic_add(dk_ptr + out[:, None] * D + d[None, :], ds[:, None] * q[None, :] * scale,
                      mask=live[:, None] & (d[None, :] < D))
        tl.atomic_add(dv_ptr + out[:, None] * DV + dv[None, :], pr[:, None] * do[None, :],
                      mask=live[:, None] & (dv[None, :] < DV))
        if HAS_BIAS:
            tl.atomic_add(db_ptr + out, ds, mask=live)
    tl.store(dq_ptr + row * D + d, dq * scale, mask=d < D)


def _strides(x: Tensor | None) -> tuple[int, int, int]:
    return (0, 0, 0) if x is None else tuple(x.stride()[:3])


class BlockTopkAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, bias, q_pos, idx, ok, block: int, scale: float):
        B, Tq, H, D = q.shape
        Tk, DV = k.shape[1], v.shape[-1]
        q, k, v = (x if x.stride(-1) == 1 else x.contiguous() for x in (q, k, v))
        q_pos, idx, ok = q_pos.contiguous(), idx.contiguous(), ok.to(torch.int8).contiguous()
        o = torch.empty(B, Tq, H, DV, device=q.device, dtype=q.dtype)
        lse = torch.empty(B, Tq, H, device=q.device, dtype=torch.float32)
        meta = dict(BLOCK=block, BD=_pow2(D, 1), BDV=_pow2(DV, 1), HAS_BIAS=bias is not None)
        args = (Tq, Tk, H, D, DV, idx.shape[-1], scale, *q.stride()[:3], *k.stride()[:3], *v.stride()[:3],
                *_strides(bias), *idx.stride()[:3])
        _attend_fwd[(Tq, B * H)](q, k, v, bias if bias is not None else q, q_pos, idx, ok, o, lse, *args, **meta)
        ctx.save_for_backward(q, k, v, bias, q_pos, idx, ok, o, lse)
        ctx.args, ctx.meta = args, meta
        return o, lse

    @staticmethod
    def backward(ctx, do, dlse):
        q, k, v, bias, q_pos, idx, ok, o, lse = ctx.saved_tensors
        B, Tq, H, D = q.shape
        Tk, DV = k.shape[1], v.shape[-1]
        do = do.contiguous()
        dl = ((do.float() * o.float()).sum(-1) - (dlse.float() if dlse is not None else 0.0)).contiguous()
        dq = torch.empty(B, Tq, H, D, device=q.device, dtype=torch.float32)
        dk = torch.zeros(B, Tk, H, D, device=q.device, dtype=torch.float32)
        dv = torch.zeros(B, Tk, H, DV, device=q.device, dtype=torch.float32)
        db = torch.zeros(B, Tk, H, device=q.device, dtype=torch.float32) if bias is not None else dk
        _attend_bwd[(Tq, B * H)](q, k, v, bias if bias is not None else q, q_pos, idx, ok, do, lse, dl,
                                 dq, dk, dv, db, *ctx.args, **ctx.meta)
        return (dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), db.to(bias.dtype) if bias is not None else None,
                None, None, None, None, None)


def block_topk_attention(q: Tensor, k: Tensor, v: Tensor, q_pos: Tensor, idx: Tensor, ok: Tensor, block: int,
                         scale: float | None = None, bias: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The Triton twin of :func:`memgen.kernels.block_topk_attention.naive.block_topk_attention`."""
    if block != _pow2(block, 1):
        raise UsageError(f"the attention kernel needs a power-of-two block, not {block}")
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    return BlockTopkAttention.apply(q, k, v, bias, q_pos, idx, ok, block, scale)
