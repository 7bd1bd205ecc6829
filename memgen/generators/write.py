"""``write``: keys written once with a write signal; queries ask their value.  A few
never-written keys are asked too (answer: unknown)."""

from __future__ import annotations

import numpy as np

from memgen.generators.knobs import Knobs, Plan, pick, plan, scale
from memgen.generators.registry import register_family


@register_family("write",
                 description="keys written once with a write signal; queries ask their values")
def write(k: Knobs, length: int) -> Plan:
    n = pick(k.keys, scale(length))
    return plan(k, n, absent=max(1, n // 8),
                # written keys first; never-written ones (absent answers) after them
                priority=lambda f: np.where(f.written, 2, 1))
