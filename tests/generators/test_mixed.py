"""mixed: queries balanced over the six probes."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("length", [2048, 3072, 8192, 32768])
def test_mixed_gives_every_probe_at_least_twelve_percent_of_its_queries(length):
    from collections import Counter

    from memgen.format.codes import ITEM_QUERY, PROBES
    from memgen.format.vocab import Vocab
    from memgen.generators.build import build_program
    from memgen.generators.knobs import Knobs
    from memgen.generators.registry import get_family
    from memgen.ir.rng import Streams, episode_seeds

    vocab = Vocab()
    program = build_program(get_family("mixed")(Knobs(), length), Streams(episode_seeds(3, 0, 120)),
                            vocab.key_space, vocab.key_tokens, vocab.values)
    probes = Counter(PROBES[i] for i in program.probe[program.item == ITEM_QUERY].tolist())
    total = sum(probes.values())
    assert set(probes) == set(PROBES)
    assert min(probes.values()) / total >= 0.12, probes


def test_mixed_asks_keys_round_robin_over_their_latest_probes():
    from memgen.generators.knobs import KeyFacts
    from memgen.generators.mixed import balanced, latest_probe

    facts = KeyFacts(written=np.array([[1, 1, 1, 1, 1, 1, 0]], bool),
                     values=np.array([[1, 3, 1, 2, 1, 1, 0]]),
                     distracted=np.array([[0, 0, 1, 0, 0, 1, 0]], bool),
                     deleted=np.array([[1, 0, 0, 0, 0, 0, 0]], bool),
                     holds=np.array([[0, 1, 1, 1, 1, 1, 0]], bool), silent_write=np.zeros((1, 7), bool))
    assert latest_probe(facts).tolist() == [[0, 3, 1, 3, 4, 1, -1]]
    # the first key of each probe shares the top level, the second of a probe comes next
    assert balanced(facts).tolist() == [[7, 7, 7, 6, 7, 6, -1]]
