"""The learned baselines transformer and topk_attention: forward and backward, chunked with the
state carried equals one pass, the top-k block selection, and a short training run."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import memgen.evaluation.zoo  # noqa: E402,F401  (registers the built-in memories by name)
from memgen.format.vocab import Vocab  # noqa: E402
from memgen.models.frontend import parameter_count  # noqa: E402
from memgen.models.train import (  # noqa: E402
    TrainConfig,
    _tensors,
    build,
    concat,
    episode_table,
    query_logits,
    token_data,
    train,
)

torch.set_num_threads(1)
VOCAB = Vocab()
MODELS = ["transformer", "topk_attention"]
TINY = {"d_model": 16, "d_key": 8, "d_context": 16, "hidden": 16}


def _data(families=("write", "overwrite", "version", "discard", "mixed"), rows=2, length=192, seed=3):
    return concat([token_data(episode_table(f, length, 0, rows, seed, "heldout", VOCAB)) for f in families])


def _rms_ratio(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).pow(2).mean().sqrt() / b.pow(2).mean().sqrt().clamp(min=1e-12))


@pytest.mark.parametrize("model", MODELS)
def test_forward_and_backward_on_tiny_shapes(model):
    torch.manual_seed(0)
    net = build(model, {}, TINY, VOCAB)
    d = _data(rows=1)
    net.train()
    logits = query_logits(net, d)
    assert logits.shape == (d.q_row.size, 1 + VOCAB.values)
    assert torch.isfinite(logits).all()
    logits.logsumexp(-1).mean().backward()
    for name in ("q.weight", "k.weight", "null_key", "discard.weight", "mix.weight"):
        g = dict(net.memory.named_parameters())[name].grad
        assert g is not None and g.abs().sum() > 0, name


@pytest.mark.parametrize("model", MODELS)
def test_parameter_budget_is_memslot_refs_within_ten_percent(model):
    memslot = parameter_count(build("memslot_ref", {}, {}, VOCAB))
    assert abs(parameter_count(build(model, {}, {}, VOCAB)) / memslot - 1) < 0.10


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("chunk", [64, 37, 1])
def test_chunked_with_state_carried_equals_one_pass(model, chunk):
    torch.manual_seed(2)
    net = build(model, {}, {}, VOCAB).eval()
    d = _data(rows=2, length=256)
    ids, read = _tensors(d, "cpu")
    with torch.no_grad():
        full = net.run_chunked(ids, read, ids.shape[1])
        chunked = net.run_chunked(ids, read, chunk)
    q = (torch.as_tensor(d.q_row), torch.as_tensor(d.q_slot))
    assert _rms_ratio(chunked[q], full[q]) < 1e-5


def test_transformer_attention_sees_only_earlier_positions_and_matches_a_plain_softmax():
    from memgen.baselines.transformer import causal_attention

    torch.manual_seed(4)
    B, Tq, Tk, H, D, Dv = 2, 5, 11, 3, 8, 6
    q, k, v = torch.randn(B, Tq, H, D), torch.randn(B, Tk, H, D), torch.randn(B, Tk, H, Dv)
    q_pos = torch.tensor([[0, 1, 4, 10, 11], [3, 3, 7, 2, 9]])
    k_pos = torch.arange(Tk)
    o = causal_attention(q, k, v, q_pos, k_pos)  # (B, Tq, H, Dv)
    s = torch.einsum("bqhd,bkhd->bqhk", q, k) / D ** 0.5
    s = s.masked_fill(~(k_pos[None, None, None, :] < q_pos[:, :, None, None]), float("-inf"))
    ref = torch.einsum("bqhk,bkhv->bqhv", torch.softmax(s, -1).nan_to_num(0.0), v)
    assert _rms_ratio(o, ref) < 1e-6
    assert o[0, 0].abs().sum() == 0  # position 0 sees nothing


def test_rope_rotates_only_its_dims_and_scores_depend_on_distance_only():
    from memgen.baselines.transformer import rope

    torch.manual_seed(5)
    q, k = torch.randn(1, 1, 2, 16), torch.randn(1, 1, 2, 16)
    a = (rope(q, torch.tensor([[10]]), 8) * rope(k, torch.tensor([[3]]), 8)).sum(-1)
    b = (rope(q, torch.tensor([[1007]]), 8) * rope(k, torch.tensor([[1000]]), 8)).sum(-1)
    assert torch.allclose(a, b, atol=1e-4)
    assert torch.equal(rope(q, torch.tensor([[10]]), 8)[..., 8:], q[..., 8:])


def _keys_with_block_means(means, block=4):
    """k (1, n * block, 1, 2) whose block b has mean key means[b]."""
    m = torch.tensor(means, dtype=torch.float32)  # (n, 2)
    spread = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [0.5, 0.5], [-0.5, -0.5]])  # mean zero
    return (m[:, None, :] + spread[None]).reshape(1, -1, 1, 2)


def test_topk_selection_picks_the_top_k_earlier_blocks_by_block_mean_score():
    from memgen.baselines.topk_attention import select_blocks

    k = _keys_with_block_means([[3, 0], [1, 0], [5, 0], [2, 0], [9, 0], [0, 0]])  # 6 blocks of 4
    q = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    q_pos = torch.tensor([[17, 5, 2]])  # in block 4, block 1, block 0
    idx, ok = select_blocks(q, k, q_pos, block=4, top_k=2)
    assert idx[0, 0, 0].tolist() == [2, 0]  # blocks 0..3 are earlier than block 4; block 4 (9) is its own
    assert ok[0, 0, 0].tolist() == [True, True]
    assert idx[0, 1, 0].tolist() == [0, 0] and ok[0, 1, 0].tolist() == [True, False]  # only block 0, then none
    assert ok[0, 2, 0].tolist() == [False, False]  # block 0: nothing earlier


def test_topk_selection_breaks_ties_toward_the_more_recent_block_every_time():
    from memgen.baselines.topk_attention import select_blocks

    k = _keys_with_block_means([[2, 0], [2, 0], [1, 0], [2, 0], [0, 0]])
    q = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    for _ in range(3):
        idx, ok = select_blocks(q, k, torch.tensor([[16]]), block=4, top_k=3)
        assert idx[0, 0, 0].tolist() == [3, 1, 0] and ok.all()


def test_topk_attention_reads_the_local_block_and_the_selected_blocks_only():
    from memgen.baselines.topk_attention import block_attention

    torch.manual_seed(6)
    B, T, H, D, blk = 1, 16, 1, 4, 4
    q, k = torch.randn(B, 1, H, D), torch.randn(B, T, H, D)
    v = torch.eye(T).view(B, T, H, T)  # value of position s: one-hot s, so the output is the weights
    q_pos = torch.tensor([[14]])  # own block 3: positions 12, 13 visible
    idx, ok = torch.tensor([[[[1]]]]), torch.tensor([[[[True]]]])
    o = block_attention(q, k, v, q_pos, idx, ok, blk)  # (B, 1, H, T): the attention weights
    seen = (o[0, 0, 0] > 0).nonzero().squeeze(1).tolist()
    assert seen == [4, 5, 6, 7, 12, 13]
    assert torch.isclose(o.sum(), torch.tensor(1.0))


@pytest.mark.parametrize("model", MODELS)
def test_short_training_through_memgens_loop_lowers_the_loss(model):
    torch.manual_seed(0)
    seen = []
    cfg = TrainConfig(model=model, families=("write", "overwrite"), steps=60, minutes=0, batch=12,
                      eval_every=1e9, heldout_per_probe=20)
    result = train(cfg, on_progress=seen.append)
    avg = [e["loss"] for e in seen if "accuracy" not in e]  # the loop's running mean, 0.95 decay
    raw = [avg[0]] + [(b - 0.95 * a) / 0.05 for a, b in zip(avg, avg[1:], strict=False)]  # per step
    assert result.steps == 60 and len(raw) == 60
    assert sum(raw[-10:]) / 10 < sum(raw[:10]) / 10 - 0.5  # 100-step warm-up: the lr is still low
    assert result.curve[-1]["accuracy"]["all"] >= result.curve[0]["accuracy"]["all"]


def test_both_baselines_are_named_models_never_in_the_default_run():
    from memgen.evaluation.zoo import available_models, default_models
    from memgen.models.train import MEMORIES

    assert {"transformer", "topk_attention"} <= set(available_models()) & set(MEMORIES)
    assert not {"transformer", "topk_attention"} & set(default_models())
