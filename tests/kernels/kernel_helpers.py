"""Comparison helpers for the kernel tests (fla's ``assert_close``: an RMS ratio)."""

from __future__ import annotations

import torch

#: where the kernels run: the GPU if there is one, else the CPU through Triton's interpreter
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def rms_ratio(ref: torch.Tensor, out: torch.Tensor) -> float:
    """RMS(ref - out) / RMS(ref) over the finite entries of ref (which must be where out's are)."""
    ref, out = ref.detach().double(), out.detach().double()
    fin = torch.isfinite(ref)
    assert torch.equal(fin, torch.isfinite(out)), "the kernel's non-finite entries differ from the reference's"
    assert torch.equal(ref[~fin], out[~fin]), "the kernel's infinities differ from the reference's"
    r, o = ref[fin], out[fin]
    scale = r.pow(2).mean().sqrt().clamp(min=1e-30) if r.numel() else 1.0
    return float((r - o).pow(2).mean().sqrt() / scale) if r.numel() else 0.0


def assert_close(name: str, ref: torch.Tensor, out: torch.Tensor, tol: float = 1e-5) -> None:
    assert ref.shape == out.shape, f"{name}: shape {tuple(out.shape)} != {tuple(ref.shape)}"
    r = rms_ratio(ref, out)
    assert r <= tol, f"{name}: RMS ratio {r:.3g} > {tol}"


def grads(outputs: tuple[torch.Tensor, ...], inputs: tuple[torch.Tensor, ...], seed: int = 1):
    """Gradients of a fixed random projection of the (finite parts of the) outputs."""
    g = torch.Generator().manual_seed(seed)
    loss = 0.0
    for o in outputs:
        w = torch.randn(o.shape, generator=g).to(o.device, o.dtype)
        loss = loss + (torch.where(torch.isfinite(o), o, torch.zeros_like(o)) * w).sum()
    return torch.autograd.grad(loss, inputs)
