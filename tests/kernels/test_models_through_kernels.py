"""The learned models give the same answers through the Triton kernels as through the references:
the shipped memslot_ref checkpoint on held-out episodes (inference form: its fallback's block
top-k and its slot table's slot_write and slot_read), its training form's gradients, and
topk_attention (its shipped checkpoint where there is one, else a seeded model)."""

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


TOPK = ("select_blocks", "block_topk_attention")
SLOTS = ("slot_write", "slot_read")


def _counted(monkeypatch) -> list[str]:
    """Record each call of a Triton kernel (so a test knows which kernels ran)."""
    from memgen.kernels.block_topk_attention import triton as topk
    from memgen.kernels.slot_read import triton as read
    from memgen.kernels.slot_write import triton as write

    calls = []

    def counting(name, fn):
        def counted(*a, **kw):
            calls.append(name)
            return fn(*a, **kw)
        return counted

    for mod, names in ((topk, TOPK), (read, ("slot_read",)), (write, ("slot_write",))):
        for name in names:
            monkeypatch.setattr(mod, name, counting(name, getattr(mod, name)))
    return calls


def _logits_both(net, d, monkeypatch, ops=TOPK):
    """Logits through the references, then through the kernels (each of ``ops`` must have run)."""
    out, calls = [], _counted(monkeypatch)
    for m in ("0", "1"):
        monkeypatch.setenv("MEMGEN_TRITON", m)
        with torch.no_grad():
            out.append(query_logits(net, d, chunk=64))  # chunks of 64: the state (and the cache) carried
        assert bool(calls) == (m == "1") and (m == "0" or set(ops) <= set(calls)), calls
    return out


def _memslot():
    if not shipped_checkpoint("memslot_ref").is_file():
        pytest.skip("no shipped memslot_ref checkpoint in this checkout")
    net, _ = MemslotRef().load()
    return net


def test_shipped_memslot_ref_predicts_the_same_through_the_kernels(monkeypatch):
    """The whole inference form through the kernels: the fallback (block top-k) and the slot table
    (slot_write updates it, slot_read reads it), against the references."""
    net, d = _memslot(), _heldout()
    assert not net.training
    ref, ker = _logits_both(net, d, monkeypatch, TOPK + SLOTS)
    assert_close("logits", ref, ker)
    assert torch.equal(ref.argmax(-1), ker.argmax(-1))
    assert (ref.argmax(-1).numpy() == d.q_class).mean() >= 0.75  # and they are the checkpoint's answers


@pytest.mark.parametrize("family", ["version", "discard"])
def test_shipped_memslot_ref_slot_table_answers_the_same_through_slot_write_and_slot_read(family, monkeypatch):
    """The slot table alone (the route gate's slot side), on the families that exercise it: the
    values read, the version counter's entry and the discard flag give the same read through the
    kernels as through the references, bit for bit (a read opens one slot: its weight is 1)."""
    net, d = _memslot(), _heldout(family)
    reads, calls = [], _counted(monkeypatch)
    cls = type(net.memory)
    real = cls._combine

    def keep(self, f, qpos, r_modes, slot_seen, r_fb, fb_max):  # record what the slot table read
        reads[-1].append((r_modes.clone(), slot_seen.clone()))
        return real(self, f, qpos, r_modes, slot_seen, r_fb, fb_max)

    monkeypatch.setattr(cls, "_combine", keep)
    for m in ("0", "1"):
        monkeypatch.setenv("MEMGEN_TRITON", m)
        reads.append([])
        with torch.no_grad():
            query_logits(net, d, chunk=64)
    assert set(SLOTS) <= set(calls)
    assert len(reads[0]) == len(reads[1]) and reads[0]
    for (m0, s0), (m1, s1) in zip(reads[0], reads[1], strict=True):
        assert torch.equal(m0, m1) and torch.equal(s0, s1)
    assert any(bool(s.any()) for _, s in reads[1])  # some read found its slot


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
