"""The dispatch: MEMGEN_TRITON picks the kernel or the reference, and a setting that cannot work
is one clear error, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from memgen import kernels
from memgen.format.errors import UsageError


def test_auto_runs_the_reference_on_cpu_tensors_and_zero_always(monkeypatch):
    x = torch.zeros(1)
    for m in ("auto", "0", ""):
        monkeypatch.setenv("MEMGEN_TRITON", m)
        assert not kernels.use_triton("slot_read", x)
    monkeypatch.setenv("MEMGEN_TRITON", "1")
    assert kernels.use_triton("slot_read", x) and kernels.interpreted()


def test_an_unknown_setting_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("MEMGEN_TRITON", "fast")
    with pytest.raises(UsageError, match="MEMGEN_TRITON must be one of 0, 1, auto"):
        kernels.slot_read(torch.zeros(1, 1, 1, 2), torch.zeros(1, 1, 1, 2), torch.zeros(1, 1, 1, 2),
                          torch.ones(1, 1, dtype=torch.bool))


def test_bad_selection_arguments_are_usage_errors():
    q = torch.zeros(1, 1, 1, 2)
    with pytest.raises(UsageError, match="reduce must be one of mean, max"):
        kernels.select_blocks(q, q, torch.zeros(1, 1, dtype=torch.long), 4, 1, "median")
    with pytest.raises(UsageError, match="block must be at least 1"):
        kernels.select_blocks(q, q, torch.zeros(1, 1, dtype=torch.long), 0, 1)


def test_a_cpu_run_never_loads_triton_and_forcing_the_kernels_without_the_interpreter_says_how():
    """One fresh process (no TRITON_INTERPRET): the models import and read on the CPU with triton
    never imported; then MEMGEN_TRITON=1 is one line that says what to set."""
    code = ("import os, sys, torch; from memgen import kernels; from memgen.format.errors import UsageError\n"
            "import memgen.memslot_ref.model, memgen.baselines.topk_attention\n"
            "q = torch.randn(1, 4, 1, 2); kernels.select_blocks(q, q, torch.tensor([[3, 3, 3, 3]]), 1, 1)\n"
            "kernels.slot_read(q, q, q, torch.ones(1, 4, dtype=torch.bool))\n"
            "print('triton' in sys.modules)\n"
            "os.environ['MEMGEN_TRITON'] = '1'\n"
            "try: kernels.use_triton('slot_read', torch.zeros(1))\n"
            "except UsageError as e: print(e.message)")
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "MEMGEN_TRITON")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0 and len(lines) == 2, out.stderr[-500:]
    assert lines[0] == "False"
    assert "TRITON_INTERPRET=1" in lines[1] and lines[1].endswith("(or use MEMGEN_TRITON=auto)")


def test_a_block_the_kernels_cannot_tile_is_a_usage_error(kernels_on):
    q = torch.zeros(1, 2, 1, 2)
    with pytest.raises(UsageError, match="power-of-two block, not 48"):
        kernels.select_blocks(q, torch.zeros(1, 96, 1, 2), torch.tensor([[50, 95]]), 48, 1, "max")


@pytest.mark.slow
def test_memgen_eval_gives_the_same_predictions_through_the_kernels_and_refuses_a_bad_setting(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from memgen.cli import main
    from memgen.evaluation.learned import shipped_checkpoint
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import Request

    if not shipped_checkpoint("memslot_ref").is_file():
        pytest.skip("no shipped memslot_ref checkpoint in this checkout")
    ds = tmp_path / "ds"
    generate(Request(families=("overwrite",), lengths=(192,), episodes=2, seed=3), ds)
    preds = {}
    for m in ("0", "1"):  # the reference, then the kernels (interpreted here)
        monkeypatch.setenv("MEMGEN_TRITON", m)
        r = CliRunner().invoke(main, ["eval", "--dataset", str(ds), "--model", "memslot_ref", "--quiet",
                                      "--out", str(tmp_path / f"out{m}")])
        assert r.exit_code == 0, r.output
        preds[m] = (tmp_path / f"out{m}" / "memslot_ref.jsonl").read_text()
    assert preds["0"] == preds["1"] and preds["0"].count("\n") >= 8
    monkeypatch.setenv("MEMGEN_TRITON", "fast")
    r = CliRunner().invoke(main, ["eval", "--dataset", str(ds), "--model", "memslot_ref"])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "MEMGEN_TRITON must be one of 0, 1, auto, not 'fast'" in r.output
