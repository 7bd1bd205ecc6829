"""``version``: keys with several values (3 overwrites per key on average); queries ask the
k-th value a key ever had or the value before the current one.  Trap: another version."""

from __future__ import annotations

import numpy as np

from memgen.generators.knobs import Knobs, Plan, pick, plan, scale
from memgen.generators.registry import register_family


@register_family("version",
                 description="keys with several values; queries ask the k-th value or the one before the current")
def version(k: Knobs, length: int) -> Plan:
    n = pick(k.keys, scale(length))
    return plan(k, n, overwrites=3 * n, ask_weights=(0.0, 0.6, 0.4),
                priority=lambda f: np.where(f.values >= 2, 2, np.where(f.written, 1, -1)))
