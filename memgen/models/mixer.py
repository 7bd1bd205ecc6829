"""Bring your own memory, the short way: any causal sequence mixer as a memory.

A **mixer** is a ``torch.nn.Module`` class built as ``Layer(hidden_size=d_model, **knobs)`` whose
``forward(x)`` maps x (B, T, d_model) to (B, T, d_model), or to a tuple whose first item is that,
with the output at t depending on positions <= t only.  flash-linear-attention's layers
(``fla.layers.GatedDeltaNet``, ``DeltaNet``, ``GatedLinearAttention``, ...) are mixers::

    memgen train --model fla.layers:GatedDeltaNet --out gdn.pt     # a CUDA GPU and fla installed

:func:`memgen.models.train.memory_class` wraps a mixer class in :class:`MixerMemory`: the
front end's value, key and gate context of every position, projected to d_model, go through
the mixer; its output at an answer slot, projected back, is the read (the front end, data,
loop and scorers are memgen's).  fla's layers run on a CUDA GPU only: without fla, or without
a GPU, naming one is refused with one line, and nothing else in memgen needs either.

**State.**  A mixer has no state memgen can carry, so the state is the mixer's input so far
(a :class:`~memgen.models.frontend.Tape`) and each chunk runs the mixer over the whole prefix:
chunked equals one pass exactly, at a cost quadratic in the number of chunks (evaluate with
``chunk`` at least the row length, the default for rows up to 65,536 tokens).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from memgen.models.frontend import EMPTY_TAPE, Features, FrontEndConfig, Tape


class MixerMemory(nn.Module):
    """A mixer class (``layer``, set by :func:`mixer_memory`) as a memory."""

    layer: ClassVar[type]

    def __init__(self, cfg: FrontEndConfig, **knobs):
        super().__init__()
        d = cfg.d_model
        self.cfg = cfg
        self.inp = nn.Linear(d + cfg.d_key + cfg.d_context, d)
        self.mixer = type(self).layer(hidden_size=d, **knobs)
        self.out = nn.Linear(d, d)

    def initial_state(self, batch: int) -> Tape:
        return EMPTY_TAPE

    def forward(self, f: Features, state: Tape | None, read: Tensor) -> tuple[Tensor, Tape]:
        x = self.inp(torch.cat([f.value, f.key, f.context], -1))  # (B, T, d)
        T = x.shape[1]
        if self.training:  # one whole sequence; the prefix is carried only at inference
            prefix, tape = x, EMPTY_TAPE
        else:
            tape = (state or EMPTY_TAPE).append(x)
            (prefix,) = tape.tensors()  # (B, N, d): every position so far
        y = self.mixer(prefix)
        y = y[0] if isinstance(y, tuple) else y  # fla layers return (o, attentions, past_key_values)
        return self.out(y[:, -T:]), tape  # (B, T, d)


def is_mixer(cls: type) -> bool:
    """A module class without the memory interface, built with ``hidden_size`` (a mixer)."""
    import inspect

    if hasattr(cls, "initial_state"):
        return False
    try:
        return "hidden_size" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def mixer_memory(layer: type) -> type:
    """The memory class wrapping the mixer class ``layer``."""
    return type(f"Mixer[{layer.__name__}]", (MixerMemory,), {"layer": layer, "__module__": __name__})
