"""Strict and lenient text scoring side by side (issue 16, item 6; docs/scoring.md, "Strict and
lenient"): strict forms drop the domain's type words and the spaces inside codes; lenient
scoring credits an answer that holds the gold and no other value of the episode, and classifies
the one value it holds by the same precedence."""

from __future__ import annotations

import pytest
from scorer_helpers import catalogue_episode, episodes_table

from memgen.format.codes import OUTCOMES
from memgen.ir.episode import Episode, Event, Query
from memgen.scorers.answers import domain_type_words
from memgen.scorers.frame import build_frame
from memgen.scorers.normalise import (
    answer_tokens,
    find_sequences,
    normalise,
    outermost,
    says_absent,
    strict_form,
)
from memgen.scorers.scoring import score

#: value surfaces per domain for the catalogue episode (ep-0: q0 asks key 1, gold 11, stale 10,
#: distractor 99; q3 asks the deleted key 2 (value 20), gold absent; q4 asks key 3, gold 30) and
#: a second episode (ep-1) whose only value is 70
SURFACES = {
    "travel": {10: "OZ 2177", 11: "BA 3792", 99: "LH 4821", 20: "TK 1000", 30: "OK 2397", 44: "AF 5120",
               50: "KL 6001", 60: "IB 7002", 61: "LX 8003", 70: "SK 5555"},
    "inventory": {10: "VX-217", 11: "VS-348", 99: "PR-901", 20: "TB-100", 30: "KL-239", 44: "MN-512",
                  50: "DX-600", 60: "GH-700", 61: "CW-800", 70: "ZZ-555"},
    "lab_notebook": {10: "512.25", 11: "629.002", 99: "700.1", 20: "101.5", 30: "239.75", 44: "512.12",
                     50: "600.6", 60: "700.7", 61: "800.8", 70: "555.5"},
    "accounts": {10: "rapidfox12", 11: "bravelemur43", 99: "mistyowl9", 20: "jollycat20", 30: "keenyak30",
                 44: "wildemu44", 50: "tidyram50", 60: "calmbee60", 61: "boldant61", 70: "zestyelk70"},
}


def text_frame(domain: str):
    other = Episode("ep-1", "write", (Event("write", 1, 70),), (Query(0, 1, "latest", after=0),), target_length=128)
    frame = build_frame(episodes_table([catalogue_episode("ep-0"), other], rendering="text", domain=domain))
    surfaces = SURFACES[domain]
    frame.answer_text[:] = [surfaces[v] if v >= 0 else "unknown" for v in frame.answer.tolist()]
    return frame, (lambda d, v: surfaces[v])


@pytest.fixture(scope="module")
def frames():
    return {d: text_frame(d) for d in SURFACES}


def outcomes(frames, domain: str, qid: int, answer: str | None) -> tuple[str, str]:
    """(strict, lenient) outcome of ``answer`` to question ``qid`` of ep-0 (every other question
    answered with its gold)."""
    frame, surface = frames[domain]
    preds = {("ep-0" if i < 7 else "ep-1", i if i < 7 else 0): frame.answer_text[i] for i in range(frame.n_queries)}
    preds[("ep-0", qid)] = answer
    r = score(frame, preds, value_surface=surface)
    return OUTCOMES[r.outcome[qid]], OUTCOMES[r.lenient[qid]]


@pytest.mark.parametrize(("domain", "qid", "answer", "strict", "lenient"), [
    # the examples: type words and inner spaces are normalised away (strict and lenient)
    ("travel", 0, "flight BA 3792", "correct", "correct"),
    ("travel", 0, "BA3792", "correct", "correct"),
    ("travel", 0, "Flight ba-3792.", "correct", "correct"),
    ("inventory", 0, "bin VS-348", "correct", "correct"),
    ("inventory", 0, "Bin VS348", "correct", "correct"),
    ("accounts", 0, "username bravelemur43", "correct", "correct"),
    ("lab_notebook", 0, "assay score 629.002", "correct", "correct"),
    # a sentence that holds the gold: correct leniently only
    ("travel", 4, "The flight is OK 2397", "hallucinated", "correct"),
    ("lab_notebook", 0, "1: The current assay score is 629.002.", "hallucinated", "correct"),
    ("inventory", 0, "It sits in bin VS-348 now.", "hallucinated", "correct"),
    ("accounts", 0, "Her username is bravelemur43.", "hallucinated", "correct"),
    # the gold and another value of the episode: not credited
    ("travel", 0, "BA 3792 or OZ 2177", "hallucinated", "hallucinated"),
    # any other value-shaped string (another episode's value, a filler decoy's) is not credited
    ("travel", 0, "BA 3792, not SK 5555", "hallucinated", "hallucinated"),
    ("travel", 0, "BA 3792 or QF 8123", "hallucinated", "hallucinated"),
    # the one value a sentence holds is classified by the same precedence
    ("travel", 0, "The flight is OZ 2177", "hallucinated", "stale"),
    ("travel", 0, "It is booked on LH 4821.", "hallucinated", "distractor"),
    ("travel", 3, "It was TK 1000 before it was deleted", "missed_absent", "resurrected"),
    # an absent gold: a sentence that says so and names no value
    ("travel", 3, "Sorry, that trip was deleted from the log.", "missed_absent", "correct"),
    ("travel", 3, "unknown", "correct", "correct"),
    ("travel", 0, "I am afraid that is not known", "hallucinated", "false_absent"),
    ("travel", 0, "no idea", "hallucinated", "hallucinated"),
    ("travel", 0, "", "unparsed", "unparsed"),
])
def test_strict_and_lenient_outcomes(frames, domain, qid, answer, strict, lenient):
    assert outcomes(frames, domain, qid, answer) == (strict, lenient)


