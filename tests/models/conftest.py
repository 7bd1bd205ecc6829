"""Fixtures for the model tests: small generated tables and dataset folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from memgen.pipeline.request import Request


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
