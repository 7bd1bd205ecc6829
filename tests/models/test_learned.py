"""The learned tier: front end, memslot_ref and delta_net memories, training, checkpoints, and
the learned models answering through the standard evaluation path."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import memgen.evaluation.zoo  # noqa: E402,F401  (registers the built-in memories by name)
from memgen.format.codes import PROBES  # noqa: E402
from memgen.format.errors import DataError, UsageError  # noqa: E402
from memgen.format.vocab import Vocab  # noqa: E402
from memgen.models.frontend import FrontEndConfig  # noqa: E402
from memgen.models.train import (  # noqa: E402
    TrainConfig,
    _tensors,
    build,
    concat,
    episode_table,
    heldout_set,
    query_logits,
    token_data,
    train,
)

torch.set_num_threads(1)
VOCAB = Vocab()


def _data(families=("write", "overwrite", "version", "discard", "mixed"), rows=3, length=192, seed=3):
    return concat([token_data(episode_table(f, length, 0, rows, seed, "heldout", VOCAB)) for f in families])


def _rms_ratio(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).pow(2).mean().sqrt() / b.pow(2).mean().sqrt().clamp(min=1e-12))


@pytest.mark.parametrize("model", ["memslot_ref", "delta_net"])
def test_forward_and_backward_on_tiny_shapes(model):
    torch.manual_seed(0)
    net = build(model, {}, {"d_model": 16, "d_key": 8, "d_context": 16, "hidden": 16}, VOCAB)
    d = _data(rows=1)
    net.train()
    logits = query_logits(net, d)
    assert logits.shape == (d.q_row.size, 1 + VOCAB.values)
    logits.logsumexp(-1).mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_delta_rule_recurrent_and_chunkwise_agree_forward_and_backward():
    from memgen.baselines.delta_net import delta_rule_chunkwise, delta_rule_recurrent

    torch.manual_seed(1)
    B, T, H, K, V = 2, 77, 2, 8, 5
    q = nn.functional.normalize(torch.randn(B, T, H, K), dim=-1).requires_grad_()
    k = nn.functional.normalize(torch.randn(B, T, H, K), dim=-1).requires_grad_()
    v = torch.randn(B, T, H, V, requires_grad=True)
    g = nn.functional.logsigmoid(torch.randn(B, T, H) + 2).detach().requires_grad_()
    beta = torch.rand(B, T, H, requires_grad=True)
    s0 = torch.randn(B, H, K, V)
    o1, s1 = delta_rule_recurrent(q, k, v, g, beta, s0)
    grads1 = torch.autograd.grad((o1 ** 2).sum() + s1.sum(), (q, k, v, g, beta))
    o2, s2 = delta_rule_chunkwise(q, k, v, g, beta, s0, chunk=16)
    grads2 = torch.autograd.grad((o2 ** 2).sum() + s2.sum(), (q, k, v, g, beta))
    assert _rms_ratio(o2, o1) < 1e-5 and _rms_ratio(s2, s1) < 1e-5
    for a, b in zip(grads2, grads1, strict=True):
        assert _rms_ratio(a, b) < 1e-4


@pytest.mark.parametrize("model", ["memslot_ref", "delta_net"])
def test_chunked_with_state_carried_equals_one_pass(model):
    torch.manual_seed(2)
    net = build(model, {}, {}, VOCAB).eval()
    d = _data(rows=2)
    ids, read = _tensors(d, "cpu")
    with torch.no_grad():
        full = net.run_chunked(ids, read, ids.shape[1])
        chunked = net.run_chunked(ids, read, 64)
        odd = net.run_chunked(ids, read, 37)
    q = (torch.as_tensor(d.q_row), torch.as_tensor(d.q_slot))
    assert torch.allclose(full[q], chunked[q], atol=1e-5)
    assert torch.allclose(full[q], odd[q], atol=1e-5)


def test_front_end_table_lookup_at_inference_equals_the_mlp_form_and_follows_weight_updates():
    from memgen.models.frontend import FrontEnd

    torch.manual_seed(5)
    fe = FrontEnd(FrontEndConfig()).eval()
    ids = torch.randint(0, VOCAB.vocab_size, (2, 300))
    state = fe.initial_state(2)
    for _ in range(2):  # the second round after an in-place update: the tables must be rebuilt
        mlp, _ = fe(ids, state)  # grad enabled: the MLP form
        with torch.inference_mode():
            look, _ = fe(ids, state)  # the table form
        assert torch.allclose(mlp.key, look.key, atol=1e-5)
        assert torch.allclose(mlp.context, look.context, atol=1e-5)
        with torch.no_grad():
            fe.gate_context[0].weight.mul_(1.5)
            fe.embed.weight.add_(0.1)


def test_tape_appends_in_place_and_an_older_state_stays_a_value():
    from memgen.models.frontend import EMPTY_TAPE

    x = torch.arange(2 * 10, dtype=torch.float32).view(2, 10, 1)
    a = EMPTY_TAPE.append(x[:, :4], align=8)
    b = a.append(x[:, 4:7], align=8)
    assert b.store is a.store  # in place
    c = a.append(-x[:, 4:6], align=8)  # a fork of the older state copies
    assert c.store is not b.store
    assert torch.equal(b.tensors()[0], x[:, :7]) and torch.equal(c.tensors()[0][:, 4:], -x[:, 4:6])
    d = b.append(x[:, 7:10], align=8)  # grows past its capacity of 8
    assert torch.equal(d.tensors()[0], x) and d.store.data[0].shape[1] % 8 == 0
    assert torch.equal(d.tensors(16)[0][:, 10:], torch.zeros(2, 6, 1))  # zeros past n


def test_memslot_parallel_form_with_hard_gates_equals_the_recurrent_slot_table():
    """Gates taken from the IR's events (the ideal write / discard decisions): the training form,
    thresholded, reads what the event-by-event slot table reads."""
    from memgen.memslot_ref.model import MemslotMemory

    torch.manual_seed(3)
    d = _data(families=("write", "overwrite", "version", "discard"), rows=3)
    labels = (torch.as_tensor(d.write_label), torch.as_tensor(d.discard_label))

    class Oracle(MemslotMemory):
        def gates(self, f):
            return labels[0] * 20 - 10, labels[1] * 20 - 10

    net = build("memslot_ref", {}, {}, VOCAB)
    net.memory = Oracle(net.cfg)
    net.memory.theta.data.fill_(0.95)
    ids, read = _tensors(d, "cpu")
    with torch.no_grad():
        f, _ = net.front(ids, net.front.initial_state(ids.shape[0]))
        par = net.memory.parallel(f, read, hard=True)
        net.eval()
        rec, _ = net.memory.recurrent(f, net.memory.initial_state(ids.shape[0]), read)
    q = (torch.as_tensor(d.q_row), torch.as_tensor(d.q_slot))
    assert torch.allclose(par[q], rec[q], atol=1e-4)


def test_memslot_version_counter_reads_the_kth_entry_exactly():
    """With the IR's gates, the slot table answers every write, overwrite, version and discard
    query right however untrained the rest is, once the mode head picks the ask."""
    from memgen.memslot_ref.model import MemslotMemory

    d = _data(families=("overwrite", "version", "discard"), rows=4)
    labels = (torch.as_tensor(d.write_label), torch.as_tensor(d.discard_label))
    net = build("memslot_ref", {}, {}, VOCAB)

    class Oracle(MemslotMemory):
        def gates(self, f):
            return labels[0] * 20 - 10, labels[1] * 20 - 10

        def _combine(self, f, qpos, r_modes, slot_seen, r_fb, fb_max):
            from memgen.format.vocab import ASK_LATEST_TOKEN, ASK_PREVIOUS_TOKEN
            from memgen.memslot_ref.model import _take

            ask = _take(f.ids, (qpos - 3).clamp(min=0))
            mode = torch.where(ask == ASK_LATEST_TOKEN, 0, torch.where(ask == ASK_PREVIOUS_TOKEN, 2, 1))
            pick = r_modes.gather(2, mode[..., None, None].expand(-1, -1, 1, r_modes.shape[-1])).squeeze(2)
            return pick, torch.ones_like(fb_max)

    net.memory = Oracle(net.cfg)
    net.memory.theta.data.fill_(0.95)
    net.eval()
    with torch.no_grad():
        pred = query_logits(net, d, chunk=d.ids.shape[1]).argmax(-1).numpy()
    assert (pred == d.q_class).mean() == 1.0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A memslot_ref trained for a few seconds, saved as a checkpoint."""
    from memgen.cli.train import _meta
    from memgen.models import checkpoint

    cfg = TrainConfig(model="memslot_ref", steps=30, minutes=0, batch=14, eval_every=1e9, heldout_per_probe=30)
    result = train(cfg)
    path = tmp_path_factory.mktemp("ckpt") / "memslot.pt"
    checkpoint.save(path, "memslot_ref", result.net.state_dict(), _meta(result, "test"))
    return result, path


