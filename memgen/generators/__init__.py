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


def plan(k: Knobs, n: int, *, absent: int = 0, overwrites: int = 0, distractors: int = 0,
         silent_share: float = 0.0, deletes: int = 0, rewrite_share: float = 0.0, queries: int | None = None,
         **policy) -> Plan:
    """A family's :class:`Plan`: ``n`` keys, the family's defaults for every count the user left
    unset (``None``) in ``k``, and its query policy (``priority``, ``ask_weights``, ...)."""
    return Plan(
        keys=n, absent=pick(k.absent_keys, absent), overwrites=pick(k.overwrites, overwrites),
        distractors=pick(k.distractors, distractors), kinds=k.distractor_kinds,
        silent_share=pick(k.silent_share, silent_share), deletes=pick(k.deletes, deletes),
        rewrite_share=pick(k.rewrite_share, rewrite_share), queries=pick(k.queries, pick(queries, min(n, 64))),
        interleaved=k.query_position == "interleaved", max_version=k.max_version, **policy)


from . import (  # noqa: E402,F401  (registration)
    discard,
    distractor,
    mixed,
    no_write_signal,
    overwrite,
    version,
    write,
)

__all__ = ["FAMILIES", "Knobs", "KeyFacts", "Plan", "build_program", "get_family", "plan", "register_family"]
