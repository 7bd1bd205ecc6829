"""Confidence intervals that account for questions sharing an episode: a cluster bootstrap over
episodes (fixed seed) measures the design effect, and the Wilson interval is taken at the
effective sample size (docs/scoring.md, "Intervals")."""

from __future__ import annotations

import numpy as np
import pytest
from scorer_helpers import VOCAB, catalogue_episode, episodes_table, oracle_tokens

from memgen.scorers.aggregate import bootstrap_variances, clustered_interval, report, wilson
from memgen.scorers.frame import build_frame
from memgen.scorers.scoring import score

EPISODES = 12  # of 7 queries each


@pytest.fixture(scope="module")
def frame():
    return build_frame(episodes_table([catalogue_episode(f"ep-{i}") for i in range(EPISODES)]))


def wrong_in(frame, rows: set[int], queries: set[int] | None = None) -> np.ndarray:
    """Oracle token answers, wrong for the queries of ``rows`` (all of them, or the queries at
    positions ``queries`` within each episode)."""
    preds = oracle_tokens(frame)
    for i in range(frame.n_queries):
        r = int(frame.row[i])
        if r in rows and (queries is None or i - frame.q_offsets[r] in queries):
            preds[i] = VOCAB.absent_id if frame.answer[i] >= 0 else VOCAB.value_offset + 500
    return preds


def test_episodes_all_right_or_all_wrong_widen_the_interval(frame):
    r = score(frame, wrong_in(frame, set(range(0, EPISODES, 2))), vocab=VOCAB)
    overall = report(r).models[0]["overall"]
    assert (overall["correct"], overall["total"], overall["episodes"]) == (42, 84, 12)
    lo, hi = overall["ci95"]
    w_lo, w_hi = wilson(42, 84)
    # 7 questions per episode that stand or fall together: the variance is about 7 times that
    # of independent questions, so the interval is about sqrt(7) times as wide
    assert 4.0 < overall["design_effect"] < 10.0
    assert hi - lo > 2.0 * (w_hi - w_lo)
    assert lo < 0.5 < hi


def test_episodes_of_equal_accuracy_keep_the_wilson_interval(frame):
    # in every episode the same 3 of 7 questions are wrong: episodes do not differ, deff is 1
    r = score(frame, wrong_in(frame, set(range(EPISODES)), {0, 3, 4}), vocab=VOCAB)
    overall = report(r).models[0]["overall"]
    assert overall["correct"] == 48
    assert overall["design_effect"] == 1.0
    assert overall["ci95"] == pytest.approx(list(wilson(48, 84)))


def test_all_right_keeps_the_wilson_interval(frame):
    overall = report(score(frame, oracle_tokens(frame), vocab=VOCAB)).models[0]["overall"]
    assert overall["design_effect"] == 1.0 and overall["ci95"] == pytest.approx(list(wilson(84, 84)))


def test_bootstrap_variance_is_the_variance_between_episodes():
    # 40 episodes of 10 questions; episode e has accuracy a_e.  The bootstrap variance of the
    # pooled accuracy is var(a) / E (times (E - 1) / E): checked within the resampling noise
    rng = np.random.default_rng(3)
    n_ep, size = 40, 10
    acc = rng.uniform(0, 1, n_ep).round(1)
    (var,) = bootstrap_variances(np.full((n_ep, 1), size), [(acc * size)[:, None]])
    expected = acc.var() / n_ep
    assert var[0] == pytest.approx(expected, rel=0.15)


def test_resamples_leave_out_cells_they_do_not_reach():
    # column 1 is held by episode 2 alone: every resample that reaches it gives the same accuracy
    total = np.array([[2, 0], [2, 0], [0, 1]])
    right = np.array([[1, 0], [2, 0], [0, 1]])
    (var,) = bootstrap_variances(total, [right])
    assert var[1] == 0.0 and var[0] > 0.0


def test_intervals_are_the_same_on_every_run_and_for_any_company(frame):
    a = score(frame, wrong_in(frame, {1, 2, 7}), vocab=VOCAB, name="a")
    b = score(frame, wrong_in(frame, {0, 5}, {1, 2}), vocab=VOCAB, name="b")
    alone = report(a).models[0]
    assert report(a).models[0] == alone
    assert report([b, a]).models[1] == alone  # another model in the report changes nothing


def test_clustered_interval_edges():
    ci, deff = clustered_interval(0, 0, 0.1)
    assert np.isnan(deff) and all(np.isnan(ci))
    # variance below the binomial one is sampling noise: the interval is never narrower than Wilson's
    ci, deff = clustered_interval(30, 60, 1e-9)
    assert deff == 1.0 and ci == pytest.approx(wilson(30, 60))
    ci, deff = clustered_interval(30, 60, 4 * 0.25 / 60)
    assert deff == pytest.approx(4.0) and ci == pytest.approx(wilson(7.5, 15))
