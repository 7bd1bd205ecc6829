"""The zoo: every built-in model, and models built by name (``get_model("fixed_state:d=64")``).

The built-in models register themselves (:func:`memgen.models.registry.register_model`) when
their modules are imported; this module imports them all, in the order they are listed, so
anything that builds a model by name imports it.  A user's own model registers the same way.
"""

from __future__ import annotations

import dataclasses

from memgen.baselines import fixed_state, oracle, sparse
from memgen.evaluation import learned
from memgen.format.errors import UsageError
from memgen.memslot_ref import mechanism
from memgen.models.registry import MODELS, Model
from memgen.models.train import register_memory

#: the bundled models, in the order ``memgen eval`` lists them
BUILTIN = (oracle.Oracle, mechanism.Hybrid, mechanism.SlotsOnly, fixed_state.FixedState, sparse.Sparse,
           learned.MemslotRef, learned.Transformer, learned.DeltaNet, learned.TopkAttention, learned.Learned)


def _memslot_memory() -> type:
    from memgen.memslot_ref.model import MemslotMemory

    return MemslotMemory


def _delta_net_memory() -> type:
    from memgen.baselines.delta_net import DeltaNetMemory

    return DeltaNetMemory


def _transformer_memory() -> type:
    from memgen.baselines.transformer import TransformerMemory

    return TransformerMemory


def _topk_attention_memory() -> type:
    from memgen.baselines.topk_attention import TopkAttentionMemory

    return TopkAttentionMemory


#: the learned memories by name (their modules import torch, so each is loaded when first used)
register_memory("memslot_ref", _memslot_memory)
register_memory("transformer", _transformer_memory)
register_memory("delta_net", _delta_net_memory)
register_memory("topk_attention", _topk_attention_memory)


def default_models() -> list[str]:
    """The models ``memgen eval`` and ``memgen stress`` run when none is named: every registered
    model but those that opt out (``in_default_run = False``: the learned ones, which need torch
    and a checkpoint, and run far slower than the mechanisms on millions of tokens)."""
    return [name for name in available_models() if getattr(MODELS[name], "in_default_run", True)]


def available_models() -> list[str]:
    """Names of every registered model: the bundled ones first, in :data:`BUILTIN` order, then
    the user's in the order they registered."""
    builtin = [cls.name for cls in BUILTIN]
    return builtin + [name for name in MODELS if name not in builtin]


def _convert(text: str, default: object, where: str) -> object:
    try:
        if isinstance(default, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        raise UsageError(f"{where}: {text!r} is not a {type(default).__name__}") from None
    return text


def get_model(spec: str) -> Model:
    """The model that ``spec`` names: ``name`` or ``name:knob=value,knob=value``.

    Raises :class:`UsageError` for an unknown model, an unknown knob or a value of the wrong
    type, naming what is available."""
    name, _, opts = spec.partition(":")
    name = name.strip()
    if name not in MODELS:
        raise UsageError(f"unknown model {name!r}; choose from: {', '.join(MODELS)}")
    cls = MODELS[name]
    knobs = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in opts.split(","))):
        knob, eq, text = part.partition("=")
        knob = knob.strip()
        if not eq or knob not in knobs:
            have = ", ".join(knobs) or "none"
            raise UsageError(f"--model {spec}: {name} has no knob {knob!r} (knobs: {have}); "
                             "write name:knob=value,knob=value")
        kwargs[knob] = _convert(text.strip(), knobs[knob].default, f"--model {spec}: {knob}")
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise UsageError(f"--model {spec}: {e}") from None