def test_short_training_lowers_loss_and_beats_the_unknown_prior_on_write(trained):
    result, _ = trained
    first, last = result.curve[0], result.curve[-1]
    assert last["step"] == 30 and len(result.curve) == 2
    d, _ = heldout_set(192, 30, 0, VOCAB)
    prior = float(((d.q_class == 0) & (d.q_probe == PROBES.index("write"))).sum()
                  / (d.q_probe == PROBES.index("write")).sum())
    assert last["accuracy"]["write"] > max(prior, first["accuracy"]["write"]) - 1e-9
    assert last["accuracy"]["write"] > prior + 0.2
    assert last["loss"] is not None and last["loss"] < np.log(1 + VOCAB.values) - 1.0  # below a uniform guess


def test_checkpoint_round_trip_answers_through_evaluate(trained, tmp_path):
    from memgen.evaluation.learned import MemslotRef
    from memgen.evaluation.predict import evaluate
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import Request

    result, path = trained
    ds = tmp_path / "ds"
    generate(Request(families=("write", "overwrite"), lengths=(256,), episodes=6, seed=9), ds)
    ev = evaluate(ds, [MemslotRef(checkpoint=str(path))])
    (res,) = ev.results.values()
    assert res.prediction.size == ev.n_queries > 0
    cells = {c["probe"]: c for c in ev.cells()}
    assert cells["write"]["accuracy"] > 0.5
    assert set(ev.routes(next(iter(ev.results)))) <= {"slot", "fallback"}


