"""``discard``: half of the keys are deleted after being written; half of those are written
again later.  Queries ask deleted keys first: the answer is unknown, or the value written
after the delete.  Trap: a value the key held before its delete."""

import numpy as np

from . import Knobs, Plan, pick, register_family, scale


@register_family("discard")
def discard(k: Knobs, length: int) -> Plan:
    n = pick(k.keys, scale(length))
    return Plan(
        keys=n, absent=pick(k.absent_keys, 0), overwrites=pick(k.overwrites, n // 2),
        distractors=pick(k.distractors, 0), kinds=k.distractor_kinds,
        silent_share=pick(k.silent_share, 0.0), deletes=pick(k.deletes, max(1, n // 2)),
        rewrite_share=pick(k.rewrite_share, 0.5), queries=pick(k.queries, min(n, 64)),
        interleaved=k.query_position == "interleaved", max_version=k.max_version,
        priority=lambda f: np.where(f.deleted, 2, np.where(f.written, 1, -1)),
    )
