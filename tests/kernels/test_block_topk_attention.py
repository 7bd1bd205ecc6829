"""block_topk_attention: selection and attention, each step's Triton kernel against its
reference, and the reference against a dense masked attention over every position."""

from __future__ import annotations

import pytest
import torch
from kernel_helpers import DEVICE, assert_close, grads

from memgen import kernels
from memgen.kernels.block_topk_attention import naive


def _qk(B, Tq, Tk, H, D, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(B, Tq, H, D, generator=g), torch.randn(B, Tk, H, D, generator=g)
    q_pos = torch.randint(0, Tk, (B, Tq), generator=g)
    return q.to(DEVICE, dtype), k.to(DEVICE, dtype), q_pos.to(DEVICE)


def _select_both(q, k, q_pos, block, top_k, reduce, monkeypatch):
    out = []
    for m in ("0", "1"):
        monkeypatch.setenv("MEMGEN_TRITON", m)
        out.append(kernels.select_blocks(q, k, q_pos, block, top_k, reduce))
    return out


@pytest.mark.parametrize("reduce", ["mean", "max"])
@pytest.mark.parametrize("top_k", [1, 6])  # 6: more than the earlier blocks of most queries
def test_selection_kernel_picks_the_reference_blocks(reduce, top_k, monkeypatch):
    q, k, q_pos = _qk(2, 8, 128, 2, 8)  # 32 programs; 8 blocks of 16
    (ri, ro), (ki, ko) = _select_both(q, k, q_pos, 16, top_k, reduce, monkeypatch)
    assert torch.equal(ri, ki) and torch.equal(ro, ko) and ki.dtype == torch.long and ko.dtype == torch.bool
    # every earlier block, up to k (and some queries have fewer than k)
    assert (ro.sum(-1) == torch.clamp(q_pos // 16, max=top_k)[..., None]).all() and (~ro).any()
    assert not ki[~ko].any()


@pytest.mark.parametrize("reduce", ["mean", "max"])
def test_equal_scores_go_to_the_more_recent_block_in_both(reduce, monkeypatch):
    q, k, _ = _qk(1, 4, 128, 1, 8, seed=2)
    blocks = k.view(1, 8, 16, 1, 8)
    blocks[:, [1, 4, 6]] = blocks[:, 2:3].clone()  # blocks 1, 2, 4, 6 identical: their scores tie exactly
    q_pos = torch.tensor([[127, 100, 70, 40]], device=DEVICE)
    (ri, ro), (ki, ko) = _select_both(q, k, q_pos, 16, 8, reduce, monkeypatch)
    assert torch.equal(ri, ki) and torch.equal(ro, ko)
    for t in range(4):
        tied = [b for b in ri[0, t, 0].tolist() if b in (1, 2, 4, 6)]
        assert tied == sorted(tied, reverse=True) and len(tied) == sum(b < q_pos[0, t] // 16 for b in (1, 2, 4, 6))


def _attend_inputs(B, Tq, Tk, H, D, DV, block, top_k, seed=0, bias=True, shared_v=False):
    q, k, q_pos = _qk(B, Tq, Tk, H, D, seed)
    idx, ok = naive.select_blocks(q, k, q_pos, block, top_k, "mean")
    g = torch.Generator().manual_seed(seed + 1)
    v = torch.randn(B, Tk, 1 if shared_v else H, DV, generator=g).to(DEVICE)
    b = torch.randn(B, Tk, H, generator=g).to(DEVICE).requires_grad_() if bias else None
    q, k, v = (x.requires_grad_() for x in (q, k, v))
    return q, k, v, b, q_pos, idx, ok


def _attend_both(inputs, block, scale, monkeypatch):
    q, k, v, b, q_pos, idx, ok = inputs
    wrt = (q, k, v) + ((b,) if b is not None else ())
    out = []
    for m in ("0", "1"):
        monkeypatch.setenv("MEMGEN_TRITON", m)
        vv = v.expand(-1, -1, q.shape[2], -1)  # a (B, Tk, 1, Dv) v shared by the heads: stride 0
        o, lse = kernels.block_topk_attention(q, k, vv, q_pos, idx, ok, block, scale, b)
        out.append((o, lse, *grads((o, lse), wrt)))
    return out


@pytest.mark.parametrize("case", [
    dict(B=2, Tq=4, Tk=200, H=2, D=8, DV=12, block=16, top_k=2, bias=True, shared_v=False, scale=None),
    dict(B=1, Tq=8, Tk=256, H=2, D=5, DV=16, block=32, top_k=3, bias=False, shared_v=True, scale=0.7),
    dict(B=1, Tq=6, Tk=100, H=1, D=32, DV=64, block=64, top_k=1, bias=True, shared_v=False, scale=1.0),
])
def test_attention_kernel_matches_reference_forward_and_backward(case, monkeypatch):
    case = dict(case)
    block, scale = case["block"], case.pop("scale")
    inputs = _attend_inputs(**case)
    ref, ker = _attend_both(inputs, block, scale, monkeypatch)
    names = ("o", "lse", "dq", "dk", "dv", "dbias")
    for name, r, o in zip(names, ref, ker, strict=False):
        assert_close(name, r, o)


def test_reference_equals_a_dense_attention_masked_to_the_blocks_read():
    q, k, v, b, q_pos, idx, ok = _attend_inputs(2, 10, 96, 2, 4, 6, 16, 2, seed=4)
    o, lse = naive.block_topk_attention(q, k, v, q_pos, idx, ok, 16, None, b)
    B, Tq, H, _ = q.shape
    Tk = k.shape[1]
    blk_of = torch.arange(Tk, device=DEVICE) // 16  # (Tk,)
    chosen = (blk_of[None, None, None, :, None] == idx[..., None, :]) & ok[..., None, :]  # (B, Tq, H, Tk, n)
    own = blk_of[None, None, :] == (q_pos // 16)[..., None]  # (B, Tq, Tk)
    mask = (chosen.any(-1) | own[:, :, None]) & (torch.arange(Tk, device=DEVICE) < q_pos[..., None])[:, :, None]
    s = torch.einsum("bqhd,bkhd->bqhk", q, k) / 2.0 + b.permute(0, 2, 1)[:, None]
    s = s.masked_fill(~mask, float("-inf"))
    p = torch.softmax(s, -1).nan_to_num(0.0)
    assert torch.allclose(o, torch.einsum("bqhk,bkhd->bqhd", p, v), atol=1e-6)
    assert torch.allclose(lse, torch.logsumexp(s, -1), atol=1e-6)


def test_a_null_entry_joins_the_softmax_exactly():
    q, k, v, b, q_pos, idx, ok = _attend_inputs(1, 6, 64, 2, 4, 3, 16, 1, seed=5)
    q_pos[0, 0] = 0  # sees nothing: reads the null value
    o, lse = naive.block_topk_attention(q, k, v, q_pos, idx, ok, 16, None, b)
    null, nv = torch.randn(1, 6, 2, device=DEVICE), torch.randn(3, device=DEVICE)
    got = kernels.with_null(o, lse, null, nv)
    pos, mask = naive.block_positions(q_pos, idx, ok, 16)
    h = torch.arange(2, device=DEVICE)[None, None, :, None]
    s = (k[0, pos[0], h[0]] @ q[0, ..., None]).squeeze(-1) / 2.0 + b[0, pos[0], h[0]]
    s = torch.cat([s.masked_fill(~mask[0], float("-inf")), null[0, ..., None]], -1)  # (Tq, H, P + 1)
    vv = torch.cat([v[0, pos[0], h[0]], nv.expand(6, 2, 1, 3)], -2)
    want = (torch.softmax(s, -1)[..., None, :] @ vv).squeeze(-2)
    assert torch.allclose(got[0], want, atol=1e-6) and torch.allclose(got[0, 0], nv.expand(2, 3))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 5e-3), (torch.bfloat16, 8e-3)])
def test_half_precision_kernels_on_a_gpu_at_8192_tokens(dtype, tol, monkeypatch):
    T, H, D = 8192, 4, 64
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, T, H, D, generator=g).to(DEVICE) for _ in range(3))
    q_pos = torch.arange(T, device=DEVICE)[None]
    idx, ok = naive.select_blocks(q, k, q_pos, 64, 8, "mean")
    monkeypatch.setenv("MEMGEN_TRITON", "1")
    ki, ko = kernels.select_blocks(q, k, q_pos, 64, 8, "mean")
    assert (ki == idx).float().mean() > 0.999 and torch.equal(ko, ok)  # fp32 near-ties may differ in the last bit
    ref_in = [x.clone().requires_grad_() for x in (q, k, v)]
    half = [x.to(dtype).requires_grad_() for x in (q, k, v)]
    monkeypatch.setenv("MEMGEN_TRITON", "0")
    ro, rl = kernels.block_topk_attention(*ref_in, q_pos, idx, ok, 64)
    ref = (ro, rl, *grads((ro, rl), tuple(ref_in)))
    monkeypatch.setenv("MEMGEN_TRITON", "1")
    o, lse = kernels.block_topk_attention(*half, q_pos, idx, ok, 64)
    for name, r, x in zip(("o", "lse", "dq", "dk", "dv"), ref, (o, lse, *grads((o, lse), tuple(half))), strict=True):
        assert_close(name, r, x.float(), tol)
