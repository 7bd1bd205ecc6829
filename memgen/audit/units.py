"""Rendered episodes as labelled sentences, with key surfaces masked.

A *unit* is one sentence of a context: an event's span (labelled by its op, or by its kind for
a distractor: ``write``, ``overwrite``, ``silent_write``, ``delete``, ``negated``, ...) or one
sentence of the text between them (labelled ``filler``).  Interleaved questions are left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from memgen.render.text.domain import load_domain

FILLER = "filler"
#: what a masked key-shaped string becomes
KEY_MASK = "KEYNAME"
# a full stop ends a sentence, but not a middle initial ("Emrys A. Castellanos")
_SENTENCE_END = re.compile(r"(?<=[.!?])(?<! [A-Z]\.)\s+")


@dataclass(frozen=True)
class Unit:
    """One sentence: ``text`` with every key-shaped string masked, its label, its character span
    in the context and the index of its episode (for splitting by episode)."""

    text: str
    label: str
    start: int
    end: int
    episode: int


@cache
def shapes(domain: str) -> tuple[re.Pattern, re.Pattern]:
    """(key-shaped, value-shaped) regexes of ``domain``; key shapes include look-alikes."""
    dom = load_domain(domain)
    return dom.keys.pattern(lookalikes=True), dom.values.pattern()


def mask_keys(text: str, surfaces: list[str], domain: str) -> str:
    """``text`` with each of ``surfaces`` (longest first) and every other key-shaped string of
    ``domain`` replaced by :data:`KEY_MASK`."""
    for s in sorted(surfaces, key=len, reverse=True):
        text = text.replace(s, KEY_MASK)
    return shapes(domain)[0].sub(KEY_MASK, text)


def episode_surfaces(row: dict) -> list[str]:
    """The key and look-alike surfaces an episode (a dataset row) names."""
    dom = load_domain(row["domain"])
    keys = {e["key"] for e in row["events"]} | {q["key"] for q in row["queries"]}
    out = {dom.key_surface(k) for k in keys}
    out |= {dom.lookalike_surface(e["key"], e["alias"]) for e in row["events"] if e["kind"] == "lookalike"}
    return sorted(out)


def event_label(event: dict) -> str:
    return event["kind"] if event["op"] == "distractor" else event["op"]


def units(row: dict, episode: int) -> list[Unit]:
    """Every sentence of ``row``'s context in reading order, masked and labelled."""
    ctx, domain = row["context"], row["domain"]
    surf = episode_surfaces(row)
    marks = [(e["start"], e["end"], event_label(e)) for e in row["events"] if e["start"] >= 0]
    marks += [(q["start"], q["end"], None) for q in row["queries"] if q["start"] >= 0]
    marks.sort()
    out: list[Unit] = []
    pos = 0
    for start, end, label in [*marks, (len(ctx), len(ctx), None)]:
        for m in _sentences(ctx, pos, start):
            out.append(Unit(mask_keys(ctx[m[0]:m[1]], surf, domain), FILLER, m[0], m[1], episode))
        if label is not None:
            out.append(Unit(mask_keys(ctx[start:end], surf, domain), label, start, end, episode))
        pos = max(pos, end)
    return out


def _sentences(ctx: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """Spans of the sentences of ``ctx[lo:hi]``, stripped."""
    out = []
    piece = ctx[lo:hi]
    at = 0
    for part in _SENTENCE_END.split(piece):
        i = piece.index(part, at)
        at = i + len(part)
        s = part.strip()
        if s:
            j = i + part.index(s)
            out.append((lo + j, lo + j + len(s)))
    return out
