import pytest
import torch

from memgen.bridge.episodes import ASKS, K_MAX, training_episodes
from memgen.bridge.heads import Block, BridgeModel, soft_replay


@pytest.fixture(scope="module")
def episodes():
    """Every family, interleaved queries included, built in memory."""
    return (training_episodes(["mixed", "version", "discard", "distractor"], [2048], 3, domains=["travel"], seed=3)
            + training_episodes(["mixed"], [2048], 3, domains=["inventory"], seed=4, query_position="interleaved"))


def _certain(ep):
    """soft_replay's inputs when every reader is sure and right (from the IR's labels)."""
    E, Q = len(ep.events), len(ep.questions)
    p_type = torch.nn.functional.one_hot(torch.tensor(ep.event_type), 3).float()
    match = (torch.tensor(ep.query_key)[:, None] == torch.tensor(ep.named_keys)[None]).float()
    starts, ends = torch.tensor(ep.query_start), torch.tensor(ep.event_end)
    valid = (starts[:, None] < 0) | (ends[None] <= starts[:, None])
    p_ask = torch.nn.functional.one_hot(torch.tensor(ep.asks), len(ASKS)).float()
    p_k = torch.nn.functional.one_hot(torch.tensor([max(k - 1, 0) for k in ep.ks]), K_MAX).float()
    return p_type, match, valid, p_ask, p_k, E, Q


def test_soft_replay_of_certain_readers_is_the_ir_answer(episodes):
    checked = 0
    for ep in episodes:
        p_type, match, valid, p_ask, p_k, E, Q = _certain(ep)
        logp = soft_replay(p_type, match, valid, p_ask, p_k)
        assert logp.shape == (Q, E + 1)
        torch.testing.assert_close(logp.exp().sum(-1), torch.ones(Q))
        want = [g if g >= 0 else E for g in ep.gold]
        assert logp.argmax(-1).tolist() == want, ep.id
        assert (logp.max(-1).values > -1e-3).all()  # sure, not just right
        checked += Q
    assert checked > 100


def test_soft_replay_respects_the_query_position(episodes):
    ep = next(e for e in episodes if any(s >= 0 for s in e.query_start))
    p_type, match, valid, p_ask, p_k, E, _ = _certain(ep)
    logp = soft_replay(p_type, match, valid, p_ask, p_k)
    late = ~valid
    assert late.any() and (logp[:, :E].exp()[late] < 1e-5).all()


@pytest.mark.parametrize("mode", ["oracle", "text"])
@pytest.mark.parametrize("head", ["replay", "transformer"])
def test_every_head_gives_a_distribution_over_events_and_unknown(mode, head):
    torch.manual_seed(0)
    E, Q, L, D = 7, 3, 5, 16
    ids = torch.randint(0, 50, (E, L))
    qids = torch.randint(0, 50, (Q, L))
    ids[:, -1] = qids[:, -1] = -1
    b = Block(torch.randn(E, D), torch.randn(E, L, D), ids, torch.randn(Q, D), torch.randn(Q, L, D), qids,
              torch.arange(E) % 3, torch.tensor([0, 1, 2]), torch.ones(Q, E, dtype=torch.bool),
              ev_df=torch.rand(E, L, 2), q_df=torch.rand(Q, L, 2))
    logp, aux = BridgeModel(mode, head, D)(b)
    assert logp.shape == (Q, E + 1)
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(Q))
    assert aux["ask"].shape == (Q, len(ASKS)) and aux["k"].shape == (Q, K_MAX)
