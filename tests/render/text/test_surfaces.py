"""Surface forms: distinct per id, look-alikes never a key, stable across calls."""

from __future__ import annotations

import numpy as np
import pytest

from memgen.format.errors import UsageError
from memgen.render.text.domain import available_domains, key_surface, load_domain, lookalike_surface, value_surface
from memgen.scorers.normalise import normalise

DOMAINS = available_domains()


def test_at_least_five_domains_ship():
    assert {"inventory", "accounts", "lab_notebook", "travel", "server_config"} <= set(DOMAINS)


@pytest.mark.parametrize("domain", DOMAINS)
def test_distinct_key_ids_have_distinct_surfaces(domain):
    keys = load_domain(domain).keys
    s = keys.surfaces(np.arange(65_537))
    assert len(set(s)) == len(s)
    assert keys.capacity >= 131_072


@pytest.mark.parametrize("domain", DOMAINS)
def test_distinct_value_ids_have_distinct_surfaces_even_after_normalising(domain):
    values = load_domain(domain).values
    s = values.surfaces(np.arange(131_072))
    assert len(set(s)) == len(s)
    assert len({normalise(x) for x in s}) == len(s)  # the scorer can tell every value apart


@pytest.mark.parametrize("domain", DOMAINS)
def test_lookalike_differs_by_one_character_or_word_and_is_never_a_key(domain):
    keys = load_domain(domain).keys
    all_keys = set(keys.surfaces(np.arange(keys.capacity)))
    rng = np.random.default_rng(1)
    for key_id, alias in zip(rng.integers(0, 65_536, 300), rng.integers(0, 65_536, 300), strict=True):
        key, look = key_surface(domain, int(key_id)), lookalike_surface(domain, int(key_id), int(alias))
        assert look not in all_keys
        kw, lw = key.split(" "), look.split(" ")
        assert len(kw) == len(lw)
        diff = [(a, b) for a, b in zip(kw, lw, strict=True) if a != b]
        assert len(diff) == 1
        a, b = diff[0]
        modes = {la.mode for la in keys.lookalikes}
        assert _one_edit(a, b) or "words" in modes, (key, look)  # one character, or one word


def _one_edit(a: str, b: str) -> bool:
    """True if ``b`` is ``a`` with one character replaced, inserted or removed."""
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long_ = sorted((a, b), key=len)
    return len(long_) - len(short) == 1 and any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


@pytest.mark.parametrize("domain", DOMAINS)
def test_surfaces_are_a_function_of_domain_and_id_only(domain):
    assert key_surface(domain, 12_345) == load_domain(domain).keys.surfaces([12_345])[0]
    assert value_surface(domain, 99_999) == load_domain(domain).values.surface(99_999)
    assert lookalike_surface(domain, 5, 6) == lookalike_surface(domain, 5, 6)


def test_surfaces_of_different_domains_differ():
    assert len({value_surface(d, 7) for d in DOMAINS}) == len(DOMAINS)


def test_id_outside_the_domain_is_a_usage_error():
    cap = load_domain("inventory").keys.capacity
    with pytest.raises(UsageError, match="outside"):
        key_surface("inventory", cap)
    with pytest.raises(UsageError, match="unknown domain 'atlantis'"):
        key_surface("atlantis", 1)
