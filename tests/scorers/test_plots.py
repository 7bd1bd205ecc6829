"""The interference curve (updates.png): a number of updates with enough queries keeps its own
point; only the small ones are pooled with their neighbours (issue 15, item 3)."""

from __future__ import annotations

from memgen.scorers.aggregate import Report
from memgen.scorers.plots import MIN_POINT, _pooled_updates, pool_bins


def _report(*models: dict[int, tuple[int, int]]) -> Report:
    """A report whose models hold only ``by_updates``: {k: (correct, total)}."""
    return Report({"models": [
        {"name": f"m{j}", "by_updates": {str(k): {"correct": c, "total": t} for k, (c, t) in m.items()}}
        for j, m in enumerate(models)]})


def test_a_small_first_bin_does_not_pool_the_curve_into_one_point():
    # the run: bins 1-3 hold 384, 452 and 285 queries, bin 0 fewer than 30
    xs, labels, per_model = _pooled_updates(_report({0: (3, 12), 1: (300, 384), 2: (350, 452), 3: (200, 285)}))
    assert labels == ["0-1", "2", "3"]
    assert xs == [0, 2, 3]
    assert per_model == [[(303, 396), (350, 452), (200, 285)]]


def test_every_bin_with_enough_queries_keeps_its_own_point():
    assert pool_bins([1, 2, 3, 4], [[40, 40, 40, 40]]) == [[1], [2], [3], [4]]


def test_small_bins_are_pooled_with_the_next_until_enough():
    assert pool_bins([0, 1, 2, 3, 4, 5], [[10, 100, 5, 5, 30, 40]]) == [[0, 1], [2, 3, 4], [5]]


def test_a_small_tail_joins_the_group_before_it():
    assert pool_bins([1, 2, 3, 4], [[100, 100, 10, 5]]) == [[1], [2, 3, 4]]
    xs, labels, _ = _pooled_updates(_report({1: (90, 100), 2: (80, 100), 3: (5, 10), 4: (1, 5)}))
    assert labels == ["1", "≥2"] and xs == [1, 2]


def test_every_model_needs_enough_queries_in_a_point():
    # a bin is small when any model has fewer than MIN_POINT queries there
    assert pool_bins([1, 2, 3], [[50, 50, 50], [50, 10, 50]]) == [[1], [2, 3]]


def test_too_few_queries_overall_is_one_pooled_point():
    assert pool_bins([0, 1, 2], [[5, 5, 5]]) == [[0, 1, 2]]
    assert pool_bins([], [[]]) == []
    assert pool_bins([3], [[MIN_POINT]]) == [[3]]


def test_model_names_from_files_are_plain_text_in_plots(tmp_path):
    """A name with mathtext ("$\\frac$" fails to parse) or control characters still plots."""
    from scorer_helpers import VOCAB, catalogue_episode, episodes_table, oracle_tokens

    from memgen.scorers.aggregate import report
    from memgen.scorers.frame import build_frame
    from memgen.scorers.plots import write_plots
    from memgen.scorers.scoring import score

    frame = build_frame(episodes_table([catalogue_episode()]))
    rep = report(score(frame, oracle_tokens(frame), vocab=VOCAB, name="$\\frac$ \x1b[31m"))
    assert all(p.stat().st_size > 10_000 for p in write_plots(rep, tmp_path))
