"""The fixed state's chunked delta rule equals the one-write-at-a-time reference."""

from __future__ import annotations

import numpy as np
import pytest

from memgen.baselines.fixed_state import delta_rule_chunked, delta_rule_naive, unit_vectors


def _case(m: int, d: int, q: int, seed: int):
    rng = np.random.default_rng(seed)
    keys = unit_vectors(rng.integers(0, 50, m), d, "key")  # repeated keys: overwrites
    targets = np.where(rng.random((m, 1)) < 0.1, 0.0, unit_vectors(rng.integers(0, 1000, m), d, "value"))
    beta = np.where(rng.random(m) < 0.2, 0.0, rng.choice([1.0, 0.5], m))
    read_keys = unit_vectors(rng.integers(0, 60, q), d, "key")
    read_after = np.sort(rng.integers(0, m + 1, q))
    read_after[-1] = m  # a read after every write
    return keys, targets, beta, read_keys, read_after


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
@pytest.mark.parametrize("m, d", [(0, 8), (1, 8), (64, 8), (300, 16), (200, 128)])
def test_chunked_delta_rule_equals_the_reference(m, d, chunk):
    args = _case(m, d, 40, seed=m + d)
    ref = delta_rule_naive(*args)
    got = delta_rule_chunked(*args, chunk=chunk)
    assert np.isfinite(got).all()
    rms = np.sqrt(np.mean((got - ref) ** 2)) / max(np.sqrt(np.mean(ref ** 2)), 1e-12)
    assert rms < 1e-9


def test_a_write_with_unit_gate_is_read_back_exactly():
    keys = unit_vectors(np.array([3, 4, 3]), 32, "key")
    targets = unit_vectors(np.array([10, 11, 12]), 32, "value")
    reads = delta_rule_chunked(keys, targets, np.ones(3), keys[[0, 0]], np.array([1, 3]))
    assert np.allclose(reads[0], targets[0]) and np.allclose(reads[1], targets[2])


def test_unit_vectors_are_fixed_and_unit():
    a = unit_vectors(np.arange(5), 64, "key")
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0)
    assert np.array_equal(a, unit_vectors(np.arange(5), 64, "key"))
    assert not np.allclose(a, unit_vectors(np.arange(5), 64, "value"))
