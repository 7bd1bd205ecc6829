"""The IR's interpreter against the plain reference interpreter (memgen.ir.naive), and its
worked cases."""

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from memgen.format.codes import ABSENT, ITEM_QUERY
from memgen.ir.episode import Episode, Event, Query
from memgen.ir.naive import naive_replay
from memgen.ir.program import Program
from memgen.ir.replay import replay, replay_program

OPS = ["write", "write", "silent_write", "delete", "distractor"]
KINDS = ["negated", "hypothetical", "unconfirmed", "rejected", "lookalike"]
TRAP_NAMES = ("stale", "distractor", "other_keys", "deleted")


@st.composite
def episodes(draw, repeat_values=False):
    """Random episodes over a few keys, interleaved queries anywhere.  Every event states its
    own value id (as generators do) unless ``repeat_values``: then ids come from 0..5."""
    n_keys = draw(st.integers(1, 5))
    n_events = draw(st.integers(0, 25))
    events = []
    for i in range(n_events):
        op = draw(st.sampled_from(OPS))
        key = draw(st.integers(0, n_keys - 1))
        value = draw(st.integers(0, 5)) if repeat_values else i
        if op == "delete":
            events.append(Event(op="delete", key=key))
        elif op == "distractor":
            kind = draw(st.sampled_from(KINDS))
            events.append(Event(op="distractor", key=key, value=value if repeat_values else 1000 + i, kind=kind,
                                alias=100 + key if kind == "lookalike" else -1))
        else:
            events.append(Event(op=op, key=key, value=value, signal=op == "write"))
    queries = []
    for qid in range(draw(st.integers(1, 8))):
        ask = draw(st.sampled_from(["latest", "version", "previous"]))
        queries.append(Query(qid=qid, key=draw(st.integers(0, n_keys)), ask=ask,
                             version=draw(st.integers(1, 4)) if ask == "version" else 0,
                             after=draw(st.integers(-1, n_events - 1))))
    queries.sort(key=lambda q: q.after)
    queries = [Query(**{**q.__dict__, "qid": i}) for i, q in enumerate(queries)]
    return Episode(id="h", family="test", events=tuple(events), queries=tuple(queries))


def _evidence_events(ep: Episode) -> list[tuple[int, ...]]:
    """Each query's evidence from the vectorised interpreter (flat item indices), as indices
    into ``ep.events``, queries in reading order."""
    ordered = replace(ep, queries=tuple(sorted(ep.queries, key=lambda q: q.after)))
    p = replay_program(Program.from_episode(ordered), kernel=False)
    event_of = np.cumsum(p.item[0] != ITEM_QUERY) - 1  # item n of the one row -> its event
    offsets, items = p.evidence_items
    return [tuple(int(event_of[i]) for i in items[offsets[n]:offsets[n + 1]])
            for n in np.flatnonzero(p.item[0] == ITEM_QUERY)]


def _assert_agrees_with_naive(ep: Episode) -> None:
    got = replay(ep)
    want = naive_replay(ep)
    assert [e.op for e in got.events] == want.ops
    assert [e.version for e in got.events] == want.versions
    assert [q.answer for q in got.queries] == want.answers
    assert [q.probe for q in got.queries] == want.probes
    for q, t in zip(got.queries, want.traps, strict=True):
        for name in TRAP_NAMES:
            lst = getattr(q.traps, name)
            assert lst == getattr(t, name), (name, q)  # the same values, in the documented order
            assert q.answer not in getattr(q.traps, name)
            assert len(set(lst)) == len(lst), (name, q)
    assert _evidence_events(ep) == want.evidence


@settings(max_examples=300, deadline=None)
@given(episodes())
def test_replay_agrees_with_the_plain_restatement(ep):
    """Every op, version, answer, probe, trap list (in order) and evidence list."""
    _assert_agrees_with_naive(ep)


@settings(max_examples=200, deadline=None)
@given(episodes(repeat_values=True))
def test_replay_agrees_with_the_plain_restatement_when_values_repeat(ep):
    """Hand-made episodes may state one value id twice (generators never do): the gold is still
    kept out of every list and no list holds a value twice."""
    _assert_agrees_with_naive(ep)


def test_settled_other_keys_hold_a_value_once_when_two_keys_share_it():
    ep = _ep([Event("write", 1, 5), Event("write", 2, 7), Event("write", 3, 7)], [dict(key=1, after=2)])
    assert ep.queries[0].traps.other_keys == (7,)


def _ep(events, queries):
    qs = tuple(Query(qid=i, **q) for i, q in enumerate(queries))
    return replay(Episode(id="x", family="t", events=tuple(events), queries=qs))


def test_overwrite_answer_is_latest_value_and_stale_is_the_old_one():
    ep = _ep([Event("write", 1, 10), Event("write", 1, 11)], [dict(key=1, after=1)])
    assert [e.op for e in ep.events] == ["write", "overwrite"]
    assert [e.version for e in ep.events] == [1, 2]
    q = ep.queries[0]
    assert (q.answer, q.probe, q.traps.stale) == (11, "overwrite", (10,))


def test_delete_makes_absent_and_keeps_history_for_versions():
    events = [Event("write", 1, 10), Event("delete", 1), Event("write", 1, 12)]
    ep = _ep(events, [dict(key=1, after=1), dict(key=1, after=2, ask="version", version=1),
                      dict(key=1, after=2, ask="previous")])
    absent, v1, prev = ep.queries
    assert absent.answer == ABSENT and absent.answer_text == "unknown" and absent.probe == "discard"
    assert absent.traps.deleted == (10,)
    assert ep.events[2].op == "write" and ep.events[2].version == 2  # the count goes on after a delete
    assert v1.answer == 10 and prev.answer == 10 and v1.probe == "version"


def test_distractors_change_nothing():
    events = [Event("write", 1, 10), Event("distractor", 1, 99, kind="negated"),
              Event("distractor", 2, 98, kind="lookalike", alias=7)]
    ep = _ep(events, [dict(key=1, after=2), dict(key=2, after=2)])
    assert ep.queries[0].answer == 10 and ep.queries[0].probe == "distractor"
    assert ep.queries[0].traps.distractor == (99,)
    assert ep.queries[1].answer == ABSENT and ep.queries[1].traps.distractor == (98,)
    assert ep.queries[1].traps.other_keys == (10,)


def test_interleaved_query_sees_the_state_at_its_position():
    events = [Event("write", 1, 10), Event("write", 1, 11), Event("write", 1, 12)]
    ep = _ep(events, [dict(key=1, after=0), dict(key=1, after=1), dict(key=1, after=-1)])
    assert [q.answer for q in ep.queries] == [ABSENT, 10, 11]


def test_silent_write_changes_state_like_a_write():
    ep = _ep([Event("silent_write", 3, 30, signal=False)], [dict(key=3, after=0)])
    assert ep.events[0].op == "silent_write" and ep.queries[0].answer == 30
    assert ep.queries[0].probe == "no_write_signal"


def test_traps_never_hold_the_gold_even_when_values_repeat():
    events = [Event("write", 1, 5), Event("write", 1, 7), Event("write", 2, 5)]
    ep = _ep(events, [dict(key=1, after=2, ask="version", version=1), dict(key=2, after=2)])
    first, other = ep.queries
    assert first.answer == 5 and 5 not in first.traps.other_keys and first.traps.stale == (7,)
    assert other.answer == 5 and other.traps.other_keys == (7,)
