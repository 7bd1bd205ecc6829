"""No-memory answering rules, scored per probe.

Each rule reads the context up to the question (the whole context for a question asked after
it) and looks only at the sentences that name the asked key's exact surface:

* ``last``: the last value-shaped string in those sentences (``unknown`` if there is none);
* ``first``: the first one;
* ``unknown``: always ``unknown``.

A rule that reaches a high accuracy on a probe answers it without tracking what was stated as
fact, so the probe does not measure what its name says.
"""

from __future__ import annotations

from collections import defaultdict

from memgen.audit.units import Unit, shapes
from memgen.format.codes import ABSENT_TEXT
from memgen.render.text.domain import load_domain

RULES = ("last", "first", "unknown")


def answers(row: dict, sentences: list[Unit]) -> list[dict[str, str]]:
    """What each rule answers to each question of ``row`` (a dataset row), given its sentences
    (:func:`memgen.audit.units.units`, for their spans)."""
    ctx, domain = row["context"], row["domain"]
    dom = load_domain(domain)
    value_shape = shapes(domain)[1]
    out = []
    for q in row["queries"]:
        key = dom.key_surface(q["key"])
        limit = q["start"] if q["start"] >= 0 else len(ctx)
        found: list[str] = []
        for u in sentences:
            if u.end > limit:
                break
            text = ctx[u.start:u.end]
            if key in text:
                found += value_shape.findall(text.replace(key, " "))
        out.append({"last": found[-1] if found else ABSENT_TEXT, "first": found[0] if found else ABSENT_TEXT,
                    "unknown": ABSENT_TEXT})
    return out


class Tally:
    """Correct answers of each rule per probe."""

    def __init__(self):
        self.n: dict[str, int] = defaultdict(int)
        self.right: dict[tuple[str, str], int] = defaultdict(int)

    def add(self, row: dict, sentences: list[Unit]) -> None:
        for q, guess in zip(row["queries"], answers(row, sentences), strict=True):
            self.n[q["probe"]] += 1
            for rule in RULES:
                self.right[(q["probe"], rule)] += guess[rule] == q["answer_text"]

    def accuracy(self) -> dict[str, dict[str, float]]:
        """probe -> rule -> accuracy, probes sorted."""
        return {p: {r: self.right[(p, r)] / self.n[p] for r in RULES} for p in sorted(self.n)}
