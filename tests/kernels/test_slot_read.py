"""slot_read: the Triton kernel equals its reference, forward and backward, and both read zeros
from a row with no valid slot."""

from __future__ import annotations

import pytest
import torch
from kernel_helpers import DEVICE, assert_close, grads

from memgen import kernels
from memgen.kernels.slot_read import naive


def _inputs(B, T, S, H, D, DV, per_head, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(*s, generator=g).to(DEVICE, dtype).requires_grad_()
               for s in ((B, T, H, D), (B, S, H, D), (B, S, H, DV)))
    valid = torch.rand(*((B, S, H) if per_head else (B, S)), generator=g) > 0.4
    return q, k, v, valid.to(DEVICE)


def _both(q, k, v, valid, monkeypatch, scale=None):
    res = []
    for m in ("0", "1"):
        monkeypatch.setenv("MEMGEN_TRITON", m)
        o, lse = kernels.slot_read(q, k, v, valid, scale)
        res.append((o, lse, *grads((o, lse), (q, k, v))))
    return res


@pytest.mark.parametrize("per_head", [False, True])
@pytest.mark.parametrize("shape", [(2, 5, 7, 2, 8, 12), (1, 70, 90, 1, 20, 16)])  # tails of every tile
def test_kernel_matches_reference_forward_and_backward(shape, per_head, monkeypatch):
    q, k, v, valid = _inputs(*shape, per_head)
    ref, ker = _both(q, k, v, valid, monkeypatch, scale=0.3)
    for name, r, o in zip(("o", "lse", "dq", "dk", "dv"), ref, ker, strict=True):
        assert_close(name, r, o)


def test_reference_is_a_softmax_over_the_valid_slots():
    q, k, v, valid = _inputs(2, 4, 6, 3, 5, 7, per_head=True, seed=3)
    valid[:, 0] = True  # every row sees a slot
    o, lse = naive.slot_read(q, k, v, valid)
    s = torch.einsum("bthd,bshd->bths", q, k) / 5 ** 0.5
    s = s.masked_fill(~valid.permute(0, 2, 1)[:, None], float("-inf"))
    assert torch.allclose(o, torch.einsum("bths,bshd->bthd", torch.softmax(s, -1), v), atol=1e-6)
    assert torch.allclose(lse, torch.logsumexp(s, -1), atol=1e-6)


def test_a_row_with_no_valid_slot_reads_zeros_with_lse_minus_inf_in_both(monkeypatch):
    q, k, v, valid = _inputs(2, 3, 5, 2, 4, 4, per_head=True, seed=5)
    valid[0, :, 1] = False  # row 0, head 1: an empty table
    valid[1] = True
    ref, ker = _both(q, k, v, valid, monkeypatch)
    for o, lse, dq, dk, dv in (ref, ker):
        assert torch.equal(o[0, :, 1], torch.zeros_like(o[0, :, 1]))
        assert torch.isneginf(lse[0, :, 1]).all() and torch.isfinite(lse[1]).all()
        assert torch.isfinite(dq).all() and torch.equal(dq[0, :, 1], torch.zeros_like(dq[0, :, 1]))
        assert torch.equal(dk[0, :, 1], torch.zeros_like(dk[0, :, 1])) and torch.isfinite(dv).all()
    for name, r, o in zip(("o", "lse", "dq", "dk", "dv"), ref, ker, strict=True):
        assert_close(name, r, o)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 5e-3), (torch.bfloat16, 8e-3)])
def test_half_precision_kernel_on_a_gpu_at_4096_slots(dtype, tol, monkeypatch):
    q, k, v, valid = _inputs(2, 1024, 4096, 4, 64, 64, per_head=False, dtype=dtype)
    ref_in = [x.detach().float().requires_grad_() for x in (q, k, v)]
    monkeypatch.setenv("MEMGEN_TRITON", "0")
    ro, rl = kernels.slot_read(*ref_in, valid)
    ref = (ro, rl, *grads((ro, rl), tuple(ref_in)))
    monkeypatch.setenv("MEMGEN_TRITON", "1")
    o, lse = kernels.slot_read(q, k, v, valid)
    for name, r, x in zip(("o", "lse", "dq", "dk", "dv"), ref, (o, lse, *grads((o, lse), (q, k, v))), strict=True):
        assert_close(name, r, x.float(), tol)


def test_a_value_wider_than_a_tile_is_split_over_programs(monkeypatch):
    """DV above the kernel's tile of value features (the learned hybrid reads a slot's whole
    history): the tiles together give the reference's output and gradients."""
    from memgen.kernels.slot_read import triton as kernel

    q, k, v, valid = _inputs(2, 3, 9, 2, 8, 2 * kernel.DV_TILE + 44, per_head=True, seed=7)  # 3 tiles, the last short
    ref, ker = _both(q, k, v, valid, monkeypatch, scale=0.5)
    for name, r, o in zip(("o", "lse", "dq", "dk", "dv"), ref, ker, strict=True):
        assert_close(name, r, o)


def test_keys_and_values_shared_by_the_heads_each_head_its_own_mask(monkeypatch):
    """One read per head (memslot_ref: a head per query, its match gate the head's mask) over keys
    and values shared by the heads as stride-0 views: the reference reads them without copies,
    and both give what the same read over materialised copies gives."""
    g = torch.Generator().manual_seed(11)
    B, S, H, D, DV = 2, 10, 5, 8, 24
    q = torch.randn(B, 1, H, D, generator=g).to(DEVICE).requires_grad_()
    k0, v0 = (torch.randn(B, S, 1, n, generator=g).to(DEVICE).requires_grad_() for n in (D, DV))
    valid = (torch.rand(B, S, H, generator=g) > 0.6).to(DEVICE)
    valid[0, :, 1] = False  # a head with no slot open
    res = []
    for m, copies in (("0", True), ("0", False), ("1", False)):
        monkeypatch.setenv("MEMGEN_TRITON", m)
        k, v = k0.expand(B, S, H, D), v0.expand(B, S, H, DV)
        if copies:
            k, v = k.contiguous(), v.contiguous()
        else:
            assert k.stride(2) == 0 and v.stride(2) == 0
        o, lse = kernels.slot_read(q, k, v, valid, 0.7)
        res.append((o, lse, *grads((o, lse), (q, k0, v0))))
    for other in res[1:]:
        for name, r, o in zip(("o", "lse", "dq", "dk", "dv"), res[0], other, strict=True):
            assert_close(name, r, o)
    assert torch.isneginf(res[2][1][0, :, 1]).all() and torch.equal(res[2][0][0, :, 1], torch.zeros(1, DV))
