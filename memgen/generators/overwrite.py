"""``overwrite``: keys written, then overwritten a random number of times (2 overwrites per key
on average); queries ask the latest value of overwritten keys first.  Trap: a stale value."""

import numpy as np

from . import Knobs, Plan, pick, register_family, scale


@register_family("overwrite")
def overwrite(k: Knobs, length: int) -> Plan:
    n = pick(k.keys, scale(length))
    return Plan(
        keys=n, absent=pick(k.absent_keys, 0), overwrites=pick(k.overwrites, 2 * n),
        distractors=pick(k.distractors, 0), kinds=k.distractor_kinds,
        silent_share=pick(k.silent_share, 0.0), deletes=pick(k.deletes, 0),
        rewrite_share=pick(k.rewrite_share, 0.0), queries=pick(k.queries, min(n, 64)),
        interleaved=k.query_position == "interleaved", max_version=k.max_version,
        priority=lambda f: np.where(f.values >= 2, 1 + np.minimum(f.values, 8), np.where(f.written, 0, -1)),
    )
