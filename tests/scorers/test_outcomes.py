"""Every outcome of DESIGN.md section 7, each reached by a constructed prediction, and the
precedence between them (vectorised classifier against a one-query-at-a-time reference)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scorer_helpers import VOCAB, catalogue_episode, episodes_table, oracle_tokens, reference, tok

from memgen.format.codes import ASKS, OUTCOMES
from memgen.ir.episode import Episode, Event, Query
from memgen.scorers.frame import build_frame
from memgen.scorers.outcomes import PRED_ABSENT, PRED_OTHER, PRED_UNPARSED, Ragged, classify
from memgen.scorers.predictions import NOT_INT
from memgen.scorers.scoring import score


@pytest.fixture(scope="module")
def catalogue():
    return build_frame(episodes_table([catalogue_episode()]))


def outcome_of(frame, qid: int, token: int) -> str:
    """Outcome of answering ``token`` to query ``qid`` (every other query answered right)."""
    preds = oracle_tokens(frame)
    preds[qid] = token
    return OUTCOMES[score(frame, preds, vocab=VOCAB).outcome[qid]]


# q0: key 1 latest (gold 11)   q1: key 1 version 1 (gold 10)   q2: key 1 previous (gold 10)
# q3: key 2 deleted (absent)   q4: key 3 silent (gold 30)      q5: key 4 never written (absent)
# q6: key 6 written twice, deleted (absent)

def test_gold_answer_is_correct(catalogue):
    for q in range(catalogue.n_queries):
        assert outcome_of(catalogue, q, oracle_tokens(catalogue)[q]) == "correct"


def test_pre_overwrite_value_is_stale(catalogue):
    assert outcome_of(catalogue, 0, tok(10)) == "stale"


def test_other_version_of_the_key_is_wrong_version(catalogue):
    assert outcome_of(catalogue, 1, tok(11)) == "wrong_version"
    assert outcome_of(catalogue, 2, tok(11)) == "wrong_version"


def test_negated_statements_value_is_distractor(catalogue):
    assert outcome_of(catalogue, 0, tok(99)) == "distractor"


def test_distractor_value_for_a_never_written_key_is_distractor(catalogue):
    assert outcome_of(catalogue, 5, tok(44)) == "distractor"


def test_another_keys_value_is_cross_key(catalogue):
    assert outcome_of(catalogue, 0, tok(30)) == "cross_key"
    assert outcome_of(catalogue, 4, tok(50)) == "cross_key"
    assert outcome_of(catalogue, 5, tok(11)) == "cross_key"


def test_discarded_keys_old_value_is_resurrected(catalogue):
    assert outcome_of(catalogue, 3, tok(20)) == "resurrected"
    assert outcome_of(catalogue, 6, tok(60)) == "resurrected"
    assert outcome_of(catalogue, 6, tok(61)) == "resurrected"


def test_unknown_for_a_present_value_is_false_absent(catalogue):
    assert outcome_of(catalogue, 0, VOCAB.absent_id) == "false_absent"
    assert outcome_of(catalogue, 4, VOCAB.absent_id) == "false_absent"


def test_unknown_for_an_absent_key_is_correct(catalogue):
    for q in (3, 5, 6):
        assert outcome_of(catalogue, q, VOCAB.absent_id) == "correct"


def test_unrelated_value_for_an_absent_key_is_missed_absent(catalogue):
    assert outcome_of(catalogue, 5, tok(777)) == "missed_absent"
    assert outcome_of(catalogue, 3, tok(777)) == "missed_absent"


def test_non_value_token_for_an_absent_key_is_missed_absent(catalogue):
    assert outcome_of(catalogue, 5, 2) == "missed_absent"  # the write marker


def test_unrelated_value_is_hallucinated(catalogue):
    assert outcome_of(catalogue, 0, tok(777)) == "hallucinated"


def test_special_or_filler_token_is_hallucinated(catalogue):
    assert outcome_of(catalogue, 0, 5) == "hallucinated"  # the answer slot placeholder
    assert outcome_of(catalogue, 0, VOCAB.value_offset + VOCAB.values + 3) == "hallucinated"  # filler


def test_out_of_range_or_non_integer_token_is_unparsed(catalogue):
    assert outcome_of(catalogue, 0, -4) == "unparsed"
    assert outcome_of(catalogue, 0, VOCAB.vocab_size) == "unparsed"
    assert outcome_of(catalogue, 0, NOT_INT) == "unparsed"
    assert outcome_of(catalogue, 3, NOT_INT) == "unparsed"


def test_missing_prediction_is_unparsed_and_counted(catalogue):
    preds = {("ep-0", q): int(t) for q, t in enumerate(oracle_tokens(catalogue)) if q != 4}
    r = score(catalogue, preds, vocab=VOCAB)
    assert OUTCOMES[r.outcome[4]] == "unparsed"
    assert r.missing == 1
    assert any("1 of 7 queries have no prediction" in n for n in r.notes)


# ---------------------------------------------------------------------------------------------
# precedence


def test_value_both_stale_and_distractor_is_stale_for_latest():
    # "key 1 is not 10" after 10 was overwritten: 10 is a stale value and a distractor's value
    ev = (Event("write", 1, 10), Event("overwrite", 1, 11), Event("distractor", 1, 10, kind="negated"))
    frame = build_frame(episodes_table([Episode("e", "mixed", ev, (Query(0, 1, after=2),))]))
    assert outcome_of(frame, 0, tok(10)) == "stale"


def test_value_both_deleted_and_another_keys_is_resurrected():
    ev = (Event("write", 1, 10), Event("delete", 1), Event("write", 2, 10))
    frame = build_frame(episodes_table([Episode("e", "mixed", ev, (Query(0, 1, after=2),))]))
    assert outcome_of(frame, 0, tok(10)) == "resurrected"


def test_value_both_distractor_and_another_keys_is_distractor():
    ev = (Event("write", 1, 10), Event("write", 2, 20), Event("distractor", 1, 20, kind="unconfirmed"))
    frame = build_frame(episodes_table([Episode("e", "mixed", ev, (Query(0, 1, after=2),))]))
    assert outcome_of(frame, 0, tok(20)) == "distractor"


# ---------------------------------------------------------------------------------------------
# the vectorised classifier against a scalar reference, on random episodes and answers


OPS = st.sampled_from(["set", "set", "set", "delete", "distractor"])


@st.composite
def episodes(draw):
    n = draw(st.integers(1, 14))
    keys = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    vals = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    ops = draw(st.lists(OPS, min_size=n, max_size=n))
    events = []
    for k, v, op in zip(keys, vals, ops, strict=True):
        if op == "set":
            events.append(Event("write", k, v))
        elif op == "delete":
            events.append(Event("delete", k))
        else:
            events.append(Event("distractor", k, v, kind="negated"))
    nq = draw(st.integers(1, 5))
    queries = []
    for j in range(nq):
        after = draw(st.integers(0, n - 1))
        key = draw(st.integers(1, 5))
        queries.append(Query(j, key, "latest", after=after))
    queries.sort(key=lambda q: q.after)
    return Episode("e", "mixed", tuple(events), tuple(Query(j, q.key, q.ask, after=q.after)
                                                      for j, q in enumerate(queries)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(episodes(), st.data())
def test_classifier_matches_the_reference(ep, data):
    frame = build_frame(episodes_table([ep]))
    t = frame.traps
    codes = []
    for i in range(frame.n_queries):
        pool = [int(frame.answer[i]), PRED_ABSENT, PRED_UNPARSED, PRED_OTHER, 9]
        for rag in (t.stale, t.distractor, t.other_keys, t.deleted):
            pool += rag.row(i).tolist()
        codes.append(data.draw(st.sampled_from(pool)))
    got = classify(np.array(codes), frame.answer, frame.ask, t)
    for i, c in enumerate(codes):
        traps = {f: getattr(t, f).row(i).tolist() for f in ("stale", "distractor", "other_keys", "deleted")}
        want = reference(c, int(frame.answer[i]), ASKS[frame.ask[i]], traps)
        assert OUTCOMES[got[i]] == want, (i, c, traps)


def test_ragged_contains_only_looks_at_selected_queries():
    rag = Ragged.from_counts(np.array([2, 0, 3]), np.array([1, 2, 5, 6, 7]))
    codes = np.array([2, 2, 7])
    assert rag.contains(codes).tolist() == [True, False, True]
    assert rag.contains(codes, np.array([False, True, True])).tolist() == [False, False, True]
