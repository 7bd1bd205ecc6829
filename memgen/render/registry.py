"""Renderings, registered by name: a rendering turns a replayed batch of episodes into an
Arrow table with the common columns and its own (see :mod:`memgen.format.schema`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from memgen.format.errors import UsageError
from memgen.format.vocab import Vocab
from memgen.ir.program import Program


@dataclass(frozen=True)
class RenderOptions:
    """Rendering knobs.  ``chunk_size`` is the chunk rendering's chunk; the token and bridge
    renderings lay items out on a grid of ``layout_chunk`` tokens (no item straddles it)."""

    vocab: Vocab = field(default_factory=Vocab)
    chunk_size: int = 128
    layout_chunk: int = 64
    segments: int = 4
    depth: tuple[float, float] = (0.0, 1.0)
    spacing: str = "uniform"
    alpha: float = 1.2
    tokenizer: str = "cl100k"
    domain: str | None = None
    #: the text rendering's passages in tokens (``--chunk-size`` given), None for none
    passage_size: int | None = None


@dataclass(frozen=True)
class Batch:
    """What a renderer gets: the replayed program plus identity of its rows."""

    program: Program
    seeds: np.ndarray  # (B,) uint64 episode seeds
    ids: list[str]
    family: str
    target_length: int


Renderer = Callable[[Batch, RenderOptions], pa.Table]
RENDERINGS: dict[str, Renderer] = {}
#: the shortest target length a rendering can hold for a batch's item counts
MIN_LENGTH: dict[str, Callable[[int, int, RenderOptions], int]] = {}


def register_rendering(name: str, min_length: Callable[[int, int, RenderOptions], int] | None = None):
    def deco(fn: Renderer) -> Renderer:
        RENDERINGS[name] = fn
        if min_length is not None:
            MIN_LENGTH[name] = min_length
        return fn

    return deco


def get_rendering(name: str) -> Renderer:
    try:
        return RENDERINGS[name]
    except KeyError:
        raise UsageError(f"unknown rendering {name!r}; choose from: {', '.join(available())}") from None


def available() -> list[str]:
    return list(RENDERINGS)
