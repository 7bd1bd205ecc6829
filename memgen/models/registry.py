"""Models register themselves by name; ``get_model("fixed_state:d=64")`` builds one.

A model is a dataclass whose fields are its knobs (all with defaults), decorated with
:func:`register_model`, with a ``predict(batch) -> Answers`` method.  It reads a
:class:`~memgen.models.stream.TokenBatch` (tokens, chunk grid, query spans) and answers
every query with a token id at the query's answer slot.  Adding a model is adding one module
that registers itself and naming it in :mod:`memgen.evaluation.zoo`, which builds models by name
(``get_model``); no ``if/elif`` anywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeVar

import numpy as np

from memgen.models.stream import TokenBatch

#: which part of a model answered a query
ROUTES = ("slot", "fallback", "state", "retrieval", "gold")
ROUTE_SLOT, ROUTE_FALLBACK, ROUTE_STATE, ROUTE_RETRIEVAL, ROUTE_GOLD = range(len(ROUTES))


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


def model_label(model: Model) -> str:
    """The model's name plus its knobs that differ from their defaults (``fixed_state:d=64``);
    :func:`get_model` of the label builds the same model."""
    changed = [f"{f.name}={getattr(model, f.name)}" for f in dataclasses.fields(model)
               if getattr(model, f.name) != f.default]
    return model.name + (":" + ",".join(changed) if changed else "")
