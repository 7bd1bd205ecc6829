"""Bring your own memory as a mixer (memgen/models/mixer.py): a causal (B, T, d) -> (B, T, d)
layer built with ``hidden_size`` trains and scores through ``--model module:Class``, the way
flash-linear-attention's layers do on a GPU; without fla or a GPU, naming one is one line."""

from __future__ import annotations

import importlib.util

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import memgen.evaluation.zoo  # noqa: E402,F401
from memgen.format.errors import UsageError  # noqa: E402
from memgen.format.vocab import Vocab  # noqa: E402
from memgen.models.train import _tensors, build, concat, episode_table, memory_class, token_data  # noqa: E402

torch.set_num_threads(1)
VOCAB = Vocab()


class MeanMixer(nn.Module):
    """A causal mixer shaped like an fla layer: ``hidden_size`` in, a tuple (o, None, None) out;
    o_t = W mean_{s<=t} (x_s * gate(x_s)): the running mean of gated positions."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.gate = nn.Linear(hidden_size, 1)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden_states, attention_mask=None, past_key_values=None, use_cache=False):
        T = hidden_states.shape[1]
        x = hidden_states * torch.sigmoid(self.gate(hidden_states))  # (B, T, d)
        h = torch.cumsum(x, 1) / torch.arange(1, T + 1, dtype=x.dtype)[None, :, None]  # (B, T, d)
        return self.proj(h), None, past_key_values


def test_a_mixer_is_wrapped_as_a_memory_and_chunked_equals_one_pass():
    spec = f"{__name__}:MeanMixer"
    assert memory_class(spec).layer is MeanMixer
    torch.manual_seed(0)
    net = build(spec, {}, {}, VOCAB).eval()
    d = concat([token_data(episode_table(f, 192, 0, 2, 1, "heldout", VOCAB)) for f in ("write", "discard")])
    ids, read = _tensors(d, "cpu")
    with torch.inference_mode():
        full = net.run_chunked(ids, read, ids.shape[1])
        chunked = net.run_chunked(ids, read, 50)
    q = (torch.as_tensor(d.q_row), torch.as_tensor(d.q_slot))
    assert torch.allclose(full[q], chunked[q], atol=1e-4)


@pytest.mark.slow
def test_a_mixer_trains_and_scores_through_module_class(tmp_path):
    from click.testing import CliRunner

    from memgen.cli.train import train_command
    from memgen.evaluation.learned import Learned
    from memgen.evaluation.predict import evaluate
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import Request

    spec = f"{__name__}:MeanMixer"
    out = tmp_path / "mixer.pt"
    r = CliRunner().invoke(train_command, ["--model", spec, "--family", "write", "--steps", "3", "--minutes", "0",
                                           "--batch", "8", "--device", "cpu", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    ds = tmp_path / "ds"
    generate(Request(families=("write",), lengths=(256,), episodes=2, seed=4), ds)
    ev = evaluate(ds, [Learned(checkpoint=str(out), memory=spec)])
    assert next(iter(ev.results.values())).prediction.size == ev.n_queries


def test_flash_linear_attention_layers_need_fla_and_a_gpu_else_one_line():
    have = importlib.util.find_spec("fla") is not None and torch.cuda.is_available()
    if have:  # a GPU with fla: a few steps of its GatedDeltaNet through memgen's loop
        from memgen.models.train import TrainConfig, train

        res = train(TrainConfig(model="fla.layers:GatedDeltaNet", families=("write",), steps=3, minutes=0,
                                batch=8, knobs={"num_heads": 2}, device="cuda"))
        assert res.steps == 3
        return
    with pytest.raises(UsageError, match="flash-linear-attention") as e:
        memory_class("fla.layers:GatedDeltaNet")
    assert "\n" not in e.value.message
