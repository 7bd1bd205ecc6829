"""``no_write_signal``: half of the keys are written in passing, with no write marker; queries
ask those first.  A memory that stores only flagged facts misses them."""

from __future__ import annotations

import numpy as np

from memgen.generators.knobs import Knobs, Plan, pick, plan, scale
from memgen.generators.registry import register_family


@register_family("no_write_signal",
                 description="some writes are stated in passing, with no write signal")
def no_write_signal(k: Knobs, length: int) -> Plan:
    n = pick(k.keys, scale(length))
    return plan(k, n, silent_share=0.5, silent_write_per_key=True,
                priority=lambda f: np.where(f.silent_write & f.holds, 2, np.where(f.written, 1, -1)))
