"""The mechanisms on generated episodes: the hybrid is right on every family at several
lengths and seeds, its fallback is what answers no-write-signal queries, the fixed state
loses accuracy as keys outgrow its width, and each baseline shows its expected weakness."""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import TOKEN_VOCAB, VOCAB, generated_table

from memgen.evaluation.zoo import get_model
from memgen.format.codes import OUTCOMES, PROBES
from memgen.generators.registry import FAMILIES
from memgen.models.registry import ROUTES
from memgen.models.stream import TokenBatch
from memgen.scorers.frame import build_frame
from memgen.scorers.scoring import score


def scored(model: str, table) -> tuple[np.ndarray, np.ndarray, object]:
    """(outcome names, probe names, answers) of ``model`` on every query of ``table``."""
    m = get_model(model)
    answers = m.predict(TokenBatch.from_table(table, VOCAB, with_gold=m.reads_gold))
    frame = build_frame(table)
    res = score(frame, answers.prediction.tolist(), vocab=TOKEN_VOCAB)
    return np.asarray(OUTCOMES)[res.outcome], np.asarray(PROBES)[frame.probe], answers


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("length", [1024, 4096, 32768])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_hybrid_is_right_on_every_family(family, length, seed):
    outcome, _, _ = scored("hybrid", generated_table(family, length, 8, seed=seed))
    assert (outcome == "correct").all(), dict(zip(*np.unique(outcome, return_counts=True), strict=True))


@pytest.mark.parametrize("family", ["mixed", "no_write_signal", "discard"])
def test_hybrid_is_right_in_the_token_rendering_with_interleaved_queries(family):
    table = generated_table(family, 8192, 8, seed=4, rendering="token", query_position="interleaved")
    outcome, _, _ = scored("hybrid", table)
    assert (outcome == "correct").all()


def test_the_fallback_answers_no_write_signal_queries():
    table = generated_table("no_write_signal", 4096, 16, seed=3)
    outcome, probe, answers = scored("hybrid", table)
    routes = np.asarray(ROUTES)[answers.route]
    silent = probe == "no_write_signal"
    assert silent.sum() > 50
    assert (routes[silent] == "fallback").all() and (outcome[silent] == "correct").all()
    assert (routes[~silent] == "slot").all()
    assert (answers.active_chunks[silent] >= 1).all()
    slots_outcome, _, _ = scored("slots_only", table)
    assert (slots_outcome[silent] == "false_absent").all()
    assert (slots_outcome[~silent] == "correct").all()


def test_fixed_state_capacity_falls_as_keys_outgrow_d():
    """d = 16: near-orthogonal keys while they are few, interference once they outnumber d."""
    acc = {}
    for keys in (4, 16, 64):
        table = generated_table("write", 16384, 12, seed=0, keys=keys, queries=keys)
        outcome, _, _ = scored("fixed_state:d=16", table)
        acc[keys] = (outcome == "correct").mean()
    assert acc[4] > acc[16] > acc[64], acc
    assert acc[4] >= 0.9 and acc[64] < 0.3, acc
    wide, _, _ = scored("fixed_state:d=256", generated_table("write", 16384, 12, seed=0, keys=64, queries=64))
    assert (wide == "correct").mean() >= 0.95  # the same keys fit a wider state


def test_fixed_state_has_no_history():
    outcome, probe, _ = scored("fixed_state", generated_table("version", 4096, 16, seed=2))
    wrong = outcome[probe == "version"]
    assert (wrong == "correct").mean() < 0.5
    assert set(np.unique(wrong)) <= {"correct", "wrong_version"}


@pytest.mark.parametrize("family, probe, failure", [
    ("overwrite", "overwrite", "stale"),
    ("version", "version", "wrong_version"),
    ("distractor", "distractor", "distractor"),
    ("discard", "discard", "resurrected"),
])
def test_sparse_fails_where_recency_or_markers_decide(family, probe, failure):
    outcome, probes, _ = scored("sparse", generated_table(family, 4096, 16, seed=6))
    mine = outcome[probes == probe]
    assert (mine == "correct").mean() < 0.6
    assert (mine == failure).sum() > 0


def test_sparse_is_right_when_a_key_is_stated_once():
    outcome, probes, _ = scored("sparse", generated_table("write", 4096, 16, seed=6))
    assert (outcome == "correct").all()
