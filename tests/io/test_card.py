"""The dataset card: each family's line comes from the family's own registration, and the
manifest's values (untrusted) are printed as they are, never run as template code."""
import json
from pathlib import Path

from memgen.generators.registry import FAMILIES, family_description
from memgen.io.card import render_card

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "golden"


def _golden_manifest() -> dict:
    return json.loads((GOLDEN / "manifest.json").read_text(encoding="utf-8"))


def test_every_family_registers_its_card_line_and_the_card_prints_it():
    card = render_card(_golden_manifest())
    for family in FAMILIES:
        assert family_description(family), family
        assert f"| `{family}` | {family_description(family)} |" in card


def test_a_family_of_another_install_is_listed_bare():
    manifest = _golden_manifest()
    name = next(iter(manifest["configs"]))
    manifest["configs"][name]["family"] = "not_registered_here"
    assert family_description("not_registered_here") == ""
    assert "| `not_registered_here` |  |\n" in render_card(manifest)


def test_manifest_values_are_printed_not_evaluated():
    manifest = _golden_manifest()
    manifest["command"] = "memgen generate {{ 7 * 7 }} {% if true %}x{% endif %} {# c #}"
    card = render_card(manifest)
    assert manifest["command"] in card and "memgen generate 49" not in card
