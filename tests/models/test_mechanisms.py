"""Each mechanism on small hand-built episodes: one case per probe (and the cases between
them), with the outcome each model must get (DESIGN.md section 7).  Every item sits in its own
16-token chunk unless a case says otherwise."""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import D, S, W, X, ask, episode, hand_table, run, token_of

from memgen.format.codes import ABSENT
from memgen.models.registry import ROUTES

K, K2 = 257, 514  # two keys with no digit in common
LOOKALIKE = 258  # shares its first key token with K

MODELS = ("oracle", "hybrid", "slots_only", "fixed_state", "sparse")

# name: (events, query, probe of the query, outcome per model where not "correct")
CASES = {
    "write": ([W(K, 10)], ask(K), "write", {}),
    "overwrite": ([W(K, 10), W(K, 11)], ask(K), "overwrite", {"sparse": "stale"}),
    "version_k": ([W(K, 10), W(K, 11), W(K, 12)], ask(K, "version", 2), "version",
                  {"fixed_state": "wrong_version", "sparse": "wrong_version"}),
    "version_previous": ([W(K, 10), W(K, 11), W(K, 12)], ask(K, "previous"), "version",
                         {"fixed_state": "wrong_version", "sparse": "wrong_version"}),
    "version_across_delete": ([W(K, 10), D(K), W(K, 11)], ask(K, "version", 1), "version",
                              {"fixed_state": "wrong_version"}),
    "distractor_before_write": ([X(K, 20), W(K, 10)], ask(K), "distractor", {"sparse": "distractor"}),
    "distractor_after_write": ([W(K, 10), X(K, 20, "hypothetical")], ask(K), "distractor", {}),
    "distractor_on_absent_key": ([W(K2, 30), X(K, 20, "unconfirmed")], ask(K), "distractor",
                                 {"sparse": "distractor"}),
    "lookalike": ([W(K, 10), X(K, 20, "lookalike", alias=LOOKALIKE)], ask(K), "distractor", {}),
    "no_write_signal": ([S(K, 10)], ask(K), "no_write_signal", {"slots_only": "false_absent"}),
    "silent_overwrite_of_a_slot": ([W(K, 10), S(K, 11)], ask(K), "no_write_signal",
                                   {"slots_only": "stale", "sparse": "stale"}),
    "discard": ([W(K, 10), D(K)], ask(K), "discard", {"sparse": "resurrected"}),
    "discard_then_silent_rewrite": ([W(K, 10), D(K), S(K, 11)], ask(K), "discard",
                                    {"slots_only": "false_absent", "sparse": "stale"}),
    "never_written": ([W(K2, 30)], ask(K), "write", {}),
}


@pytest.fixture(scope="module")
def outcomes() -> dict[tuple[str, str], tuple[str, object]]:
    """(case, model) -> (outcome, answers) for every case and model, one table for all."""
    names = list(CASES)
    eps = [episode(ev, [q], id_=name) for name, (ev, q, _, _) in CASES.items()]
    table = hand_table(eps)
    out = {}
    for model in MODELS:
        answers, names_out = run(model, table)
        for i, name in enumerate(names):
            out[name, model] = (names_out[i], answers, i)
    probes = table.column("queries").combine_chunks().flatten().field("probe").to_pylist()
    out["probes"] = dict(zip(names, probes, strict=True))
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_each_case_tests_the_probe_it_names(outcomes, case):
    assert outcomes["probes"][case] == CASES[case][2]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("case", list(CASES))
def test_outcome_of_each_mechanism(outcomes, case, model):
    expected = CASES[case][3].get(model, "correct")
    assert outcomes[case, model][0] == expected


