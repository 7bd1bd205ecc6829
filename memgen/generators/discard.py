"""``discard``: half of the keys are deleted after being written; half of those are written
again later.  Queries ask deleted keys first: the answer is unknown, or the value written
after the delete.  Trap: a value the key held before its delete."""

from __future__ import annotations

import numpy as np

from memgen.generators.knobs import Knobs, Plan, pick, plan, scale
from memgen.generators.registry import register_family


@register_family("discard",
                 description="keys deleted (some written again later); queries ask deleted and re-written keys")
def discard(k: Knobs, length: int) -> Plan:
    n = pick(k.keys, scale(length))
    return plan(k, n, overwrites=n // 2, deletes=max(1, n // 2), rewrite_share=0.5,
                priority=lambda f: np.where(f.deleted, 2, np.where(f.written, 1, -1)))
