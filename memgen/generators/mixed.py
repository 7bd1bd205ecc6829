"""``mixed``: every op at once (overwrites, distractors of every kind, silent writes, deletes
and re-writes, never-written keys) and every ask; each query carries its own probe."""

import numpy as np

from . import Knobs, Plan, pick, register_family, scale


@register_family("mixed")
def mixed(k: Knobs, length: int) -> Plan:
    n = pick(k.keys, scale(length))
    return Plan(
        keys=n, absent=pick(k.absent_keys, max(1, n // 8)), overwrites=pick(k.overwrites, n),
        distractors=pick(k.distractors, n), kinds=k.distractor_kinds, distract_absent=True,
        silent_share=pick(k.silent_share, 0.25), deletes=pick(k.deletes, max(1, n // 4)),
        rewrite_share=pick(k.rewrite_share, 0.5), queries=pick(k.queries, min(n, 64)),
        interleaved=k.query_position == "interleaved", max_version=k.max_version,
        ask_weights=(0.6, 0.2, 0.2),
        priority=lambda f: np.where(f.written | f.distracted, 1, 0),
    )
