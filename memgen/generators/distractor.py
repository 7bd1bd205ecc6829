"""``distractor``: keys written once, plus statements that must not change memory (negated,
hypothetical, unconfirmed, rejected, lookalike), two per key on average, some of them about
keys that are never written; queries ask the distracted keys first.  Trap: the distractor's
value."""

from __future__ import annotations

import numpy as np

from memgen.generators.knobs import Knobs, Plan, pick, plan, scale
from memgen.generators.registry import register_family


@register_family("distractor",
                 description="keys written once plus negated / hypothetical / unconfirmed / rejected / look-alike "
                             "statements that must not be stored")
def distractor(k: Knobs, length: int) -> Plan:
    n = pick(k.keys, scale(length))
    return plan(k, n, absent=max(1, n // 8), distractors=2 * n, distract_absent=True,
                priority=lambda f: np.where(f.distracted, 2, np.where(f.written, 1, -1)))
