"""benchmarks/bench_kernels.py judges the issue's GPU targets from its rows (no GPU needed here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_kernels.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_kernels", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rows(power: float, sdpa_ms: float, read_ratio: float) -> list[dict]:
    op = "block_topk_attention"
    rows = [dict(op=op, impl="triton", T=T, fwd_ms=1.0, fwd_bwd_ms=(T / 16384) ** power)
            for T in (16384, 131072, 1048576)]
    rows.append(dict(op=op, impl="sdpa_causal", T=131072, fwd_ms=1.0, fwd_bwd_ms=sdpa_ms))
    rows += [dict(op="slot_read", impl="triton", T=4096, fwd_ms=read_ratio, fwd_bwd_ms=read_ratio),
             dict(op="slot_read", impl="matmul_softmax", T=4096, fwd_ms=1.0, fwd_bwd_ms=1.0)]
    return rows


def test_targets_pass_for_a_linear_fast_kernel_and_fail_for_a_quadratic_slow_one(bench):
    good = bench.targets(_rows(1.0, sdpa_ms=80.0, read_ratio=1.5))  # 8 ms at 131,072: 10x faster
    assert [line.split()[0] for line in good] == ["PASS", "PASS", "PASS", "n/a"]
    assert "T^1.00" in good[1] and "10.0x faster" in good[0]
    bad = bench.targets(_rows(2.0, sdpa_ms=80.0, read_ratio=2.5))  # 64 ms at 131,072
    assert [line.split()[0] for line in bad] == ["FAIL", "FAIL", "FAIL", "n/a"] and "T^2.00" in bad[1]


def test_targets_say_not_run_without_rows(bench):
    assert all(line.startswith("n/a") for line in bench.targets([]))


def test_an_impossible_size_is_a_usage_error(bench, capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(["--max-length", "100"])
    assert e.value.code == 2 and "--max-length must be at least 4096" in capsys.readouterr().err
