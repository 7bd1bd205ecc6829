"""Each selector on a hand-built episode whose answer is known, and the mechanism selectors'
choices equal to what the models keep."""

from __future__ import annotations

import numpy as np
import pytest
from hand import hand_episode

import memgen.selection  # noqa: F401  (registers the selectors)
from memgen.selection.metrics import rank, score_ranking
from memgen.selection.registry import SELECTORS, parse_select


def _ranking(spec: str):
    ep = hand_episode()
    sel = parse_select(spec)
    return ep, rank(sel.scores(ep), ep.before)


def test_recency_ranks_the_overwrite_above_the_stale_write():
    _, r = _ranking("recency")
    order = r.top(0, 6).tolist()
    assert order == [5, 4, 3, 2, 1, 0]
    assert order.index(2) < order.index(0)


def test_oracle_recall_is_one():
    ep, r = _ranking("oracle:k=1")
    s = score_ranking(ep, r, 1)
    assert (s.recall == 1).all() and s.rr[0] == 1 and r.top(0, 1).tolist() == [2]


@pytest.mark.parametrize("spec", ["tfidf", "bm25"])
def test_lexical_selectors_rank_a_negated_distractor_with_the_key_at_least_as_high_as_the_write(spec):
    _, r = _ranking(spec)
    s = r.scores[0]
    assert s[3] >= s[0] > max(s[1], s[5])  # the negation goes unseen; the key's passages beat the filler


@pytest.mark.slow
def test_dense_ranks_the_key_above_filler_and_other_keys(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("MEMGEN_CACHE", str(tmp_path))
    monkeypatch.setenv("MEMGEN_THREADS", "1")
    from memgen.bridge.encoder import minilm_folder

    try:
        minilm_folder()
    except Exception:
        pytest.skip("all-MiniLM-L6-v2 is not installed")
    _, r = _ranking("dense")
    s = r.scores[0]
    assert min(s[0], s[2], s[3]) > max(s[1], s[4], s[5])
    cached = list((tmp_path / "selection").glob("*.npy"))
    assert len(cached) == 2  # the passages and the question, each once
    _, again = _ranking("dense")  # read back from the cache
    assert np.allclose(again.scores, r.scores)


def test_a_passage_after_an_interleaved_question_is_never_ranked():
    ep = hand_episode()
    ep.before[:] = 3  # the question asked after passage 2
    for name in ("tfidf", "bm25", "recency", "oracle"):
        r = rank(parse_select(name).scores(ep), ep.before)
        assert int(r.n_ranked[0]) == 3 and set(r.top(0, 8).tolist()) == {0, 1, 2}


def test_every_selector_is_registered_with_its_renderings():
    assert set(SELECTORS) == {"tfidf", "bm25", "dense", "recency", "oracle", "sparse", "hybrid"}
    assert SELECTORS["dense"].renderings == ("text",) and SELECTORS["sparse"].renderings == ("chunk",)


@pytest.fixture(scope="module")
def chunk_ds(tmp_path_factory):
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import make_request

    root = tmp_path_factory.mktemp("chunks") / "ds"
    generate(make_request("mixed", renderings="chunk", lengths=4096, episodes=3, seed=3, chunk_size=128), root)
    return root


@pytest.mark.parametrize("name", ["sparse", "hybrid"])
def test_mechanism_selectors_keep_the_chunks_their_model_keeps(chunk_ds, name):
    from memgen.evaluation.zoo import get_model
    from memgen.io.dataset import Dataset
    from memgen.selection.episodes import iter_selection_episodes

    ds = Dataset.open(chunk_ds)
    for ep in iter_selection_episodes(ds, ds.configs[0]):
        for k in (1, 4):
            r = rank(parse_select(f"{name}:k={k}").scores(ep), ep.before)
            kept = np.asarray([r.top(q, k).size for q in range(ep.n_queries)])
            from memgen.models.stream import TokenBatch

            answers = get_model(f"{name}:k={k}").predict(TokenBatch.from_table(ep.table, ep.vocab))
            assert kept.tolist() == answers.active_chunks.tolist()
