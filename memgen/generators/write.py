"""``write``: keys written once with a write signal; queries ask their value.  A few
never-written keys are asked too (answer: unknown)."""

import numpy as np

from . import Knobs, Plan, pick, register_family, scale


@register_family("write")
def write(k: Knobs, length: int) -> Plan:
    n = pick(k.keys, scale(length))
    return Plan(
        keys=n, absent=pick(k.absent_keys, max(1, n // 8)), overwrites=pick(k.overwrites, 0),
        distractors=pick(k.distractors, 0), kinds=k.distractor_kinds,
        silent_share=pick(k.silent_share, 0.0), deletes=pick(k.deletes, 0),
        rewrite_share=pick(k.rewrite_share, 0.0), queries=pick(k.queries, min(n, 64)),
        interleaved=k.query_position == "interleaved", max_version=k.max_version,
        # written keys first; never-written ones (absent answers) after them
        priority=lambda f: np.where(f.written, 2, 1),
    )
