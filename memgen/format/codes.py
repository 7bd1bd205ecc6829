"""The codes of the contract, one table each: ops, distractor kinds, asks, probes, trap fields,
outcomes, and the program's item types.

Names are what is stored on disk; codes (indices into the name tables) are what the
vectorised and compiled paths carry.  The compiled kernels import these constants directly
(numba freezes a module's global integers at compile time), so every code is defined here once.
"""

from __future__ import annotations

#: event ops (DESIGN.md section 3); a ``silent_write`` is a write with no write signal
OPS = ("write", "overwrite", "silent_write", "delete", "distractor")
OP_WRITE, OP_OVERWRITE, OP_SILENT_WRITE, OP_DELETE, OP_DISTRACTOR = range(len(OPS))

#: distractor kinds; "" for every event that is not a distractor
KINDS = ("", "negated", "hypothetical", "unconfirmed", "rejected", "lookalike")
DISTRACTOR_KINDS = KINDS[1:]

#: query asks: the current value, the k-th value (1-based), the value before the current one
ASKS = ("latest", "version", "previous")
ASK_LATEST, ASK_VERSION, ASK_PREVIOUS = range(len(ASKS))

#: the failure mode a query tests
PROBES = ("write", "overwrite", "version", "distractor", "no_write_signal", "discard")
(PROBE_WRITE, PROBE_OVERWRITE, PROBE_VERSION, PROBE_DISTRACTOR, PROBE_NO_WRITE_SIGNAL,
 PROBE_DISCARD) = range(len(PROBES))

#: the value ids that a specific failure would return, per query
TRAP_FIELDS = ("stale", "distractor", "other_keys", "deleted")

#: what a prediction is classified as (DESIGN.md section 7), exactly one per query; the last two
#: are episodes a runner never got an answer for: its prompt did not fit the model's context
#: (``overflow``), or the server refused the request (``refused``)
OUTCOMES = (
    "correct",
    "stale",
    "wrong_version",
    "distractor",
    "cross_key",
    "resurrected",
    "false_absent",
    "missed_absent",
    "hallucinated",
    "unparsed",
    "overflow",
    "refused",
)
(CORRECT, STALE, WRONG_VERSION, DISTRACTOR, CROSS_KEY, RESURRECTED, FALSE_ABSENT, MISSED_ABSENT,
 HALLUCINATED, UNPARSED, OVERFLOW, REFUSED) = range(len(OUTCOMES))
#: the outcomes a runner records for a whole episode in its predictions file
RUN_OUTCOMES = ("overflow", "refused")

#: value id of an absent answer (key never written, or deleted)
ABSENT = -1
ABSENT_TEXT = "unknown"

# Items of a program, before replay labels them.  A "set" is any value-setting event; replay
# decides whether it is a write or an overwrite (sets with no write signal become silent_write).
ITEM_PAD, ITEM_SET, ITEM_DELETE, ITEM_DISTRACTOR, ITEM_QUERY = range(5)
