"""slot_write: the gated write / overwrite / discard semantics, and the Triton kernel equal to its
reference (integer and boolean state exactly, values and gradients by RMS ratio)."""

from __future__ import annotations

import pytest
import torch
from kernel_helpers import DEVICE, assert_close

from memgen import kernels


def _table(B, S, E, DV, seed=0):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(B, S, E, DV, generator=g).to(DEVICE).requires_grad_()
    count = torch.randint(0, E + 1, (B, S), generator=g).to(DEVICE)
    valid = (torch.rand(B, S, generator=g) > 0.5).to(DEVICE)
    protected = (torch.rand(B, S, generator=g) > 0.75).to(DEVICE)
    return values, count, valid, protected


def _commands(B, N, S, DV, seed=1, hard=False):
    g = torch.Generator().manual_seed(seed)
    slot = torch.randint(-1, S, (B, N), generator=g).to(DEVICE)  # -1: no slot; repeats: a slot edited twice
    x = torch.randn(B, N, DV, generator=g).to(DEVICE).requires_grad_()
    write, discard = torch.rand(B, N, generator=g), torch.rand(B, N, generator=g)
    if hard:
        write, discard = (write > 0.5).float(), (discard > 0.7).float()
    return slot, x, write.to(DEVICE).requires_grad_(), discard.to(DEVICE)


def _run(mode, table, cmds, monkeypatch, seed=2):
    monkeypatch.setenv("MEMGEN_TRITON", mode)
    values, count, valid, protected = table
    slot, x, write, discard = cmds
    out = kernels.slot_write(values, count, valid, protected, slot, x, write, discard)
    w = torch.randn(out.values.shape, generator=torch.Generator().manual_seed(seed)).to(DEVICE)
    return out, torch.autograd.grad((out.values * w).sum(), (values, x, write))


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("shape", [(2, 6, 3, 5, 24), (3, 4, 1, 33, 16)])  # B, S, E, DV, N
def test_kernel_matches_reference_state_values_and_gradients(shape, hard, monkeypatch):
    B, S, E, DV, N = shape
    table, cmds = _table(B, S, E, DV), _commands(B, N, S, DV, hard=hard)
    (ref, rg), (ker, kg) = _run("0", table, cmds, monkeypatch), _run("1", table, cmds, monkeypatch)
    assert torch.equal(ref.count, ker.count) and ref.count.dtype == ker.count.dtype
    assert torch.equal(ref.valid, ker.valid) and ker.valid.dtype == torch.bool
    assert_close("values", ref.values, ker.values)
    for name, r, k in zip(("dvalues", "dx", "dwrite"), rg, kg, strict=True):
        assert_close(name, r, k)


def _empty(S=3, E=3, DV=2):
    z = torch.zeros(1, S, dtype=torch.long, device=DEVICE)
    return (torch.zeros(1, S, E, DV, device=DEVICE), z, z.bool(), z.bool())


@pytest.mark.parametrize("mode", ["0", "1"])
def test_open_gates_write_overwrite_discard_and_continue_the_version_count(mode, monkeypatch):
    monkeypatch.setenv("MEMGEN_TRITON", mode)
    values, count, valid, protected = _empty()
    protected[0, 2] = True
    x = torch.arange(1.0, 15.0, device=DEVICE).view(1, 7, 2)
    slot = torch.tensor([[0, 0, 0, 0, 1, 2, 0]], device=DEVICE)
    write = torch.tensor([[1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0]], device=DEVICE)
    discard = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0]], device=DEVICE)
    # slot 0: write, overwrite, discard, write again (version 3), write past its 3 entries
    out = kernels.slot_write(values, count, valid, protected, slot, x, write, discard)
    assert out.count.tolist() == [[4, 1, 0]]  # the counter stays exact past the history
    assert out.valid.tolist() == [[True, True, False]]  # the protected slot ignored its write
    assert out.values[0, 0].tolist() == [[1.0, 2.0], [3.0, 4.0], [7.0, 8.0]]  # versions 1, 2, 3
    assert out.values[0, 1, 0].tolist() == [9.0, 10.0] and not out.values[0, 2].any()
    assert not valid.any() and not values.any()  # the inputs are values: never edited in place


@pytest.mark.parametrize("mode", ["0", "1"])
def test_a_closed_gate_moves_the_entry_without_committing_a_version(mode, monkeypatch):
    monkeypatch.setenv("MEMGEN_TRITON", mode)
    values, count, valid, protected = _empty(S=1, E=2, DV=1)
    x = torch.tensor([[[4.0], [10.0]]], device=DEVICE)
    out = kernels.slot_write(values, count, valid, protected, torch.tensor([[0, 0]], device=DEVICE), x,
                             torch.tensor([[0.25, 0.5]], device=DEVICE), torch.zeros(1, 2, device=DEVICE))
    assert out.count.tolist() == [[0]] and out.valid.tolist() == [[False]]
    assert out.values[0, 0, 0].item() == pytest.approx(1.0 + 0.5 * (10.0 - 1.0))  # both moved entry 0
