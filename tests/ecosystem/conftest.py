"""Fixtures of the ecosystem tests: text datasets and a tiny local Llama (nothing downloaded)."""

from __future__ import annotations

import pytest

from memgen.pipeline.job import generate
from memgen.pipeline.request import Request
from memgen.render.registry import RenderOptions


def make_text_dataset(root, families=("overwrite", "discard"), episodes=3, seed=5, tokenizer="cl100k",
                      length=1024):
    """A text-rendering dataset folder at ``root`` (returned)."""
    req = Request(families=tuple(families), renderings=("text",), lengths=(length,), episodes=episodes, seed=seed,
                  render=RenderOptions(tokenizer=str(tokenizer)))
    generate(req, root)
    return root


@pytest.fixture(scope="session")
def text_dataset(tmp_path_factory):
    """overwrite and discard in the text rendering (cl100k), 3 episodes each at 1,024 tokens."""
    return make_text_dataset(tmp_path_factory.mktemp("text") / "ds")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny Llama whose tokenizer is trained on memgen prompts; answers every prompt with
    ``tiny_model.ANSWER`` (see tests/ecosystem/tiny_model.py)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_model import build_tiny_llama

    from memgen.io.dataset import Dataset

    corpus = make_text_dataset(tmp_path_factory.mktemp("corpus") / "ds",
                               families=("write", "overwrite", "version", "distractor", "discard", "mixed"),
                               episodes=2, seed=11)
    ds = Dataset.open(corpus)
    prompts = [p for c in ds.configs for p in ds.table(c).column("prompt").to_pylist()]
    return build_tiny_llama(tmp_path_factory.mktemp("model") / "tiny-llama", prompts, prompts)


@pytest.fixture(scope="session")
def model_dataset(tmp_path_factory, tiny_model):
    """overwrite and discard in the text rendering, lengths counted with the tiny model's own
    tokenizer (``--tokenizer MODEL_DIR``): 2 episodes each at 1,024 of its tokens."""
    return make_text_dataset(tmp_path_factory.mktemp("mtext") / "ds", episodes=2, seed=8, tokenizer=tiny_model)
