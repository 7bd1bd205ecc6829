"""``mixed``: every op at once (overwrites, distractors of every kind, silent writes, deletes
and re-writes, never-written keys) and every ask; each query carries its own probe.

Queries are balanced over the probes: each key falls in the probe its latest ask would have
(:func:`latest_probe`, the IR's probe precedence), and keys are asked round-robin over those
five groups (one of each, in random order, then a second of each, ...), while a fifth of the
asks are version or previous asks (the ``version`` probe).  At the default knobs every probe
gets at least 12% of the queries (the README's family table gives the measured shares)."""

from __future__ import annotations

import numpy as np

from memgen.generators.knobs import KeyFacts, Knobs, Plan, pick, plan, scale
from memgen.generators.registry import register_family

#: the probes of a latest ask, in the IR's precedence order
LATEST_PROBES = ("discard", "distractor", "no_write_signal", "overwrite", "write")


def latest_probe(f: KeyFacts) -> np.ndarray:
    """(B, keys) index into :data:`LATEST_PROBES` of the probe a latest ask after every event
    would have; -1 for a key nothing ever names (never written, never distracted)."""
    return np.select([f.deleted, f.distracted, f.silent_write & f.holds, f.values >= 2, f.written],
                     [0, 1, 2, 3, 4], default=-1)


def balanced(f: KeyFacts) -> np.ndarray:
    """Priority that asks keys round-robin over their latest probes: a key's level is its rank
    among the keys of its probe (by key index, itself random), higher levels asked first."""
    probe = latest_probe(f)
    rank = np.zeros(probe.shape, dtype=np.int64)
    for p in range(len(LATEST_PROBES)):
        mine = probe == p
        rank = np.where(mine, np.cumsum(mine, axis=1) - 1, rank)
    return np.where(probe >= 0, probe.shape[1] - rank, -1)


@register_family("mixed",
                 description="every op and every ask at once; each query carries its own probe, "
                             "queries balanced over the six probes")
def mixed(k: Knobs, length: int) -> Plan:
    n = pick(k.keys, scale(length))
    return plan(k, n, absent=max(1, n // 8), overwrites=int(0.8 * n), distractors=max(1, n // 3),
                distract_absent=True, silent_share=0.4, deletes=max(1, (n + 2) // 5), rewrite_share=0.5,
                ask_weights=(0.76, 0.12, 0.12), priority=balanced)
