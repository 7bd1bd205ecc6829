"""Throughput of ``memgen generate`` (token rendering, one worker, shards written).

    python benchmarks/bench_generate.py            # all three cases
    python benchmarks/bench_generate.py --case 1k  # one case
    python benchmarks/bench_generate.py --serial   # no writer thread: build and write in turn

Each case runs in a fresh subprocess so that its peak RSS is its own; the time is the
library's ``generate()`` call (shards, manifest and card written), without interpreter start.
One worker process: by default it builds each shard while a writer thread compresses, hashes
and writes the previous one (what ``memgen generate --workers 1`` does); ``--serial`` measures
the plain loop, one core.
"""

from __future__ import annotations

import argparse
import json
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


def run_case(name: str, serial: bool = False) -> dict:
    from memgen.generators import Knobs
    from memgen.pipeline import Request, generate

    c = CASES[name]
    req = Request(families=c["families"], renderings=("token",), lengths=c["lengths"], episodes=c["episodes"],
                  seed=0, knobs=Knobs(**c["knobs"]))
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        m = generate(req, d, writer_thread=not serial)
        wall = time.perf_counter() - t0
        size = sum(s["bytes"] for cfg in m["configs"].values() for s in cfg["shards"])
    tokens = c["episodes"] * c["lengths"][0]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux: KiB)
    return {"case": name, "episodes": c["episodes"], "length": c["lengths"][0], "tokens": tokens,
            "seconds": round(wall, 3), "tokens_per_s": round(tokens / wall), "peak_rss_mib": round(rss),
            "shard_mb": round(size / 1e6, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=list(CASES), action="append")
    ap.add_argument("--serial", action="store_true", help="no writer thread (one core)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, args.serial)))
        return
    print(f"{'case':<5}{'episodes':>10}{'length':>11}{'tokens':>13}{'seconds':>9}{'tokens/s':>14}"
          f"{'peak RSS MiB':>14}{'shards MB':>11}")
    for name in args.case or list(CASES):
        cmd = [sys.executable, __file__, "--child", name] + ["--serial"] * args.serial
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['case']:<5}{r['episodes']:>10,}{r['length']:>11,}{r['tokens']:>13,}{r['seconds']:>9.2f}"
              f"{r['tokens_per_s'] / 1e6:>12.1f} M{r['peak_rss_mib']:>14,}{r['shard_mb']:>11,.0f}")


if __name__ == "__main__":
    main()
