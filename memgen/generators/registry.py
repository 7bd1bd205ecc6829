"""Episode families, registered by name.

A family is a function ``(knobs: Knobs, length: int) -> Plan`` decorated with
:func:`register_family`; :func:`build_program` does the rest.  Adding a family is adding one
module here that registers itself (and importing it below): no other code changes.
"""

from __future__ import annotations

from collections.abc import Callable

from memgen.format.errors import UsageError
from memgen.generators.knobs import Knobs, Plan

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
