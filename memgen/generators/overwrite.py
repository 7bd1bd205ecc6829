"""``overwrite``: keys written, then overwritten a random number of times (2 overwrites per key
on average); queries ask the latest value of overwritten keys first.  Trap: a stale value."""

from __future__ import annotations

import numpy as np

from memgen.generators.knobs import Knobs, Plan, pick, plan, scale
from memgen.generators.registry import register_family


@register_family("overwrite",
                 description="keys written, then overwritten several times; queries ask the latest value")
def overwrite(k: Knobs, length: int) -> Plan:
    n = pick(k.keys, scale(length))
    return plan(k, n, overwrites=2 * n,
                priority=lambda f: np.where(f.values >= 2, 1 + np.minimum(f.values, 8), np.where(f.written, 0, -1)))
