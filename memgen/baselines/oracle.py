"""``oracle``: answers every query with the stored gold answer (the value ``replay()`` gave).

A sanity ceiling, not a memory: it is the one model that reads the IR's answers
(``reads_gold``), so it checks the evaluation path end to end.  Anything below 100% for it
means the predictions, the token mapping or the scorer disagree with the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memgen.format.vocab import ABSENT_TOKEN
from memgen.models.registry import ROUTE_GOLD, Answers, register_model
from memgen.models.stream import TokenBatch


@register_model("oracle")
@dataclass(frozen=True)
class Oracle:
    reads_gold = True

    def predict(self, batch: TokenBatch) -> Answers:
        assert batch.gold is not None, "the oracle's batch carries the gold answers"
        gold = batch.gold
        prediction = np.where(gold >= 0, gold + batch.vocab.value_offset, ABSENT_TOKEN).astype(np.int64)
        n = gold.size
        return Answers(prediction, np.full(n, ROUTE_GOLD, dtype=np.int8), np.zeros(n, dtype=np.int32))
