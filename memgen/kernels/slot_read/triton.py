"""Slot read, Triton: flash-attention style tiles over the slots, online softmax, forward and
backward kernels wrapped in one ``torch.autograd.Function``.  Same signature as :mod:`.naive`."""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor


def _pow2(n: int, least: int = 16) -> int:
    return max(least, triton.next_power_of_2(n))


def precision(dtype: torch.dtype) -> str:
    """fp32 inputs multiply in full fp32 (the parity tolerance is 1e-5); half inputs use tensor cores."""
    return "ieee" if dtype == torch.float32 else "tf32"


@triton.jit
def _scores(q, k_ptrs, s_mask, valid_ptrs, v_mask, scale, PREC: tl.constexpr):
    k = tl.load(k_ptrs, mask=s_mask, other=0.0)  # (BS, BD)
    s = tl.dot(q, tl.trans(k), input_precision=PREC) * scale  # (BT, BS)
    ok = tl.load(valid_ptrs, mask=v_mask, other=0) != 0  # (BS,)
    return tl.where(ok[None, :], s, float("-inf"))


@triton.jit
def _fwd(q_ptr, k_ptr, v_ptr, valid_ptr, o_ptr, lse_ptr, T, S, H, D, DV, scale,
         sqb, sqt, sqh, skb, sks, skh, svb, svs, svh, smb, sms, smh, sob, sot, soh, slb, slt, slh,
         BT: tl.constexpr, BS: tl.constexpr, BD: tl.constexpr, BDV: tl.constexpr, PREC: tl.constexpr):
    pid_t, pid_bh, pid_v = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    b, h = pid_bh // H, pid_bh % H
    t = pid_t * BT + tl.arange(0, BT)
    d, dv = tl.arange(0, BD), pid_v * BDV + tl.arange(0, BDV)  # this program's tile of value features
    q = tl.load(q_ptr + b * sqb + h * sqh + t[:, None] * sqt + d[None, :],
                mask=(t[:, None] < T) & (d[None, :] < D), other=0.0)  # (BT, BD)
    m_i = tl.full([BT], float("-inf"), tl.float32)
    l_i = tl.zeros([BT], tl.float32)
    acc = tl.zeros([BT, BDV], tl.float32)
    for s0 in range(0, S, BS):
        s = s0 + tl.arange(0, BS)
        sc = _scores(q, k_ptr + b * skb + h * skh + s[:, None] * sks + d[None, :],
                     (s[:, None] < S) & (d[None, :] < D), valid_ptr + b * smb + h * smh + s * sms, s < S, scale, PREC)
        m_new = tl.maximum(m_i, tl.max(sc, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # a row with nothing valid yet
        p = tl.exp(sc - m_safe[:, None])  # (BT, BS), 0 where invalid
        alpha = tl.exp(m_i - m_safe)
        v = tl.load(v_ptr + b * svb + h * svh + s[:, None] * svs + dv[None, :],
                    mask=(s[:, None] < S) & (dv[None, :] < DV), other=0.0)  # (BS, BDV)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PREC)
        l_i = l_i * alpha + tl.sum(p, 1)
        m_i = m_new
    seen = l_i > 0
    o = acc / tl.where(seen, l_i, 1.0)[:, None]
    lse = tl.where(seen, m_i + tl.log(tl.where(seen, l_i, 1.0)), float("-inf"))
    tl.store(o_ptr + b * sob + h * soh + t[:, None] * sot + dv[None, :], o.to(o_ptr.dtype.element_ty),
             mask=(t[:, None] < T) & (dv[None, :] < DV))
    if pid_v == 0:  # every tile of value features has the same lse
        tl.store(lse_ptr + b * slb + h * slh + t * slt, lse, mask=t < T)


@triton.jit
def _probs(sc, lse):
    """p = exp(s - lse), 0 where s or the whole row is invalid."""
    fin = lse > float("-inf")
    return tl.where(fin[:, None], tl.exp(sc - tl.where(fin, lse, 0.0)[:, None]), 0.0)


@triton.jit
def _dp(do_rows, t_mask, v_rows, s_mask, DV, BT: tl.constexpr, BS: tl.constexpr, BDV: tl.constexpr,
        PREC: tl.constexpr):
    """dp = do . v over every value feature, BDV of them at a time: (BT, BS)."""
    dp = tl.zeros([BT, BS], tl.float32)
    for v0 in range(0, DV, BDV):
        dv = v0 + tl.arange(0, BDV)
        do = tl.load(do_rows + dv[None, :], mask=t_mask & (dv[None, :] < DV), other=0.0)  # (BT, BDV)
        v = tl.load(v_rows + dv[None, :], mask=s_mask & (dv[None, :] < DV), other=0.0)  # (BS, BDV)
        dp += tl.dot(do, tl.trans(v), input_precision=PREC)
    return dp


@triton.jit
def _bwd_dq(q_ptr, k_ptr, v_ptr, valid_ptr, do_ptr, lse_ptr, dl_ptr, dq_ptr, T, S, H, D, DV, scale,
            sqb, sqt, sqh, skb, sks, skh, svb, svs, svh, smb, sms, smh,
            BT: tl.constexpr, BS: tl.constexpr, BD: tl.constexpr, BDV: tl.constexpr, PREC: tl.constexpr):
    """dq of one tile of queries over every slot tile; do, dq are contiguous (B, T, H, .), lse and dl
    (= delta - dlse) contiguous (B, T, H)."""
    pid_t, pid_bh = tl.program_id(0), tl.program_id(1)
    b, h = pid_bh // H, pid_bh % H
    t = pid_t * BT + tl.arange(0, BT)
    d = tl.arange(0, BD)
    tq = (t[:, None] < T) & (d[None, :] < D)
    q = tl.load(q_ptr + b * sqb + h * sqh + t[:, None] * sqt + d[None, :], mask=tq, other=0.0)
    lse = tl.load(lse_ptr + b * T * H + h + t * H, mask=t < T, other=float("-inf"))
    dl = tl.load(dl_ptr + b * T * H + h + t * H, mask=t < T, other=0.0)
    dq = tl.zeros([BT, BD], tl.float32)
    for s0 in range(0, S, BS):
        s = s0 + tl.arange(0, BS)
        sm = (s[:, None] < S) & (d[None, :] < D)
        sc = _scores(q, k_ptr + b * skb + h * skh + s[:, None] * sks + d[None, :], sm,
                     valid_ptr + b * smb + h * smh + s * sms, s < S, scale, PREC)
        p = _probs(sc, lse)
        dp = _dp(do_ptr + b * T * H * DV + h * DV + t[:, None] * H * DV, t[:, None] < T,
                 v_ptr + b * svb + h * svh + s[:, None] * svs, s[:, None] < S, DV, BT, BS, BDV, PREC)  # (BT, BS)
        ds = p * (dp - dl[:, None])
        k = tl.load(k_ptr + b * skb + h * skh + s[:, None] * sks + d[None, :], mask=sm, other=0.0)
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PREC)
    tl.store(dq_ptr + b * T * H * D + h * D + t[:, None] * H * D + d[None, :], dq * scale, mask=tq)


@triton.jit
def _bwd_dkdv(q_ptr, k_ptr, v_ptr, valid_ptr, do_ptr, lse_ptr, dl_ptr, dk_ptr, dv_ptr, T, S, H, D, DV, scale,
              sqb, sqt, sqh, skb, sks, skh, svb, svs, svh, smb, sms, smh,
              BT: tl.constexpr, BS: tl.constexpr, BD: tl.constexpr, BDV: tl.constexpr, PREC: tl.constexpr):
    """dk, dv of one tile of slots (contiguous (B, S, H, .) outputs), over every query tile; dv of
    this program's tile of value features (every tile computes the same dk, tile 0 stores it)."""
    pid_s, pid_bh, pid_v = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    b, h = pid_bh // H, pid_bh % H
    s = pid_s * BS + tl.arange(0, BS)
    d, dv = tl.arange(0, BD), pid_v * BDV + tl.arange(0, BDV)
    sm = (s[:, None] < S) & (d[None, :] < D)
    svm = (s[:, None] < S) & (dv[None, :] < DV)
    k = tl.load(k_ptr + b * skb + h * skh + s[:, None] * sks + d[None, :], mask=sm, other=0.0)  # (BS, BD)
    ok = tl.load(valid_ptr + b * smb + h * smh + s * sms, mask=s < S, other=0) != 0
    dk = tl.zeros([BS, BD], tl.float32)
    dvv = tl.zeros([BS, BDV], tl.float32)
    for t0 in range(0, T, BT):
        t = t0 + tl.arange(0, BT)
        q = tl.load(q_ptr + b * sqb + h * sqh + t[:, None] * sqt + d[None, :],
                    mask=(t[:, None] < T) & (d[None, :] < D), other=0.0)  # (BT, BD)
        do = tl.load(do_ptr + b * T * H * DV + h * DV + t[:, None] * H * DV + dv[None, :],
                     mask=(t[:, None] < T) & (dv[None, :] < DV), other=0.0)
        lse = tl.load(lse_ptr + b * T * H + h + t * H, mask=t < T, other=float("-inf"))
        dl = tl.load(dl_ptr + b * T * H + h + t * H, mask=t < T, other=0.0)
        sc = tl.dot(q, tl.trans(k), input_precision=PREC) * scale
        sc = tl.where(ok[None, :], sc, float("-inf"))
        p = _probs(sc, lse)  # (BT, BS)
        dvv += tl.dot(tl.trans(p).to(do.dtype), do, input_precision=PREC)
        dp = _dp(do_ptr + b * T * H * DV + h * DV + t[:, None] * H * DV, t[:, None] < T,
                 v_ptr + b * svb + h * svh + s[:, None] * svs, s[:, None] < S, DV, BT, BS, BDV, PREC)
        ds = p * (dp - dl[:, None])
        dk += tl.dot(tl.trans(ds).to(q.dtype), q, input_precision=PREC)
    if pid_v == 0:
        tl.store(dk_ptr + b * S * H * D + h * D + s[:, None] * H * D + d[None, :], dk * scale, mask=sm)
    tl.store(dv_ptr + b * S * H * DV + h * DV + s[:, None] * H * DV + dv[None, :], dvv, mask=svm)


def _mask_strides(valid: Tensor) -> tuple[Tensor, int, int, int]:
    """The valid mask as uint8 with (batch, slot, head) strides; a (B, S) mask has head stride 0."""
    m = valid.to(torch.uint8)
    if m.dim() == 2:
        return m, m.stride(0), m.stride(1), 0
    return m, m.stride(0), m.stride(1), m.stride(2)


#: value features per program: a wider value (e.g. a slot's whole history) is split over programs
DV_TILE = 128


def _blocks(T: int, S: int, D: int, DV: int) -> dict:
    return dict(BT=min(64, _pow2(T)), BS=min(64, _pow2(S)), BD=_pow2(D), BDV=min(DV_TILE, _pow2(DV)))


class SlotRead(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, valid: Tensor, scale: float):
        B, T, H, D = q.shape
        S, DV = k.shape[1], v.shape[-1]
        q, k, v = (x if x.stride(-1) == 1 else x.contiguous() for x in (q, k, v))
        m, smb, sms, smh = _mask_strides(valid)
        o = torch.empty(B, T, H, DV, device=q.device, dtype=q.dtype)
        lse = torch.empty(B, T, H, device=q.device, dtype=torch.float32)
        bl = _blocks(T, S, D, DV)
        grid = (triton.cdiv(T, bl["BT"]), B * H, triton.cdiv(DV, bl["BDV"]))
        _fwd[grid](q, k, v, m, o, lse, T, S, H, D, DV, scale, *q.stride()[:3], *k.stride()[:3], *v.stride()[:3],
                   smb, sms, smh, *o.stride()[:3], *lse.stride(), **bl, PREC=precision(q.dtype))
        ctx.save_for_backward(q, k, v, m, o, lse)
        ctx.scale, ctx.mask_strides = scale, (smb, sms, smh)
        return o, lse

    @staticmethod
    def backward(ctx, do: Tensor, dlse: Tensor):
        q, k, v, m, o, lse = ctx.saved_tensors
        B, T, H, D = q.shape
        S, DV = k.shape[1], v.shape[-1]
        do = do.contiguous()
        # ds = p (dp - delta + dlse): dl = delta - dlse per query
        dl = ((do.float() * o.float()).sum(-1) - (dlse.float() if dlse is not None else 0.0)).contiguous()
        lse = lse.contiguous()
        dq = torch.empty(B, T, H, D, device=q.device, dtype=torch.float32)
        dk = torch.empty(B, S, H, D, device=q.device, dtype=torch.float32)
        dv = torch.empty(B, S, H, DV, device=q.device, dtype=torch.float32)
        bl = _blocks(T, S, D, DV)
        args = (T, S, H, D, DV, ctx.scale, *q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *ctx.mask_strides)
        prec = precision(q.dtype)
        _bwd_dq[(triton.cdiv(T, bl["BT"]), B * H)](q, k, v, m, do, lse, dl, dq, *args, **bl, PREC=prec)
        _bwd_dkdv[(triton.cdiv(S, bl["BS"]), B * H, triton.cdiv(DV, bl["BDV"]))](q, k, v, m, do, lse, dl, dk, dv,
                                                                                *args, **bl, PREC=prec)
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), None, None


def slot_read(q: Tensor, k: Tensor, v: Tensor, valid: Tensor, scale: float | None = None) -> tuple[Tensor, Tensor]:
    """The Triton twin of :func:`memgen.kernels.slot_read.naive.slot_read`: same arguments, same results."""
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    return SlotRead.apply(q, k, v, valid, scale)
