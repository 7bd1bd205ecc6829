"""render_text: spans, surfaces, filler, exact lengths and determinism, for every domain, every
op and distractor kind, and every family; with cl100k and a local Hugging Face tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from text_helpers import catalogue_episode, check_row, deciding_event

from memgen.format.codes import DISTRACTOR_KINDS
from memgen.format.errors import UsageError
from memgen.generators.build import build_program
from memgen.generators.knobs import Knobs
from memgen.generators.registry import FAMILIES, get_family
from memgen.ir.episode import Episode, Event, Query
from memgen.ir.replay import replay
from memgen.ir.rng import Streams
from memgen.render.text.domain import available_domains, load_domain
from memgen.render.text.episode import render_text, tolerance
from memgen.render.text.tokenizers import load_tokenizer

DOMAINS = available_domains()


@pytest.fixture(scope="module")
def cl100k():
    return load_tokenizer("cl100k")


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_op_and_distractor_kind_in_every_domain(domain, cl100k):
    ep = catalogue_episode()
    assert {e.op for e in ep.events} == {"write", "overwrite", "silent_write", "delete", "distractor"}
    assert {e.kind for e in ep.events} - {""} == set(DISTRACTOR_KINDS)
    row = render_text(ep, target_length=4096, tokenizer=cl100k, domain=domain, seed=3)
    check_row(row, domain)
    dom = load_domain(domain)
    expected = [dom.value_surface(v) if v >= 0 else "unknown" for v in (90_004, 90_011, 90_001, 90_004,
                                                                         90_002, -1, 90_010, -1)]
    assert list(row.answer_texts) == expected
    # the question asked after event 3 sits between events 3 and 4, answered as of that point
    q0 = row.episode.queries[0]
    assert row.episode.events[3].end <= q0.start < row.episode.events[4].start


def test_answer_format_is_documented_in_the_prompt(cl100k):
    row = render_text(catalogue_episode(), target_length=2048, tokenizer=cl100k, domain="travel", seed=0)
    assert '"<number>: <answer>"' in row.prompt
    assert "unknown" in row.prompt.split("\n<log>\n")[0]
    assert row.prompt.index("\n<log>\n") < row.prompt.index(row.context) < row.prompt.index("\n</log>\n")


@pytest.mark.parametrize("length", [1024, 3000, 16_384, 131_072])
def test_length_never_exceeds_target_and_is_within_tolerance_cl100k(length, cl100k):
    for domain in DOMAINS:
        row = render_text(catalogue_episode(), target_length=length, tokenizer=cl100k, domain=domain, seed=length)
        assert row.length == cl100k.count(row.prompt)
        assert length - tolerance(length) <= row.length <= length


@pytest.mark.parametrize("length", [2048, 8192, 50_000])
def test_length_bounds_hold_for_a_local_hugging_face_tokenizer(length, hf_tokenizer):
    tok = load_tokenizer(str(hf_tokenizer))
    for domain in DOMAINS:
        row = render_text(catalogue_episode(), target_length=length, tokenizer=tok, domain=domain, seed=1)
        assert row.length == tok.count(row.prompt)
        assert length - tolerance(length) <= row.length <= length
        check_row(row, domain)


def test_same_seed_same_text_and_another_seed_other_text(cl100k):
    ep = catalogue_episode()
    a = render_text(ep, target_length=4096, tokenizer=cl100k, domain="accounts", seed=11)
    b = render_text(ep, target_length=4096, tokenizer=cl100k, domain="accounts", seed=11)
    c = render_text(ep, target_length=4096, tokenizer=cl100k, domain="accounts", seed=12)
    assert a == b
    assert a.context != c.context
    assert a.answer_texts == c.answer_texts  # answers come from the IR, not the seed


def test_too_short_says_how_many_tokens_it_needs(cl100k):
    with pytest.raises(UsageError, match=r"too short .* take \d+ tokens; raise --length to at least \d+"):
        render_text(catalogue_episode(), target_length=300, tokenizer=cl100k, domain="inventory", seed=0)


def test_unknown_domain_and_tokenizer_are_usage_errors():
    with pytest.raises(UsageError, match="unknown domain"):
        render_text(catalogue_episode(), target_length=2048, tokenizer="cl100k", domain="mars", seed=0)
    with pytest.raises(UsageError, match="unknown tokenizer"):
        render_text(catalogue_episode(), target_length=2048, tokenizer="nope", domain="travel", seed=0)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_in_every_domain(family, cl100k):
    length = 2048
    plan = get_family(family)(Knobs(), length)
    seeds = np.arange(1, len(DOMAINS) + 1, dtype=np.uint64) * np.uint64(7919)
    program = build_program(plan, Streams(seeds), 65_536, 256, 100_000)
    for b, domain in enumerate(DOMAINS):
        ep = program.episode(b, id=f"{family}-{b}", family=family, seed=int(seeds[b]))
        row = render_text(ep, target_length=length, tokenizer=cl100k, domain=domain, seed=int(seeds[b]))
        check_row(row, domain)
        for q in row.episode.queries:  # gold answer_text inside the deciding event's span
            i = deciding_event(row.episode, q)
            if i is not None:
                e = row.episode.events[i]
                assert q.answer_text in row.context[e.start:e.end]


_OPS = st.sampled_from(["write", "silent_write", "delete", *DISTRACTOR_KINDS])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.tuples(_OPS, st.integers(0, 3)), min_size=1, max_size=14),
       asks=st.lists(st.tuples(st.integers(0, 4), st.sampled_from(["latest", "previous", "version"])),
                     min_size=1, max_size=5),
       domain=st.sampled_from(DOMAINS), seed=st.integers(0, 2**32))
def test_random_episodes_keep_every_promise(ops, asks, domain, seed):
    events = []
    for i, (op, k) in enumerate(ops):
        key, value = 1000 + 37 * k, 5000 + i
        if op == "write" or op == "silent_write":
            events.append(Event("write", key, value, signal=op == "write"))
        elif op == "delete":
            events.append(Event("delete", key))
        else:
            events.append(Event("distractor", key, value, kind=op, alias=key + 1))
    queries = tuple(Query(j, 1000 + 37 * k, ask, version=1 if ask == "version" else 0, after=len(events) - 1)
                    for j, (k, ask) in enumerate(asks))
    ep = replay(Episode("h", "mixed", tuple(events), queries, seed=seed))
    row = render_text(ep, target_length=2048, tokenizer=load_tokenizer("cl100k"), domain=domain, seed=seed)
    check_row(row, domain)


def test_an_episode_without_events_is_filler_and_unknowns(cl100k):
    ep = replay(Episode("empty", "write", (), (Query(0, 77, "latest"),)))
    row = render_text(ep, target_length=1024, tokenizer=cl100k, domain="inventory", seed=0)
    assert row.answer_texts == ("unknown",)
    assert 1024 - tolerance(1024) <= row.length <= 1024
    assert load_domain("inventory").key_surface(77) not in row.context


def test_a_million_tokens_in_one_prompt(cl100k):
    row = render_text(catalogue_episode(), target_length=1_048_576, tokenizer=cl100k, domain="server_config",
                      seed=9)
    check_row(row, "server_config")


def test_filler_is_drawn_afresh_when_the_spare_sentences_run_out(cl100k):
    from memgen.render.text import episode as R

    dom = load_domain("travel")
    counts = dom.filler.counts(cl100k)
    rng = np.random.default_rng(0)
    pool = R._Pool([], np.zeros(0, np.int64), np.zeros(0, np.int64), lambda: dom.filler.sample(rng, 8, counts))
    units = R._Units(cl100k, np.array([4]))
    shorts = dom.short.sample(rng, 64, dom.short.counts(cl100k))
    assert R._adjust(units, pool, shorts, 700, 2)
    assert 698 <= sum(units.mid) <= 700
    assert len(set(units.text)) > 20  # whole sentences from the grammar, not a run of short ones
