"""Episode families, registered by name.

A family is a function ``(knobs: Knobs, length: int) -> Plan`` decorated with
:func:`register_family`; :func:`build_program` does the rest.  Adding a family is adding one
module here that registers itself (and importing it below): no other code changes.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import UsageError
from .base import KeyFacts, Knobs, Plan, build_program

FamilyFn = Callable[[Knobs, int], Plan]
FAMILIES: dict[str, FamilyFn] = {}


def register_family(name: str) -> Callable[[FamilyFn], FamilyFn]:
    def deco(fn: FamilyFn) -> FamilyFn:
        FAMILIES[name] = fn
        return fn

    return deco


def get_family(name: str) -> FamilyFn:
    try:
        return FAMILIES[name]
    except KeyError:
        raise UsageError(f"unknown family {name!r}; choose from: {', '.join(FAMILIES)}") from None


def scale(length: int) -> int:
    """Default number of keys at a context length: 4 at 1K tokens, 16 at 4K, 256 from 64K."""
    return max(4, min(256, length // 256))


def pick(value, default):
    return default if value is None else value


from . import (  # noqa: E402,F401  (registration)
    discard,
    distractor,
    mixed,
    no_write_signal,
    overwrite,
    version,
    write,
)

__all__ = ["FAMILIES", "Knobs", "KeyFacts", "Plan", "build_program", "get_family", "register_family"]
