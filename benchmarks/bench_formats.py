"""Shard formats: bytes and encode / read time of the same shards as Parquet and as Arrow IPC.

    python benchmarks/bench_formats.py                      # token 4K and 64K, text 8K
    python benchmarks/bench_formats.py --repeat 5

Each shard is built once (``memgen.pipeline.build.build_shard``, the table ``generate`` writes),
then encoded in memory with each format (``memgen.io.shards.shard_bytes``: what ``generate``
writes and hashes) and read back with ``memgen.io.shards.read_shard`` from a file; the time
kept is the fastest of the repeats (other processes on a shared machine only ever add time).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from memgen.io.shards import read_shard, shard_bytes
from memgen.pipeline.build import build_shard
from memgen.pipeline.request import Request, tasks

CASES = [("mixed", "token", 4096, 1000), ("mixed", "token", 65536, 64), ("mixed", "text", 8192, 8)]


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{'shard':<28} {'format':<8} {'MB':>8} {'ratio':>6} {'encode s':>9} {'read s':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for family, rendering, length, episodes in CASES:
            req = Request(families=(family,), renderings=(rendering,), lengths=(length,), episodes=episodes,
                          shard_size=episodes)
            table = build_shard(req, tasks(req)[0])
            sizes = {}
            for fmt in ("arrow", "parquet"):
                data, _ = shard_bytes(table, fmt)
                sizes[fmt] = len(data)
                path = Path(tmp) / f"shard.{fmt}"
                path.write_bytes(data)
                enc = best(lambda fmt=fmt, table=table: shard_bytes(table, fmt), args.repeat)
                read = best(lambda path=path: read_shard(path), args.repeat)
                name = f"{family}-{rendering}-{length} x{episodes}"
                print(f"{name:<28} {fmt:<8} {len(data) / 1e6:>8.2f} {len(data) / sizes['arrow']:>6.2f} "
                      f"{enc:>9.3f} {read:>7.3f}")


if __name__ == "__main__":
    main()
