"""Episode families, registered by name, each with its line for the dataset card.

A family is a function ``(knobs: Knobs, length: int) -> Plan`` decorated with
:func:`register_family`; :func:`~memgen.generators.build.build_program` does the rest.  Adding
a family is adding one module here that registers itself (and importing it in
``memgen/generators/__init__.py``): no other code changes, the card included.
"""

from __future__ import annotations

from collections.abc import Callable

from memgen.format.errors import UsageError
from memgen.generators.knobs import Knobs, Plan

FamilyFn = Callable[[Knobs, int], Plan]
FAMILIES: dict[str, FamilyFn] = {}
#: one line per family, for the dataset card: how its episodes are built
DESCRIPTIONS: dict[str, str] = {}


def register_family(name: str, *, description: str = "") -> Callable[[FamilyFn], FamilyFn]:
    """Register a family under ``name``; ``description`` is its line in the dataset card."""
    def deco(fn: FamilyFn) -> FamilyFn:
        FAMILIES[name] = fn
        DESCRIPTIONS[name] = description
        return fn

    return deco


def get_family(name: str) -> FamilyFn:
    try:
        return FAMILIES[name]
    except KeyError:
        raise UsageError(f"unknown family {name!r}; choose from: {', '.join(FAMILIES)}") from None


def family_description(name: str) -> str:
    """The card's line for family ``name``; empty for a family registered without one, or not
    registered here (a manifest may name a family of another install)."""
    return DESCRIPTIONS.get(name, "")
