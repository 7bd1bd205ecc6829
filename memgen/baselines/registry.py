"""Models register themselves by name; ``get_model("fixed_state:d=64")`` builds one.

A model is a dataclass whose fields are its knobs (all with defaults), decorated with
:func:`register_model`, with a ``predict(batch) -> Answers`` method.  It reads a
:class:`~memgen.baselines.stream.TokenBatch` (tokens, chunk grid, query spans) and answers
every query with a token id at the query's answer slot.  Adding a model is adding one module
that registers itself and naming it in :data:`BUILTIN_MODULES`; no ``if/elif`` anywhere.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeVar

import numpy as np

from ..errors import UsageError
from .stream import TokenBatch

#: which part of a model answered a query
ROUTES = ("slot", "fallback", "state", "retrieval", "gold")
ROUTE_SLOT, ROUTE_FALLBACK, ROUTE_STATE, ROUTE_RETRIEVAL, ROUTE_GOLD = range(len(ROUTES))

#: modules whose import registers the bundled models, in the order they are listed
BUILTIN_MODULES = (
    "memgen.baselines.oracle",
    "memgen.memslot_ref.mechanism",
    "memgen.baselines.fixed_state",
    "memgen.baselines.sparse",
)


@dataclass(frozen=True)
class Answers:
    """A model's answers to the Q queries of a batch, in the batch's query order."""

    prediction: np.ndarray  # (Q,) int64 token id predicted at the answer slot
    route: np.ndarray  # (Q,) int8 index into ROUTES
    active_chunks: np.ndarray  # (Q,) int32 chunks read at query time

    def __post_init__(self) -> None:
        n = self.prediction.shape
        assert self.route.shape == n and self.active_chunks.shape == n, "one entry per query"


class Model(Protocol):
    name: ClassVar[str]
    reads_gold: ClassVar[bool]

    def predict(self, batch: TokenBatch) -> Answers: ...


M = TypeVar("M")
MODELS: dict[str, type] = {}


def register_model(name: str) -> Callable[[type[M]], type[M]]:
    """Class decorator: register a model dataclass under ``name``."""

    def deco(cls: type[M]) -> type[M]:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"model {name!r} must be a dataclass (its fields are its knobs)")
        cls.name = name
        if not hasattr(cls, "reads_gold"):
            cls.reads_gold = False
        MODELS[name] = cls
        return cls

    return deco


def _load_builtin() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def available_models() -> list[str]:
    """Names of every registered model, the bundled ones first."""
    _load_builtin()
    return list(MODELS)


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
    _load_builtin()
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


def model_label(model: Model) -> str:
    """The model's name plus its knobs that differ from their defaults (``fixed_state:d=64``);
    :func:`get_model` of the label builds the same model."""
    changed = [f"{f.name}={getattr(model, f.name)}" for f in dataclasses.fields(model)
               if getattr(model, f.name) != f.default]
    return model.name + (":" + ",".join(changed) if changed else "")
