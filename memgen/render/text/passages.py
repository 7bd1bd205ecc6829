"""Passages of the text rendering: the context cut on sentence boundaries into runs of at most
``size`` tokens (``memgen generate --rendering text --chunk-size N``), the text counterpart of
the chunk rendering's chunks (DESIGN.md section 5).

The cut points are the ends of the context's *units* (filler sentences, events, inline
questions, as :func:`memgen.render.text.episode.render_text` joins them), so no sentence and no
event is ever split.  Units are packed greedily: a unit whose tokens would take the passage
past ``size`` starts the next one, and a unit longer than ``size`` is a passage of its own.
Each unit is counted with the separator before it (a space or a paragraph break), as it sits
in the context (BPE tokenizers attach a space to the word after it), so for tokenizers whose
counts add up over pieces (cl100k, o200k) a passage's real count is the sum of its units'.

A passage is ``context[offsets[p]:offsets[p + 1]]``; ``offsets`` holds ``P + 1`` values from 0
to ``len(context)``; every passage but the first starts with the separator before its first
unit, so passages joined in reading order read as the context does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from memgen.format.errors import UsageError
from memgen.render.text.tokenizers import LengthCounter


def cut_passages(counter: LengthCounter, context: str, unit_spans: Sequence[tuple[int, int]],
                 size: int) -> tuple[int, ...]:
    """Passage offsets (P + 1 character offsets, 0 ... ``len(context)``) of ``context``, whose
    units sit at ``unit_spans`` (in reading order, covering the context with only separators
    between them), each passage at most ``size`` tokens of ``counter`` unless one unit alone
    is longer."""
    if size < 1:
        raise UsageError(f"--chunk-size {size}: a passage holds at least 1 token")
    if not context:
        return (0, 0)
    # unit i with the separator before it: context[end of unit i - 1 : end of unit i]
    starts = [0] + [e for _, e in unit_spans[:-1]]
    pieces = [context[a:b] for a, b in zip(starts, starts[1:] + [len(context)], strict=True)]
    counts = np.asarray(counter.count_many(pieces), dtype=np.int64)
    offsets = [0]
    filled = 0
    for start, n in zip(starts, counts.tolist(), strict=True):
        if filled and filled + n > size:
            offsets.append(start)
            filled = 0
        filled += n
    offsets.append(len(context))
    return tuple(offsets)


def passage_of(offsets: Sequence[int] | np.ndarray, at: np.ndarray) -> np.ndarray:
    """The passage holding each character offset ``at`` (int64; -1 where ``at`` is -1)."""
    at = np.asarray(at, dtype=np.int64)
    p = np.searchsorted(np.asarray(offsets, dtype=np.int64)[1:-1], at, side="right")
    return np.where(at >= 0, p, -1).astype(np.int64)


def passage_texts(context: str, offsets: Sequence[int]) -> list[str]:
    """The passages' texts, in reading order."""
    return [context[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
