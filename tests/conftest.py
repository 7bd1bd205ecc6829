import os

import pytest
from hypothesis import settings

# In CI, property and fuzz tests draw the same examples on every run (a new counterexample is
# found by developers running the suite locally, where draws stay random).
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Tests never reach the network: datasets and the Hub client must work from local files.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


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
