"""``no_write_signal``: half of the keys are written in passing, with no write marker; queries
ask those first.  A memory that stores only flagged facts misses them."""

import numpy as np

from . import Knobs, Plan, pick, register_family, scale


@register_family("no_write_signal")
def no_write_signal(k: Knobs, length: int) -> Plan:
    n = pick(k.keys, scale(length))
    return Plan(
        keys=n, absent=pick(k.absent_keys, 0), overwrites=pick(k.overwrites, 0),
        distractors=pick(k.distractors, 0), kinds=k.distractor_kinds,
        silent_share=pick(k.silent_share, 0.5), silent_per_key=True, deletes=pick(k.deletes, 0),
        rewrite_share=pick(k.rewrite_share, 0.0), queries=pick(k.queries, min(n, 64)),
        interleaved=k.query_position == "interleaved", max_version=k.max_version,
        priority=lambda f: np.where(f.silent & f.holds, 2, np.where(f.written, 1, -1)),
    )
