"""Fixtures for the scorer tests: small generated dataset folders and hand-built ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from scorer_helpers import catalogue_episode, episodes_table, vocab_dict, write_folder


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