def test_an_answer_block_line_is_scored_leniently(frames):
    frame, surface = frames["lab_notebook"]
    block = "Here are my answers.\n1: The current assay score is 629.002.\n2: 512.25\n"
    r = score(frame, [{"id": "ep-0", "answer_block": block}], value_surface=surface)
    assert OUTCOMES[r.outcome[0]] == "hallucinated" and OUTCOMES[r.lenient[0]] == "correct"
    assert OUTCOMES[r.outcome[1]] == OUTCOMES[r.lenient[1]] == "correct"
    assert r.lenient_correct == r.correct + 1


def test_lenient_never_takes_away_a_strict_correct(frames):
    frame, surface = frames["travel"]
    r = score(frame, frame.answer_text, value_surface=surface)
    assert r.correct == r.lenient_correct == frame.n_queries
    table = r.to_table()
    assert table.column("lenient_outcome").to_pylist() == table.column("outcome").to_pylist()


def test_type_words_come_from_the_domain_definitions():
    assert domain_type_words("travel") == (("flight",),)
    assert domain_type_words("inventory") == (("bin",),)
    assert domain_type_words("accounts") == (("username",),)
    assert domain_type_words("lab_notebook") == (("assay", "score"),)
    assert domain_type_words("no_such_domain") == () and domain_type_words(None) == ()


@pytest.mark.parametrize(("text", "tokens"), [
    ("BA3792", ("ba", "3792")),
    ("bin VS-348", ("bin", "vs", "348")),
    ("629.002", ("629.002",)),
    ("bravelemur43", ("bravelemur", "43")),
    ("1,200 units", ("1200", "units")),
])
def test_tokens_split_where_letters_meet_digits(text, tokens):
    assert answer_tokens(normalise(text)) == tokens


def test_strict_form_keeps_a_lone_type_word():
    assert strict_form("flight", [("flight",)]) == "flight"  # not emptied into "unparsed"
    assert strict_form("Flight flight BA 3792", [("flight",)]) == "ba 3792"


def test_a_shorter_surface_inside_a_longer_one_is_not_a_second_value():
    table = {("blue",): 1, ("blue", "whale"): 2, ("red",): 3}
    found = find_sequences(("a", "blue", "whale"), table, [2, 1])
    assert sorted(found) == [(1, 2, 1), (1, 3, 2)] and outermost(found) == [(1, 3, 2)]
    assert sorted(m[2] for m in outermost(find_sequences(("blue", "or", "red"), table, [2, 1]))) == [1, 3]


@pytest.mark.parametrize(("text", "absent"), [
    ("That trip was deleted from the log.", True),
    ("I don't know.", True),
    ("It is unknown now", True),
    ("BA 3792", False),
    ("NA 1234", False),  # "na" is a code's letters, no absent phrase inside an answer
])
def test_absent_phrases_inside_an_answer(text, absent):
    assert says_absent(answer_tokens(normalise(text))) is absent


@pytest.mark.parametrize(("answer", "gold", "domain", "correct"), [
    ("flight BA3792", "BA 3792", "travel", True),
    ("The flight is BA 3792", "BA 3792", "travel", False),
    ("bin VS 348", "VS-348", "inventory", True),
    ("It was deleted.", "unknown", "travel", True),
    ("BA 3792", "unknown", "travel", False),
    ("", "BA 3792", "travel", False),
    (None, "BA 3792", None, False),
])
def test_strict_correct_counts_one_answer_as_score_does(frames, answer, gold, domain, correct):
    from memgen.scorers.answers import strict_correct

    assert strict_correct(answer, gold, domain) is correct
    frame, surface = frames["travel"]
    if domain == "travel" and gold == "BA 3792":  # the same verdict as score() on question 0
        assert (outcomes(frames, "travel", 0, answer)[0] == "correct") is correct
