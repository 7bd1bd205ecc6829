"""``version``: keys with several values (3 overwrites per key on average); queries ask the
k-th value a key ever had or the value before the current one.  Trap: another version."""

import numpy as np

from . import Knobs, Plan, pick, register_family, scale


@register_family("version")
def version(k: Knobs, length: int) -> Plan:
    n = pick(k.keys, scale(length))
    return Plan(
        keys=n, absent=pick(k.absent_keys, 0), overwrites=pick(k.overwrites, 3 * n),
        distractors=pick(k.distractors, 0), kinds=k.distractor_kinds,
        silent_share=pick(k.silent_share, 0.0), deletes=pick(k.deletes, 0),
        rewrite_share=pick(k.rewrite_share, 0.0), queries=pick(k.queries, min(n, 64)),
        interleaved=k.query_position == "interleaved", max_version=k.max_version,
        ask_weights=(0.0, 0.6, 0.4),
        priority=lambda f: np.where(f.values >= 2, 2, np.where(f.written, 1, -1)),
    )
