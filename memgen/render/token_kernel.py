"""The compiled fast path of writing items into the token stream: the same ids as
:func:`memgen.render.token.item_tokens` followed by its scatter, written in one numba loop
straight into ``input_ids`` (no ``(B, N, event_length)`` token array in between).

Like every twin (:mod:`memgen.ir.jit`), it is used for large batches when numba is available,
and the tests check it writes the same bytes as the numpy path.
"""

from __future__ import annotations

import numpy as np

from memgen.format.codes import ASK_LATEST, ASK_PREVIOUS, ITEM_DELETE, ITEM_DISTRACTOR, ITEM_QUERY, ITEM_SET
from memgen.format.vocab import (
    ANSWER_SLOT,
    ASK_LATEST_TOKEN,
    ASK_PREVIOUS_TOKEN,
    DELETE,
    KIND_MARKERS,
    QUERY,
    VERSION_OFFSET,
    WRITE,
    Vocab,
)
from memgen.ir import jit
from memgen.ir.program import Program


@jit.kernel
def _write(ids, T, start, item, key, alias, value, silent, kind, ask, k, markers, key_length, key_tokens,
           key_offset, value_offset):  # pragma: no cover - compiled
    """Write every item of the (B, N) program (flat arrays) at its ``start`` in row b of the
    flat (B, T) ``ids``.  Layouts: see :mod:`memgen.format.vocab`."""
    N = start.size // (ids.size // T)
    for f in range(start.size):
        it = item[f]
        pos = (f // N) * T + start[f]
        if it == ITEM_SET and silent[f]:
            pass  # a silent set starts with its key
        elif it == ITEM_SET:
            ids[pos] = WRITE
            pos += 1
        elif it == ITEM_DELETE:
            ids[pos] = DELETE
            pos += 1
        elif it == ITEM_DISTRACTOR:
            ids[pos] = markers[kind[f]]
            pos += 1
        elif it == ITEM_QUERY:
            ids[pos] = QUERY
            a = ask[f]
            ids[pos + 1] = (ASK_LATEST_TOKEN if a == ASK_LATEST
                            else ASK_PREVIOUS_TOKEN if a == ASK_PREVIOUS else VERSION_OFFSET + k[f] - 1)
            pos += 2
        else:  # padding, as the numpy path writes it: marker 0, key, value
            ids[pos] = 0
            pos += 1
        named = alias[f] if alias[f] >= 0 else key[f]
        for d in range(key_length - 1, -1, -1):  # most significant digit first
            ids[pos + d] = named % key_tokens + key_offset
            named //= key_tokens
        pos += key_length
        if it == ITEM_QUERY:
            ids[pos] = ANSWER_SLOT
        elif it != ITEM_DELETE:
            ids[pos] = value[f] + value_offset


def write_items(ids: np.ndarray, start: np.ndarray, p: Program, vocab: Vocab) -> None:
    """Write the tokens of every item of ``p`` into ``ids`` (B, T) at ``start`` (B, N), in place."""
    flat = lambda a: np.ascontiguousarray(a).reshape(-1)  # noqa: E731
    _write(ids.reshape(-1), ids.shape[1], flat(start), flat(p.item), flat(p.key), flat(p.alias),
           flat(p.value), flat(p.silent_write), flat(p.kind), flat(p.ask), flat(p.k), KIND_MARKERS,
           vocab.key_length, vocab.key_tokens, vocab.key_offset, vocab.value_offset)
