"""Throughput of ``memgen generate`` (token rendering, one worker, shards written).

    python benchmarks/bench_generate.py            # all three cases
    python benchmarks/bench_generate.py --case 1k  # one case
    python benchmarks/bench_generate.py --serial   # no writer thread: build and write in turn
    python benchmarks/bench_generate.py --numpy    # without the compiled twins (MEMGEN_KERNELS=0)
    python benchmarks/bench_generate.py --cold     # the kernels' load time inside the timed run
    python benchmarks/bench_generate.py --breakdown  # also: CPU seconds per shard, by stage

Each case runs ``--repeat`` times (3 by default), each in a fresh subprocess so that its peak
RSS is its own; the median run is shown, with every run's tokens/s, fastest first.  The time
is the library's ``generate()`` call (shards, manifest and card written), without interpreter
start.  One worker process: by default it builds blocks of episodes while a writer thread
encodes, hashes and writes each finished block to its shard's temporary file (what ``memgen
generate --workers 1`` does); ``--serial`` measures the plain loop, one core.

The compiled twins (memgen.ir.jit) cost a fixed time once per process: importing numba and loading
the kernels from numba's disk cache (compiling them, the first time on a machine).  The child
pays it first by generating a small dataset of the same shape, timed apart and printed as
"warm-up"; "seconds" and "tokens/s" are the run after it.  ``--cold`` leaves the warm-up
out, so that "seconds" includes it.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

CASES = {
    "1k": dict(families=("overwrite",), lengths=(1024,), episodes=20_000,
               knobs=dict(keys=64, overwrites=16, queries=64)),
    "4k": dict(families=("overwrite",), lengths=(4096,), episodes=5_000, knobs={}),
    "2m": dict(families=("mixed",), lengths=(2_097_152,), episodes=50, knobs={}),
}


def _clock_stages() -> collections.Counter:
    """Wrap the stages of a shard with thread CPU clocks (each stage runs in one thread):
    building blocks; in the writer, each block's encoding (Arrow IPC + zstd) with its sha256
    and file writes, the footer, and the commit (close and rename)."""
    from memgen.io.atomic import PendingFile
    from memgen.io.shards import ShardEncoder
    from memgen.pipeline import job

    clocks: collections.Counter = collections.Counter()

    def clocked(stage, fn):
        def run(*args, **kwargs):
            t = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                clocks[stage] += time.thread_time() - t
        return run

    real_blocks = job.build_blocks

    def build_blocks(*args, **kwargs):  # a generator: clock each block as it is made
        blocks = real_blocks(*args, **kwargs)
        while True:
            t = time.thread_time()
            block = next(blocks, None)
            clocks["build"] += time.thread_time() - t
            if block is None:
                return
            yield block

    job.build_blocks = build_blocks
    ShardEncoder.add = clocked("encode+sha256+write", ShardEncoder.add)
    ShardEncoder.finish = clocked("footer", ShardEncoder.finish)
    PendingFile.commit = clocked("commit", PendingFile.commit)
    return clocks


def run_case(name: str, serial: bool = False, cold: bool = False, breakdown: bool = False) -> dict:
    from memgen.generators.knobs import Knobs
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import Request

    c = CASES[name]
    req = Request(families=c["families"], renderings=("token",), lengths=c["lengths"], episodes=c["episodes"],
                  seed=0, knobs=Knobs(**c["knobs"]))
    warm = 0.0
    if not cold:  # another seed, few episodes, the same shapes, every batch compiled: kernels loaded
        from memgen.ir import jit

        small = Request(families=c["families"], renderings=("token",), lengths=c["lengths"],
                        episodes=max(2, c["episodes"] // 100), seed=1, knobs=Knobs(**c["knobs"]))
        with tempfile.TemporaryDirectory() as d, jit.everywhere():
            t0 = time.perf_counter()
            generate(small, d, writer_thread=not serial)
            warm = time.perf_counter() - t0
    clocks = _clock_stages() if breakdown else None
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        m = generate(req, d, writer_thread=not serial)
        wall = time.perf_counter() - t0
        size = sum(s["bytes"] for cfg in m["configs"].values() for s in cfg["shards"])
    tokens = c["episodes"] * c["lengths"][0]
    n_shards = sum(len(cfg["shards"]) for cfg in m["configs"].values())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux: KiB)
    return {"case": name, "episodes": c["episodes"], "length": c["lengths"][0], "tokens": tokens,
            "seconds": round(wall, 3), "tokens_per_s": round(tokens / wall), "peak_rss_mib": round(rss),
            "shard_mb": round(size / 1e6, 1), "warm_up_s": round(warm, 2), "shards": n_shards,
            "cpu_s_per_shard": {k: round(v / n_shards, 3) for k, v in (clocks or {}).items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=list(CASES), action="append")
    ap.add_argument("--serial", action="store_true", help="no writer thread (one core)")
    ap.add_argument("--numpy", action="store_true", help="numpy paths only (MEMGEN_KERNELS=0)")
    ap.add_argument("--cold", action="store_true", help="no warm-up: the timed run loads the kernels")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case (fresh processes); the median is shown")
    ap.add_argument("--breakdown", action="store_true", help="also CPU seconds per shard by stage (median run)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, args.serial, args.cold, args.breakdown)))
        return
    env = dict(os.environ, **({"MEMGEN_KERNELS": "0"} if args.numpy else {}))
    print(f"{'case':<5}{'episodes':>10}{'length':>11}{'tokens':>13}{'seconds':>9}{'tokens/s':>14}"
          f"  {'runs (M tokens/s)':<34}{'peak RSS MiB':>14}{'shards MB':>11}{'warm-up s':>11}")
    for name in args.case or list(CASES):
        cmd = ([sys.executable, __file__, "--child", name] + ["--serial"] * args.serial + ["--cold"] * args.cold
               + ["--breakdown"] * args.breakdown)
        runs = []
        for _ in range(args.repeat):  # each run in a fresh process: this machine is shared and noisy
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        runs.sort(key=lambda r: r["seconds"])
        r = runs[len(runs) // 2]  # the median run
        spread = " / ".join(f"{x['tokens_per_s'] / 1e6:.1f}" for x in runs)
        print(f"{r['case']:<5}{r['episodes']:>10,}{r['length']:>11,}{r['tokens']:>13,}{r['seconds']:>9.2f}"
              f"{r['tokens_per_s'] / 1e6:>12.1f} M  {spread:<34}{max(x['peak_rss_mib'] for x in runs):>14,}"
              f"{r['shard_mb']:>11,.0f}{r['warm_up_s']:>11.2f}")
        if args.breakdown:
            stages = ", ".join(f"{k} {v:.3f}" for k, v in r["cpu_s_per_shard"].items())
            print(f"      CPU s per shard ({r['shards']} shards): {stages}")


if __name__ == "__main__":
    main()