def test_hybrid_answers_unmarked_writes_by_the_fallback_and_marked_ones_by_the_slot(outcomes):
    routes = {case: ROUTES[outcomes[case, "hybrid"][1].route[outcomes[case, "hybrid"][2]]] for case in CASES}
    assert routes["no_write_signal"] == "fallback"
    assert routes["silent_overwrite_of_a_slot"] == "fallback"
    assert routes["discard_then_silent_rewrite"] == "fallback"
    assert routes["never_written"] == "fallback"  # searched, found nowhere: absent
    assert routes["overwrite"] == routes["version_k"] == routes["discard"] == "slot"
    active = {case: int(outcomes[case, "hybrid"][1].active_chunks[outcomes[case, "hybrid"][2]]) for case in CASES}
    assert active["no_write_signal"] == 1 and active["overwrite"] == 0


def test_slot_first_fallback_misses_a_silent_overwrite():
    """With the fallback only for keys that never had a slot, a marked write followed by an
    unmarked one reads the stale slot: why the hybrid merges by position."""
    t = hand_table([episode([W(K, 10), S(K, 11)], [ask(K)])])
    assert run("hybrid:fallback=unslotted", t)[1] == ["stale"]
    assert run("hybrid", t)[1] == ["correct"]


def test_interleaved_queries_read_the_state_at_their_position():
    ep = episode([W(K, 10), W(K, 11), D(K)], [ask(K, after=0), ask(K, after=1), ask(K)])
    t = hand_table([ep])
    expected = [token_of(10), token_of(11), token_of(ABSENT)]
    for model in ("hybrid", "slots_only", "fixed_state"):
        answers, out = run(model, t)
        assert answers.prediction.tolist() == expected and out == ["correct"] * 3, model
    answers, out = run("sparse", t)
    assert out == ["correct", "stale", "resurrected"]


def test_sparse_ranks_chunks_by_key_matches():
    """The overwrite wins when its chunk holds more mentions of the key than the write's."""
    events = [W(K, 10), W(K, 11), X(K, 21)]
    apart = hand_table([episode(events, [ask(K)])], chunk_of=[[1, 2, 3, 4]])
    together = hand_table([episode(events, [ask(K)])], chunk_of=[[1, 2, 2, 3]])
    assert run("sparse", apart)[1] == ["stale"]
    assert run("sparse", together)[1] == ["correct"]


@pytest.mark.parametrize("k", [1, 2, 4])
def test_sparse_keeps_at_most_k_chunks(k):
    t = hand_table([episode([W(K, 10 + i) for i in range(6)], [ask(K)])])
    answers, _ = run(f"sparse:k={k}", t)
    assert answers.active_chunks.tolist() == [k]
    hybrid, _ = run(f"hybrid:k={k}", hand_table([episode([S(K, 10 + i) for i in range(6)], [ask(K)])]))
    assert hybrid.active_chunks.tolist() == [k]


def test_hybrid_fallback_prefers_recent_chunks():
    """Six silent values: the fallback's top-k keeps the latest chunks, so latest is right."""
    t = hand_table([episode([S(K, 10 + i) for i in range(6)], [ask(K), ask(K, "previous")])])
    answers, out = run("hybrid:k=2", t)
    assert out == ["correct", "correct"]
    assert answers.prediction.tolist() == [token_of(15), token_of(14)]


def test_fixed_state_distractor_gate_is_what_keeps_it_right():
    """A distractor after the write: gated (beta 0) the state keeps the write."""
    from memgen.baselines.fixed_state import FixedState
    from memgen.format.vocab import DISTRACTOR_MARKER

    marker = np.array(list(DISTRACTOR_MARKER.values()))
    assert (FixedState().gate(marker) == 0).all()
    t = hand_table([episode([W(K, 10), X(K, 20, "rejected")], [ask(K)])])
    assert run("fixed_state", t)[1] == ["correct"]


def test_hybrid_fallback_budget_limits_old_versions_of_unmarked_writes():
    """The fallback reads k chunks: with more chunks of unmarked writes than k, the oldest
    drop out and a version ask on them counts from the wrong start (a documented limit)."""
    events = [S(K, 10 + i) for i in range(6)]
    t = hand_table([episode(events, [ask(K, "version", 1)])])
    assert run("hybrid:k=2", t)[1] == ["wrong_version"]
    assert run("hybrid:k=6", t)[1] == ["correct"]