def test_checkpoint_of_another_model_is_refused(trained, tmp_path):
    from memgen.evaluation.learned import DeltaNet
    from memgen.models import checkpoint

    _, path = trained
    with pytest.raises(UsageError, match="checkpoint of 'memslot_ref', not of 'delta_net'"):
        DeltaNet(checkpoint=str(path)).load()
    name, meta, state = checkpoint.load(path)
    assert name == "memslot_ref" and meta["parameters"] > 0 and state


def test_corrupted_or_other_version_checkpoint_is_refused(trained, tmp_path):
    from memgen.models import checkpoint

    _, path = trained
    blob = path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="corrupted or truncated"):
        checkpoint.load(cut)
    raw = torch.load(path, weights_only=True)
    raw["state_dict"]["front.embed.weight"][0, 0] += 1.0
    flipped = tmp_path / "flipped.pt"
    torch.save(raw, flipped)
    with pytest.raises(DataError, match="sha256"):
        checkpoint.load(flipped)
    raw = torch.load(path, weights_only=True)
    raw["format_version"] = 99
    old = tmp_path / "old.pt"
    torch.save(raw, old)
    with pytest.raises(DataError, match="format version 99"):
        checkpoint.load(old)


def test_a_rendering_the_model_cannot_read_and_a_too_long_row_are_refused(trained):
    from memgen.evaluation.learned import MemslotRef
    from memgen.models.stream import TokenBatch

    _, path = trained
    table = episode_table("write", 192, 0, 2, 0, "heldout", VOCAB)
    other = Vocab(values=2048, vocab_size=8192)
    with pytest.raises(DataError, match="cannot read this rendering"):
        MemslotRef(checkpoint=str(path)).predict(TokenBatch.from_table(table, other))
    with pytest.raises(UsageError, match="memory budget"):
        MemslotRef(checkpoint=str(path), max_length=128).predict(TokenBatch.from_table(table, VOCAB))


class PluginMemory(nn.Module):
    """A user's memory: softmax attention from each position's key to earlier keys, values gated
    by a learned write score (the documented interface: initial_state / forward)."""

    def __init__(self, cfg: FrontEndConfig):
        super().__init__()
        self.score = nn.Linear(cfg.d_context, 1)
        self.tau = nn.Parameter(torch.tensor(10.0))

    def initial_state(self, batch):
        return None

    def forward(self, f, state, read):
        T = f.key.shape[1]
        logit = self.tau * f.key @ f.key.transpose(1, 2) + self.score(f.context).transpose(1, 2)
        mask = torch.ones(T, T, dtype=torch.bool).triu()  # strictly earlier positions only
        logit = torch.cat([logit.masked_fill(mask, float("-inf")), torch.zeros(*logit.shape[:2], 1)], -1)
        p = torch.softmax(logit, -1)
        return p[..., :-1] @ f.value + p[..., -1:] * f.absent, state


