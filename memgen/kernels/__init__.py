"""Triton kernels, one folder per op, each beside its plain PyTorch reference (``naive.py``), with
the same signature and the layout ``[B, T, H, D]`` (docs/kernels.md).

The functions here are the one dispatch per op the models call: the Triton kernel on a CUDA
tensor, the reference elsewhere, as the environment variable ``MEMGEN_TRITON`` says:

* ``auto`` (the default): Triton on CUDA tensors when triton imports, else the reference;
* ``0``: always the reference;
* ``1``: always the kernel; on CPU tensors that needs Triton's interpreter (``TRITON_INTERPRET=1``
  set before triton is first imported), and anything else is a :class:`UsageError`.

The kernel modules import triton, so they are imported on first use only: the models (and
everything that imports them) load without triton.
"""

from __future__ import annotations

import importlib
import os
from functools import cache
from types import ModuleType

import torch
from torch import Tensor

from memgen.format.errors import UsageError
from memgen.kernels.block_topk_attention import naive as _topk_naive
from memgen.kernels.block_topk_attention.naive import block_positions
from memgen.kernels.slot_read import naive as _read_naive
from memgen.kernels.slot_write import naive as _write_naive
from memgen.kernels.slot_write.naive import SlotTable

__all__ = ["SlotTable", "block_positions", "block_topk_attention", "interpreted", "mode", "select_blocks", "slot_read",
           "slot_write", "use_triton", "with_null"]

MODES = ("0", "1", "auto")
REDUCES = _topk_naive.REDUCES


def mode() -> str:
    """``MEMGEN_TRITON``, checked (default ``auto``)."""
    m = os.environ.get("MEMGEN_TRITON", "auto").strip().lower() or "auto"
    if m not in MODES:
        raise UsageError(f"MEMGEN_TRITON must be one of {', '.join(MODES)}, not {m!r}")
    return m


@cache
def _kernels(op: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"memgen.kernels.{op}.triton")
    except ImportError:
        return None


def interpreted() -> bool:
    """Whether the kernels run in Triton's interpreter (they were built with TRITON_INTERPRET=1)."""
    mod = _kernels("slot_read")
    return mod is not None and type(mod._fwd).__name__ == "InterpretedFunction"


def use_triton(op: str, x: Tensor) -> bool:
    """Whether the dispatch of ``op`` runs the Triton kernel for inputs on ``x``'s device."""
    m = mode()
    if m == "0":
        return False
    if m == "auto":
        return x.is_cuda and _kernels(op) is not None  # a CPU run never imports triton
    if _kernels(op) is None:
        raise UsageError("MEMGEN_TRITON=1 needs triton installed (pip install 'memgen-bench[models]')")
    if not x.is_cuda and not interpreted():
        raise UsageError("MEMGEN_TRITON=1 on CPU tensors needs Triton's interpreter: set TRITON_INTERPRET=1 "
                         "before the run starts (or use MEMGEN_TRITON=auto)")
    return True


def _impl(op: str, x: Tensor, empty: bool) -> ModuleType:
    naive = {"slot_read": _read_naive, "slot_write": _write_naive, "block_topk_attention": _topk_naive}[op]
    return _kernels(op) if use_triton(op, x) and not empty else naive


def slot_read(q: Tensor, k: Tensor, v: Tensor, valid: Tensor, scale: float | None = None) -> tuple[Tensor, Tensor]:
    """Queries q (B, T, H, D) read slots k (B, S, H, D), v (B, S, H, Dv) by softmax over ``valid``
    (B, S) or (B, S, H); -> (o (B, T, H, Dv), lse (B, T, H)).  See ``slot_read/naive.py``."""
    return _impl("slot_read", q, q.numel() == 0 or k.shape[1] == 0).slot_read(q, k, v, valid, scale)


def slot_write(values: Tensor, count: Tensor, valid: Tensor, protected: Tensor, slot: Tensor, x: Tensor,
               write: Tensor, discard: Tensor) -> SlotTable:
    """N gated write / overwrite / discard commands on a slot table; -> the new
    :class:`SlotTable`.  See ``slot_write/naive.py``."""
    empty = values.shape[0] == 0 or slot.shape[1] == 0
    return _impl("slot_write", values, empty).slot_write(values, count, valid, protected, slot, x, write, discard)


def select_blocks(q: Tensor, k: Tensor, q_pos: Tensor, block: int, top_k: int,
                  reduce: str = "mean") -> tuple[Tensor, Tensor]:
    """The ``top_k`` earlier blocks of each query and head by block score (``mean`` key or ``max``
    key match); -> (idx, ok) (B, Tq, H, top_k).  See ``block_topk_attention/naive.py``."""
    if reduce not in REDUCES:
        raise UsageError(f"reduce must be one of {', '.join(REDUCES)}, not {reduce!r}")
    if block < 1 or top_k < 0:
        raise UsageError("block must be at least 1 and top_k at least 0")
    empty = q.numel() == 0 or top_k == 0 or k.shape[1] < block
    return _impl("block_topk_attention", q, empty).select_blocks(q, k, q_pos, block, top_k, reduce)


def block_topk_attention(q: Tensor, k: Tensor, v: Tensor, q_pos: Tensor, idx: Tensor, ok: Tensor, block: int,
                         scale: float | None = None, bias: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Attention of q (B, Tq, H, D) at q_pos over its selected blocks (idx, ok) and its own block
    up to its position; -> (o (B, Tq, H, Dv), lse (B, Tq, H)).  See ``block_topk_attention/naive.py``."""
    empty = q.numel() == 0 or k.shape[1] == 0
    return _impl("block_topk_attention", q, empty).block_topk_attention(q, k, v, q_pos, idx, ok, block, scale, bias)


def with_null(o: Tensor, lse: Tensor, null_logit: Tensor, null_value: Tensor) -> Tensor:
    """Add one more entry to a softmax read: logit ``null_logit`` (broadcast to lse's shape), value
    ``null_value`` (broadcast to o's); equal to the softmax over the read's entries and it.  A read
    that saw nothing (lse -inf) gives the null value."""
    keep = torch.sigmoid(lse - null_logit)[..., None]  # share of the read's own entries
    return keep * o + torch.sigmoid(null_logit - lse)[..., None] * null_value
