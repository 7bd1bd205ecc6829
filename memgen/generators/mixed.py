"""``mixed``: every op at once (overwrites, distractors of every kind, silent writes, deletes
and re-writes, never-written keys) and every ask; each query carries its own probe."""

from __future__ import annotations

import numpy as np

from memgen.generators.knobs import Knobs, Plan, pick, plan, scale
from memgen.generators.registry import register_family


@register_family("mixed",
                 description="every op and every ask at once; each query carries its own probe")
def mixed(k: Knobs, length: int) -> Plan:
    n = pick(k.keys, scale(length))
    return plan(k, n, absent=max(1, n // 8), overwrites=n, distractors=n, distract_absent=True, silent_share=0.25,
                deletes=max(1, n // 4), rewrite_share=0.5, ask_weights=(0.6, 0.2, 0.2),
                priority=lambda f: np.where(f.written | f.distracted, 1, 0))