def test_plugin_memory_trains_and_scores_through_module_class(tmp_path):
    from click.testing import CliRunner

    from memgen.cli.train import train_command
    from memgen.evaluation.learned import Learned
    from memgen.evaluation.predict import evaluate
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import Request

    spec = f"{__name__}:PluginMemory"
    out = tmp_path / "plugin.pt"
    r = CliRunner().invoke(train_command, ["--model", spec, "--family", "write", "--steps", "5", "--minutes", "0",
                                           "--batch", "8", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert out.is_file() and out.with_suffix(".json").is_file() and out.with_suffix(".png").is_file()
    ds = tmp_path / "ds"
    generate(Request(families=("write",), lengths=(256,), episodes=3, seed=4), ds)
    ev = evaluate(ds, [Learned(checkpoint=str(out), memory=spec)])
    assert next(iter(ev.results.values())).prediction.size == ev.n_queries


@pytest.mark.parametrize("model", ["memslot_ref", "transformer", "delta_net", "topk_attention"])
def test_shipped_checkpoint_loads_and_reproduces_its_recorded_accuracy(model):
    """On the fixed eval set shipped beside the checkpoints (stored token ids, so a later
    generator change leaves it as it is), every query's answer as recorded in the sidecar."""
    import json

    from memgen.evaluation.learned import LEARNED_MODELS, fixed_eval_accuracy, shipped_checkpoint
    from memgen.io.atomic import sha256_file

    path = shipped_checkpoint(model)
    if not path.is_file():
        pytest.skip(f"no shipped {model} checkpoint in this checkout")
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["sha256"] == sha256_file(path) and path.with_suffix(".png").is_file()
    assert path.stat().st_size < 2 << 20 and 0.9 * 293_550 <= side["parameters"] <= 1.1 * 293_550
    assert side["train"]["minutes"] == 20 and side["command"].startswith(f"memgen train --model {model} ")
    net, _ = {m.name: m for m in LEARNED_MODELS}[model]().load()
    acc = fixed_eval_accuracy(net)
    assert acc["n"] == side["fixed_eval"]["n"] == 120
    assert acc["correct"] == side["fixed_eval"]["correct"]
    if model == "memslot_ref":
        assert acc["correct"] == 120 and side["final"]["correct"] >= 595


def test_cli_refuses_a_corrupted_checkpoint_with_one_line(tmp_path, trained):
    from click.testing import CliRunner

    from memgen.cli import main
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import Request

    _, path = trained
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[:5000])
    ds = tmp_path / "ds"
    generate(Request(families=("write",), lengths=(256,), episodes=2, seed=4), ds)
    r = CliRunner().invoke(main, ["eval", "--dataset", str(ds), "--model", f"memslot_ref:checkpoint={cut}"])
    assert r.exit_code == 1
    assert "corrupted or truncated" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["train", "--family", "write", "--length", "32", "--steps", "1", "--minutes", "0",
                                  "--out", str(tmp_path / "x.pt")])
    assert r.exit_code == 2 and "too short" in r.output


def test_memslot_recurrent_slot_table_in_rounds_equals_one_token_at_a_time(monkeypatch):
    """Interleaved queries: in one chunk the slot table runs in rounds (slot_write, then slot_read;
    a read waits for its own slot's earlier commands only, a later command on its slot waits for
    it); one token per chunk runs every event and read on its own.  The shipped checkpoint answers
    the same both ways."""
    import functools

    from memgen.evaluation.learned import MemslotRef, shipped_checkpoint
    from memgen.generators import knobs
    from memgen.memslot_ref.model import MemslotMemory

    if not shipped_checkpoint("memslot_ref").is_file():
        pytest.skip("no shipped memslot_ref checkpoint in this checkout")
    monkeypatch.setattr(knobs, "Knobs", functools.partial(knobs.Knobs, query_position="interleaved"))
    families = ("overwrite", "discard", "mixed")
    d = concat([token_data(episode_table(f, 256, 0, 2, 0, "heldout", VOCAB)) for f in families])
    net, _ = MemslotRef().load()
    rounds, real = [], MemslotMemory._address

    def counted(self, *a):
        r = real(self, *a)
        rounds.append(max(map(len, r), default=0))
        return r

    monkeypatch.setattr(MemslotMemory, "_address", counted)
    with torch.no_grad():
        whole = query_logits(net, d, chunk=d.ids.shape[1])
        assert rounds[0] > 1  # some read came before a later command on its slot
        step = query_logits(net, d, chunk=1)
    assert torch.allclose(whole, step, atol=1e-4)
    assert torch.equal(whole.argmax(-1), step.argmax(-1))
    assert (whole.argmax(-1).numpy() == d.q_class).mean() >= 0.75
