"""The trap-rank outcome for each kind of passage on constructed rankings, the passage kinds read
from the IR's events, and recall@k / MRR by their definitions."""

from __future__ import annotations

import numpy as np
import pytest
from hand import hand_episode, hand_row

from memgen.selection.episodes import PASSAGE_KINDS, passage_kinds, text_episode
from memgen.selection.metrics import TRAPS, rank, score_ranking

KEY, OTHER_KEY = 7, 8


def _ev(op, key, value, chunk, kind="", end=10):
    return {"op": op, "key": key, "value": value, "kind": kind, "chunk": chunk, "end": end}


def _kinds_row() -> dict:
    """Passage 0 holds the deciding write; 1 a value from before the key's delete and the delete;
    2 a stale value; 3 a distractor; 4 a lookalike; 5 another key's write; 6 only an event after
    the query; 7 nothing."""
    events = [
        _ev("write", KEY, 1, 1),  # a value the key held before its delete
        _ev("delete", KEY, -1, 1),
        _ev("write", KEY, 2, 2),  # stale: overwritten below
        _ev("distractor", KEY, 3, 3, "negated"),
        _ev("distractor", KEY, 4, 4, "lookalike"),
        _ev("write", OTHER_KEY, 5, 5),
        _ev("write", KEY, 6, 0),  # the deciding overwrite (chunk 0: the order of chunks does not matter here)
        _ev("distractor", KEY, 9, 6, "rejected", end=500),  # after the query: does not count
    ]
    query = {"key": KEY, "start": 100, "traps": {"deleted": [1], "stale": [1, 2], "distractor": [3, 4],
                                                 "other_keys": [5]}}
    return {"events": events, "queries": [query]}


def test_passage_kinds_follow_the_events_before_the_query():
    kinds = passage_kinds(_kinds_row(), 8)[0]
    assert [PASSAGE_KINDS[k] for k in kinds] == ["stale", "deleted", "stale", "distractor", "lookalike",
                                                  "other_key", "filler", "filler"]


def _episode_with_kinds(kinds: list[str]):
    """The hand episode (evidence: passage 2) with the passage kinds given for its query."""
    ep = hand_episode()
    ep.kinds = np.asarray([[PASSAGE_KINDS.index(k) for k in kinds]], dtype=np.int8)
    return ep


@pytest.mark.parametrize("kind", PASSAGE_KINDS)
def test_the_trap_is_the_kind_of_the_passage_ranked_above_the_evidence(kind):
    ep = _episode_with_kinds(["filler", "other_key", "filler", kind, "filler", "filler"])
    scores = np.asarray([[0.1, 0.2, 0.5, 0.9, 0.0, 0.0]])  # passage 3 first, the evidence second
    s = score_ranking(ep, rank(scores, ep.before), 8)
    assert TRAPS[s.trap[0]] == kind
    assert s.rr[0] == 0.5 and s.recall[0].tolist() == [0.0, 1.0, 1.0, 1.0]


def test_evidence_first_is_none_and_nothing_ranked_is_unranked():
    ep = _episode_with_kinds(["stale"] * 6)
    first = score_ranking(ep, rank(np.asarray([[0, 0, 1.0, 0, 0, 0]]), ep.before), 8)
    assert TRAPS[first.trap[0]] == "none" and first.rr[0] == 1.0
    nothing = score_ranking(ep, rank(np.full((1, 6), -np.inf), ep.before), 8)
    assert TRAPS[nothing.trap[0]] == "unranked" and nothing.rr[0] == 0.0 and (nothing.recall == 0).all()


def test_ties_go_to_the_earlier_passage_and_recall_counts_every_evidence_passage():
    ep = hand_episode()
    ep.evidence = [np.asarray([1, 4])]  # a version ask: two evidence passages
    r = rank(np.zeros((1, 6)), ep.before)
    assert r.top(0, 6).tolist() == [0, 1, 2, 3, 4, 5]
    s = score_ranking(ep, r, 3)
    assert s.recall[0].tolist() == [0.0, 0.5, 0.5, 1.0] and s.recall_k[0] == 0.5 and s.rr[0] == 0.5


def test_a_query_without_evidence_is_left_out_of_the_means():
    row = hand_row()
    row["queries"][0]["evidence"] = []
    s = score_ranking(ep := text_episode(row, "hand"), rank(np.zeros((1, 6)), ep.before), 8)
    assert np.isnan(s.rr[0]) and np.isnan(s.recall[0]).all() and s.trap[0] == -1
