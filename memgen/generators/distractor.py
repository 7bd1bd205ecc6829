"""``distractor``: keys written once, plus statements that must not change memory (negated,
hypothetical, unconfirmed, rejected, lookalike), two per key on average, some of them about
keys that are never written; queries ask the distracted keys first.  Trap: the distractor's
value."""

import numpy as np

from . import Knobs, Plan, pick, register_family, scale


@register_family("distractor")
def distractor(k: Knobs, length: int) -> Plan:
    n = pick(k.keys, scale(length))
    return Plan(
        keys=n, absent=pick(k.absent_keys, max(1, n // 8)), overwrites=pick(k.overwrites, 0),
        distractors=pick(k.distractors, 2 * n), kinds=k.distractor_kinds, distract_absent=True,
        silent_share=pick(k.silent_share, 0.0), deletes=pick(k.deletes, 0),
        rewrite_share=pick(k.rewrite_share, 0.0), queries=pick(k.queries, min(n, 64)),
        interleaved=k.query_position == "interleaved", max_version=k.max_version,
        priority=lambda f: np.where(f.distracted, 2, np.where(f.written, 1, -1)),
    )
