"""Selectors, registered by name (``@register_selector``), and the ``NAME:k=K`` spec that names one.

A selector is a dataclass whose fields are its knobs (``k``: passages kept per query, and any
of its own).  Given a :class:`~memgen.selection.episodes.SelectionEpisode` it scores every
passage for every query (``(Q, P)`` float64, higher is better, ``-inf`` for a passage it does
not rank); :func:`memgen.selection.metrics.rank` orders them (ties to the earlier passage) and
keeps only the passages before each query.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import ClassVar, Protocol, TypeVar

import numpy as np

from memgen.format.errors import UsageError

#: renderings whose rows carry passages (text with --chunk-size) or chunks
PASSAGE_RENDERINGS = ("text", "chunk")
#: the largest k a spec may ask for (no episode has more passages worth ranking)
MAX_K = 1 << 20


class Selector(Protocol):
    name: ClassVar[str]
    renderings: ClassVar[tuple[str, ...]]
    k: int

    def scores(self, ep) -> np.ndarray: ...


S = TypeVar("S")
_KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
SELECTORS: dict[str, type] = {}


def register_selector(name: str, renderings: tuple[str, ...] = PASSAGE_RENDERINGS) -> Callable[[type[S]], type[S]]:
    """Class decorator: register a selector dataclass under ``name``, for ``renderings``."""

    def deco(cls: type[S]) -> type[S]:
        if not dataclasses.is_dataclass(cls) or "k" not in {f.name for f in dataclasses.fields(cls)}:
            raise TypeError(f"selector {name!r} must be a dataclass with a field k")
        cls.name, cls.renderings = name, renderings
        SELECTORS[name] = cls
        return cls

    return deco


def available() -> list[str]:
    return list(SELECTORS)


def parse_select(spec: str) -> Selector:
    """The selector a ``--select`` spec names: ``NAME`` or ``NAME:k=K[,knob=value...]``.

    Raises :class:`UsageError` (one line) for an unknown name or knob, a value of the wrong
    type, or ``k`` outside 1 ... MAX_K."""
    name, _, rest = str(spec).strip().partition(":")
    cls = SELECTORS.get(name)
    if cls is None:
        raise UsageError(f"--select {spec!r}: unknown selector {name!r}; choose from: {', '.join(available())}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    knobs: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, raw = part.partition("=")
        if not eq or key not in fields:
            raise UsageError(f"--select {spec!r}: {part!r} is not a knob of {name} (knobs: "
                             f"{', '.join(f'{k}=' for k in fields)})")
        kind = type(fields[key].default)
        try:
            knobs[key] = kind(raw) if kind is not bool else raw.lower() in ("1", "true", "yes")
        except ValueError:
            what = _KIND_NAMES.get(kind, kind.__name__)
            raise UsageError(f"--select {spec!r}: {key}={raw!r} is not {what}") from None
    sel = cls(**knobs)
    if not 1 <= sel.k <= MAX_K:
        raise UsageError(f"--select {spec!r}: k must be 1 to {MAX_K:,} passages")
    return sel


def selector_label(sel: Selector) -> str:
    """``name:k=K`` plus the knobs that differ from their defaults; parses back to ``sel``."""
    extra = [f"{f.name}={getattr(sel, f.name)}" for f in dataclasses.fields(sel)
             if f.name != "k" and getattr(sel, f.name) != f.default]
    return f"{sel.name}:" + ",".join([f"k={sel.k}", *extra])


def check_rendering(sel: Selector, rendering: str, config: str) -> None:
    """Raise :class:`UsageError` unless ``sel`` reads ``rendering``."""
    if rendering not in sel.renderings:
        raise UsageError(f"--select {sel.name}: reads the {' and '.join(sel.renderings)} rendering"
                         f"{'s' if len(sel.renderings) > 1 else ''}, and {config} is {rendering}")
