"""Text answers: the normalisation rules of docs/scoring.md, and outcomes of text predictions
classified through the surfaces of the gold and trap values."""

from __future__ import annotations

import pytest
from scorer_helpers import catalogue_episode, episodes_table, surface

from memgen.format.codes import OUTCOMES
from memgen.scorers.frame import build_frame
from memgen.scorers.normalise import is_absent, normalise
from memgen.scorers.scoring import score


@pytest.mark.parametrize(("a", "b"), [
    ("Blue crate 1,100", "blue crate 1100"),
    ("  BLUE   crate\t1100. ", "blue crate 1100"),
    ("1,200", "1200"),
    ("$1,234,567", "1234567"),
    ("1200.00", "1200"),
    ("2.50", "2.5"),
    ("007", "7"),
    ("The answer is: blue crate 1100", "blue crate 1100"),
    ("Answer: 42", "42"),
    ("It's 42.", "42"),
    ("a blue crate", "blue crate"),
    ("“Blue crate 1100”", "blue crate 1100"),
    ("blue-crate 1100", "blue crate 1100"),
    ("ＢＬＵＥ crate １１００", "blue crate 1100"),
])
def test_equivalent_answers_normalise_alike(a, b):
    assert normalise(a) == normalise(b)


@pytest.mark.parametrize(("a", "b"), [
    ("3.5", "35"),  # a decimal point is not punctuation
    ("1,2345", "12345"),  # only groups of three digits are thousands
    ("A-007", "7"),  # a one-letter code is not an article
    ("blue crate 1100", "blue crate 1000"),
    ("red crate 1100", "blue crate 1100"),
])
def test_different_answers_stay_different(a, b):
    assert normalise(a) != normalise(b)


@pytest.mark.parametrize("answer", [
    "unknown", "Unknown.", "UNKNOWN", "not known", "No longer exists", "It no longer exists.",
    "none", "None", "N/A", "n/a", "deleted", "It was deleted.", "nothing", "not set",
    "I don't know", "Unknown (it was deleted)", "The answer is unknown",
])
def test_absent_phrasings_are_absent(answer):
    assert is_absent(normalise(answer))


@pytest.mark.parametrize("answer", ["blue crate 1100", "known", "no", "0", "crate unknown"])
def test_values_are_not_absent(answer):
    assert not is_absent(normalise(answer))


def test_empty_answer_normalises_to_nothing():
    assert normalise("  ... ") == ""


# ---------------------------------------------------------------------------------------------
# outcomes of text predictions


@pytest.fixture(scope="module")
def text_frame():
    return build_frame(episodes_table([catalogue_episode()], rendering="text"))


def text_outcome(frame, qid: int, answer: str | None, value_surface=surface) -> str:
    preds = [frame.answer_text[i] for i in range(frame.n_queries)]
    preds[qid] = answer
    r = score(frame, {("ep-0", i): p for i, p in enumerate(preds)}, value_surface=value_surface)
    return OUTCOMES[r.outcome[qid]]


def test_text_gold_in_another_format_is_correct(text_frame):
    assert text_frame.answer_text[0] == "blue crate 1,100"
    assert text_outcome(text_frame, 0, "Blue crate 1100.") == "correct"


def test_text_outcomes_follow_the_trap_surfaces(text_frame):
    assert text_outcome(text_frame, 0, surface("", 10)) == "stale"
    assert text_outcome(text_frame, 1, surface("", 11).upper()) == "wrong_version"
    assert text_outcome(text_frame, 0, "violet crate 9900") == "distractor"  # value 99
    assert text_outcome(text_frame, 0, surface("", 30)) == "cross_key"
    assert text_outcome(text_frame, 3, "Red crate 2000") == "resurrected"  # value 20, deleted
    assert text_outcome(text_frame, 5, surface("", 44)) == "distractor"
    assert text_outcome(text_frame, 0, "Unknown.") == "false_absent"
    assert text_outcome(text_frame, 5, "green crate 777") == "missed_absent"
    assert text_outcome(text_frame, 0, "green crate 777") == "hallucinated"
    assert text_outcome(text_frame, 0, "") == "unparsed"
    assert text_outcome(text_frame, 0, None) == "unparsed"


@pytest.mark.parametrize("answer", ["unknown", "No longer exists.", "N/A", "it was deleted"])
def test_absent_phrasings_answer_a_deleted_key_correctly(text_frame, answer):
    assert text_outcome(text_frame, 3, answer) == "correct"


def test_trap_without_a_surface_is_reported(text_frame):
    def no_surface(domain: str, value: int) -> str:
        raise KeyError(value)

    preds = {("ep-0", i): t for i, t in enumerate(text_frame.answer_text)}
    preds[("ep-0", 0)] = "violet crate 9900"
    r = score(text_frame, preds, value_surface=no_surface)
    assert OUTCOMES[r.outcome[0]] == "hallucinated"
    assert any("no known surface" in n for n in r.notes)
    # a trap value that is some query's gold still has its surface from the dataset itself
    preds[("ep-0", 0)] = "red crate 1000"  # value 10: the gold of the version query
    assert OUTCOMES[score(text_frame, preds, value_surface=no_surface).outcome[0]] == "stale"


def test_integer_prediction_for_a_text_query_is_read_as_text():
    frame = build_frame(episodes_table([catalogue_episode()], rendering="text"))
    r = score(frame, {("ep-0", 0): 1100}, value_surface=surface)
    assert OUTCOMES[r.outcome[0]] == "hallucinated"  # "1100" is not "blue crate 1,100"
