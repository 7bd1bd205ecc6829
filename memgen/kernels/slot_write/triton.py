"""Slot write, Triton: one program per row of the batch runs its commands in order (a scan over
N, the table in global memory), and a backward kernel runs them in reverse for the gradients of
the values, the written rows and the write gates.  Same signature as :mod:`.naive`."""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from memgen.kernels.slot_read.triton import _pow2
from memgen.kernels.slot_write.naive import SlotTable


@triton.jit
def _fwd(values_ptr, count_ptr, valid_ptr, prot_ptr, slot_ptr, x_ptr, w_ptr, dis_ptr, entry_ptr, prior_ptr,
         N, S, E, DV, BDV: tl.constexpr):
    """values (B, S, E, DV), count / valid / prot (B, S), commands (B, N) contiguous; records the
    entry each command moved (-1: none) and that entry before the move, for the backward."""
    b = tl.program_id(0)
    dv = tl.arange(0, BDV)
    for n in range(0, N):
        c = b * N + n
        s = tl.load(slot_ptr + c)
        sc = tl.maximum(s, 0)
        row = b * S + sc
        live = (s >= 0) & (tl.load(prot_ptr + row) == 0)
        e = tl.load(count_ptr + row)
        w = tl.load(w_ptr + c)
        valid = tl.load(valid_ptr + row) != 0
        valid = valid & ~(live & (tl.load(dis_ptr + c) > 0.5))
        room = live & (e < E)
        lim = tl.where(room, DV, 0)  # the row's columns to move: all, or none
        at = (row * E + tl.minimum(e, E - 1)) * DV + dv
        old = tl.load(values_ptr + at, mask=dv < lim, other=0.0)
        x = tl.load(x_ptr + c * DV + dv, mask=dv < lim, other=0.0)
        tl.store(values_ptr + at, old + w * (x - old), mask=dv < lim)
        tl.store(prior_ptr + c * DV + dv, old, mask=dv < DV)
        tl.store(entry_ptr + c, tl.where(room, e, -1))
        commit = live & (w > 0.5)
        tl.store(count_ptr + row, e + commit.to(e.dtype))
        tl.store(valid_ptr + row, (valid | commit).to(tl.int8))
        tl.debug_barrier()  # the next command may read this slot


@triton.jit
def _bwd(dvalues_ptr, slot_ptr, x_ptr, w_ptr, entry_ptr, prior_ptr, dx_ptr, dw_ptr, N, S, E, DV, BDV: tl.constexpr):
    """In reverse: the moved entry's gradient g gives dx = w g, dw = g . (x - prior), and leaves
    (1 - w) g for the entry before the move (dvalues is updated in place)."""
    b = tl.program_id(0)
    dv = tl.arange(0, BDV)
    for i in range(0, N):
        c = b * N + (N - 1 - i)
        e = tl.load(entry_ptr + c)
        s = tl.maximum(tl.load(slot_ptr + c), 0)
        at = ((b * S + s) * E + tl.maximum(e, 0)) * DV + dv
        m = dv < tl.where(e >= 0, DV, 0)  # the command moved an entry
        g = tl.load(dvalues_ptr + at, mask=m, other=0.0)
        w = tl.load(w_ptr + c)
        x = tl.load(x_ptr + c * DV + dv, mask=m, other=0.0)
        old = tl.load(prior_ptr + c * DV + dv, mask=m, other=0.0)
        tl.store(dx_ptr + c * DV + dv, w * g, mask=dv < DV)
        tl.store(dw_ptr + c, tl.sum(g * (x - old), 0))
        tl.store(dvalues_ptr + at, (1 - w) * g, mask=m)
        tl.debug_barrier()


class SlotWrite(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values, count, valid, protected, slot, x, write, discard):
        B, S, E, DV = values.shape
        N = slot.shape[1]
        ctx.shape, ctx.dtypes = (B, S, E, DV), (values.dtype, x.dtype, write.dtype)
        out = values.detach().float().contiguous().clone()
        cnt = count.contiguous().clone()
        vld = valid.to(torch.int8).contiguous()
        slot, x, w = slot.contiguous(), x.detach().float().contiguous(), write.detach().float().contiguous()
        entry = torch.empty(B, N, device=values.device, dtype=count.dtype)
        prior = torch.empty(B, N, DV, device=values.device, dtype=torch.float32)
        _fwd[(B,)](out, cnt, vld, protected.to(torch.int8).contiguous(), slot, x, w,
                   discard.detach().float().contiguous(), entry, prior, N, S, E, DV, BDV=_pow2(DV, 1))
        ctx.save_for_backward(slot, x, w, entry, prior)
        ctx.mark_non_differentiable(cnt)
        return out.to(values.dtype), cnt, vld.bool()

    @staticmethod
    def backward(ctx, dvalues, _dcount, _dvalid):
        slot, x, w, entry, prior = ctx.saved_tensors
        B, S, E, DV = ctx.shape
        N = slot.shape[1]
        g = dvalues.float().contiguous().clone()
        dx = torch.empty(B, N, DV, device=g.device, dtype=torch.float32)
        dw = torch.empty(B, N, device=g.device, dtype=torch.float32)
        _bwd[(B,)](g, slot, x, w, entry, prior, dx, dw, N, S, E, DV, BDV=_pow2(DV, 1))
        vt, xt, wt = ctx.dtypes
        return g.to(vt), None, None, None, None, dx.to(xt), dw.to(wt), None


def slot_write(values: Tensor, count: Tensor, valid: Tensor, protected: Tensor, slot: Tensor, x: Tensor,
               write: Tensor, discard: Tensor) -> SlotTable:
    """The Triton twin of :func:`memgen.kernels.slot_write.naive.slot_write`: same arguments, same results."""
    return SlotTable(*SlotWrite.apply(values, count, valid, protected, slot, x, write, discard))
