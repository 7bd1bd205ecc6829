"""A model knob beyond its ceiling is one line and exit 2 before any work (``fixed_state:d=1000000``
was killed for memory)."""

from __future__ import annotations

import pytest
from eco_helpers import cli, one_error_line


def test_a_fixed_state_wider_than_its_ceiling_is_refused(model_dataset):
    rc, _, err = cli("eval", "--dataset", str(model_dataset), "--model", "fixed_state:d=1000000", "--quiet",
                     timeout=120)
    assert rc == 2
    one_error_line(err, "d must be 1 to 4096")


def test_learned_eval_knobs_beyond_their_ceilings_are_refused(model_dataset):
    from click.testing import CliRunner

    from memgen.cli import main

    for spec, words in (("memslot_ref:chunk=0", "chunk must be 1 to 4,194,304"),
                        ("transformer:batch_tokens=1000000000000", "batch_tokens must be 1 to 67,108,864")):
        r = CliRunner().invoke(main, ["eval", "--dataset", str(model_dataset), "--model", spec, "--quiet"])
        assert r.exit_code == 2 and words in r.output and "Traceback" not in r.output, r.output


def test_a_checkpoint_whose_config_is_beyond_a_ceiling_is_refused_before_any_allocation(model_dataset, tmp_path):
    """A hostile checkpoint asking for 10**9 slots or a 10**6-wide embedding: one line, exit 1."""
    pytest.importorskip("torch")
    from click.testing import CliRunner

    from memgen.cli import main
    from memgen.evaluation.learned import shipped_checkpoint
    from memgen.models import checkpoint

    if not shipped_checkpoint("memslot_ref").is_file():
        pytest.skip("no shipped memslot_ref checkpoint in this checkout")
    _, meta, state = checkpoint.load(shipped_checkpoint("memslot_ref"), "memslot_ref")
    for change, words in (({"knobs": {"slots": 10 ** 9}}, "slots must be an integer from 1 to 16,384"),
                          ({"frontend": {**meta["frontend"], "d_model": 10 ** 6}}, "d_model must be an integer")):
        bad = tmp_path / "bad.pt"
        checkpoint.save(bad, "memslot_ref", state, {**meta, **change})
        r = CliRunner().invoke(main, ["eval", "--dataset", str(model_dataset), "--model",
                                      f"memslot_ref:checkpoint={bad}", "--quiet"])
        assert r.exit_code == 1 and words in r.output and "Traceback" not in r.output, r.output


def test_training_sizes_and_memory_knobs_beyond_their_ceilings_are_refused():
    pytest.importorskip("torch")
    from memgen.format.errors import UsageError
    from memgen.models.train import TrainConfig, train

    for cfg, words in ((TrainConfig(model="delta_net", knobs={"heads": 1000}, steps=1), "heads must be"),
                       (TrainConfig(model="topk_attention", knobs={"top_k": 10 ** 6}, steps=1), "top_k must be"),
                       (TrainConfig(frontend={"hidden": 10 ** 7}, steps=1), "hidden must be"),
                       (TrainConfig(batch=10 ** 6, steps=1), "--batch must be 1 to 4,096")):
        with pytest.raises(UsageError, match=words):
            train(cfg)
