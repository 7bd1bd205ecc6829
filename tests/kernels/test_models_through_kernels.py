"""The learned models give the same answers through the Triton kernels as through the references:
the shipped memslot_ref checkpoint on held-out episodes (inference form), its training form's
gradients, and topk_attention (its shipped checkpoint where there is one, else a seeded model)."""

from __future__ import annotations

import copy

import pytest
import torch
from kernel_helpers import assert_close

from memgen.evaluation.learned import MemslotRef, TopkAttention, shipped_checkpoint
from memgen.format.vocab import Vocab
from memgen.models.frontend import answer_loss
from memgen.models.train import build, episode_table, query_logits, token_data

VOCAB = Vocab()


def _heldout(family: str = "mixed"):
    """Two held-out episodes at 192 tokens (4 queries each: a few dozen kernel programs)."""
    return token_data(episode_table(family, 192, 0, 2, 0, "heldout", VOCAB))


def _counted(monkeypatch) -> list[str]:
    """Record each call of a block top-k kernel (so a test knows the kernels ran)."""
    from memgen.kernels.block_topk_attention import triton as kernel

    calls = []

    def counting(name, fn):
        def counted(*a, **kw):
            calls.append(name)
            return fn(*a, **kw)
        return counted

    for name in ("select_blocks", "block_topk_attention"):
        monkeypatch.setattr(kernel, name, counting(name, getattr(kernel, name)))
    return calls


def _logits_both(net, d, monkeypatch):
    out, calls = [], _counted(monkeypatch)
    for m in ("0", "1"):
        monkeypatch.setenv("MEMGEN_TRITON", m)
        with torch.no_grad():
            out.append(query_logits(net, d, chunk=64))  # chunks of 64: the state (and the cache) carried
        assert bool(calls) == (m == "1") and (m == "0" or {"select_blocks", "block_topk_attention"} <= set(calls))
    return out


def _memslot():
    if not shipped_checkpoint("memslot_ref").is_file():
        pytest.skip("no shipped memslot_ref checkpoint in this checkout")
    net, _ = MemslotRef().load()
    return net


def test_shipped_memslot_ref_predicts_the_same_through_the_kernels(monkeypatch):
    net, d = _memslot(), _heldout()
    assert not net.training
    ref, ker = _logits_both(net, d, monkeypatch)
    assert_close("logits", ref, ker)
    assert torch.equal(ref.argmax(-1), ker.argmax(-1))
    assert (ref.argmax(-1).numpy() == d.q_class).mean() >= 0.75  # and they are the checkpoint's answers


def test_memslot_ref_training_form_has_the_same_gradients_through_the_kernels(monkeypatch):
    net, d = copy.deepcopy(_memslot()), _heldout("overwrite")
    net.train()
    target = torch.as_tensor(d.q_class)
    got, calls = [], _counted(monkeypatch)
    for m in ("0", "1"):
        monkeypatch.setenv("MEMGEN_TRITON", m)
        net.zero_grad()
        answer_loss(query_logits(net, d), target).backward()
        got.append({n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None})
    assert "block_topk_attention" in calls
    assert got[0].keys() == got[1].keys() and "memory.log_tau_fallback" in got[0] and "memory.null" in got[0]
    for name in got[0]:
        assert_close(name, got[0][name], got[1][name])


def test_topk_attention_predicts_the_same_through_the_kernels(monkeypatch):
    if shipped_checkpoint("topk_attention").is_file():
        net, _ = TopkAttention().load()
    else:  # no shipped checkpoint yet: a seeded fresh model (its keys are tied to its queries, so it selects)
        torch.manual_seed(0)
        net = build("topk_attention", {"heads": 2}, {}, VOCAB).eval()
    d = _heldout()
    ref, ker = _logits_both(net, d, monkeypatch)
    assert_close("logits", ref, ker)
    assert torch.equal(ref.argmax(-1), ker.argmax(-1))
