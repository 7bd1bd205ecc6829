import os
from pathlib import Path

import pytest
from hypothesis import settings
from scorer_helpers import catalogue_episode, episodes_table, vocab_dict, write_folder

from memgen.pipeline.job import generate
from memgen.pipeline.request import Request
from memgen.render.registry import RenderOptions

# In CI, property and fuzz tests draw the same examples on every run (a new counterexample is
# found by developers running the suite locally, where draws stay random).
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Tests never reach the network: datasets and the Hub client must work from local files.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")



# ---- text datasets and a tiny local Llama (harness, io)

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
    ``tiny_model.ANSWER`` (see tests/support/tiny_model.py)."""
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
def llama_dataset(tmp_path_factory, tiny_model):
    """overwrite and discard in the text rendering, lengths counted with the tiny model's own
    tokenizer (``--tokenizer MODEL_DIR``): 2 episodes each at 1,024 of its tokens."""
    return make_text_dataset(tmp_path_factory.mktemp("mtext") / "ds", episodes=2, seed=8, tokenizer=tiny_model)


# ---- model tests

@pytest.fixture(scope="session")
def model_dataset(tmp_path_factory) -> Path:
    """Every family in the token, chunk and bridge renderings at 2,048 tokens, 8 episodes."""
    from memgen.generators.registry import FAMILIES
    from memgen.pipeline.job import generate

    root = tmp_path_factory.mktemp("models") / "ds"
    req = Request(families=tuple(FAMILIES), renderings=("token", "chunk", "bridge"), lengths=(2048,),
                  episodes=8, seed=5, shard_size=3)
    generate(req, root)
    return root


# ---- one real local Ray cluster shared by the tests that need it

@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster with 2 CPUs (``ray.init(num_cpus=2)``), shut down after the session."""
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'memgen-bench[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


# ---- scorer tests

@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> Path:
    """A small generated dataset: every family, token/chunk/bridge, two lengths."""
    from memgen.generators.registry import FAMILIES
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import Request

    root = tmp_path_factory.mktemp("generated")
    req = Request(families=tuple(FAMILIES), renderings=("token", "chunk", "bridge"), lengths=(512, 1024),
                  episodes=12, seed=3)
    generate(req, root)
    return root


@pytest.fixture()
def hand_folder(tmp_path) -> Path:
    """A folder with the catalogue episode (and two copies) as token and text configs."""
    eps = [catalogue_episode(f"tok-{i}") for i in range(3)]
    texts = [catalogue_episode(f"txt-{i}") for i in range(3)]
    return write_folder(tmp_path / "hand", {
        "mixed-token-128": episodes_table(eps, "token"),
        "mixed-text-128": episodes_table(texts, "text"),
    }, vocab=vocab_dict())


@pytest.fixture(scope="session")
def generated_text(tmp_path_factory) -> Path:
    """A small generated text dataset: every family, every domain in turn."""
    from memgen.generators.registry import FAMILIES
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import Request

    root = tmp_path_factory.mktemp("generated_text")
    generate(Request(families=tuple(FAMILIES), renderings=("text",), lengths=(2048,), episodes=6, seed=5), root)
    return root


# ---- text rendering tests

@pytest.fixture(scope="session")
def hf_tokenizer(tmp_path_factory):
    """A BPE tokenizer trained here on memgen's own text (filler and events of every domain),
    saved as tokenizer.json: a local Hugging Face tokenizer, no download."""
    import numpy as np
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from memgen.render.text.domain import available_domains, load_domain

    corpus = []
    rng = np.random.default_rng(0)
    for name in available_domains():
        dom = load_domain(name)
        corpus += dom.filler.sample(rng, 400, dom.filler.counts(_Chars()))[0]
        for temps in dom.phrasings.values():
            corpus += [t.render(key=dom.key_surface(3), value=dom.value_surface(5), lookalike="x",
                                ordinal="second", k=2) for t in temps]
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=800, special_tokens=["[UNK]"]))
    folder = tmp_path_factory.mktemp("hf_tok")
    tok.save(str(folder / "tokenizer.json"))
    return folder


class _Chars:
    """A stand-in counter (characters) to sample filler before any tokenizer exists."""

    name = "chars"

    def count_many(self, texts):
        return [len(t) for t in texts]


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """Every family in the token, chunk and bridge renderings at 1,024 tokens, 6 episodes each."""
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import Request

    root = tmp_path_factory.mktemp("ds") / "small"
    req = Request(families=("write", "overwrite", "version", "distractor", "no_write_signal", "discard", "mixed"),
                  renderings=("token", "chunk", "bridge"), lengths=(1024,), episodes=6, seed=3)
    generate(req, root)
    return root
