"""Parallel ``memgen generate``: speed-up of 2 local workers over 1, memory per worker, and the
Ray engine's overhead against local workers, on one token-rendering job.

Rows: ``serial`` is one worker building and writing each shard in turn (one core: the baseline
of the speed-up column); ``local 1`` is what ``--workers 1`` does, a writer thread overlapping
the writes with the building (so it already uses a second core); ``local 2`` is two worker
processes, each building and writing in turn.

    python benchmarks/bench_parallel.py                       # 105M and 210M tokens, 3 repeats
    python benchmarks/bench_parallel.py --episodes 1600 --repeat 1

Each run is a fresh subprocess; its time is the library's ``generate()`` call (shards, manifest
and card written; interpreter start and imports excluded; for Ray, the cluster is started
before the clock, and its start is reported apart).  Before the clock, each run makes a small
job of the same shape on the same engine (timed apart as "warm-up"), so that the compiled
kernels (memgen.ir.jit) are loaded in the caller, the fork server and Ray's workers.  The figure
kept is the fastest of the repeats (other processes on a shared machine only ever add time).
Worker memory is each worker's peak resident set (``VmHWM``), read from ``/proc`` while the job runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time

FAMILY, LENGTH = "mixed", 65_536


def _hwm_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class WorkerPeaks:
    """Samples the peak RSS of this process's worker processes (pool workers; Ray task workers)."""

    def __init__(self, every: float = 0.05):
        import psutil

        self.psutil, self.every, self.peaks, self._stop = psutil, every, {}, threading.Event()
        self.server = 0.0  # the fork server: imports only, what every worker starts from
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _is_worker(self, p) -> bool:
        try:
            name, cmd = p.name(), " ".join(p.cmdline())
        except self.psutil.Error:
            return False
        if name.startswith("ray::") or cmd.startswith("ray::"):
            return "IDLE" not in name or p.pid in self.peaks
        # a pool worker is forked from the fork server (a child of this process) or spawned
        return "spawn_main" in cmd or ("forkserver" in cmd and p.ppid() != os.getpid())

    def _run(self) -> None:
        me = self.psutil.Process()
        while not self._stop.is_set():
            for p in me.children(recursive=True):
                try:
                    if p.ppid() == me.pid and "forkserver" in " ".join(p.cmdline()):
                        self.server = max(self.server, _hwm_mib(p.pid) or 0.0)
                except self.psutil.Error:
                    pass
                if self._is_worker(p):
                    hwm = _hwm_mib(p.pid)
                    if hwm is not None:
                        self.peaks[p.pid] = max(self.peaks.get(p.pid, 0.0), hwm)
            self._stop.wait(self.every)

    def __enter__(self) -> WorkerPeaks:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.thread.join()


def run_child(engine: str, workers: int, episodes: int) -> dict:
    from memgen.pipeline.build import build_shard
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import Request, tasks

    req = Request(families=(FAMILY,), renderings=("token",), lengths=(LENGTH,), episodes=episodes, seed=0)
    todo = tasks(req)
    ray_start = None
    if engine == "ray":
        import ray

        t = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, configure_logging=False, logging_level="ERROR")
        ray_start = time.perf_counter() - t
    # warm-up, timed apart: a job of 8 shards a worker, same shape, same engine, so that the caller,
    # the fork server (hence every worker) or Ray's workers have numba's kernels loaded, and the
    # fork server has finished starting
    warm = Request(families=(FAMILY,), renderings=("token",), lengths=(LENGTH,), episodes=8 * 64 * max(1, workers),
                   seed=1)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
        t = time.perf_counter()
        generate(warm, os.path.join(d, "warm"), workers=workers, engine="local" if engine == "serial" else engine,
                 writer_thread=engine != "serial")
        warm_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d, WorkerPeaks() as peaks:
        t = time.perf_counter()
        # serial: one worker, no writer thread: build and write each shard in turn
        m = generate(req, os.path.join(d, "ds"), workers=workers, engine="local" if engine == "serial" else engine,
                     writer_thread=engine != "serial")
        wall = time.perf_counter() - t
        size = sum(s["bytes"] for c in m["configs"].values() for s in c["shards"])
    if engine == "ray":
        import ray

        ray.shutdown()
    shard = build_shard(req, todo[0]) if engine == "serial" else None
    return {"engine": engine, "workers": workers, "episodes": episodes, "tokens": episodes * LENGTH,
            "shards": len(todo), "rows_per_shard": todo[0].rows, "seconds": round(wall, 3),
            "ray_start_s": None if ray_start is None else round(ray_start, 2), "warm_up_s": round(warm_s, 2),
            "worker_peak_rss_mib": sorted(round(v) for v in peaks.peaks.values()),
            "fork_server_rss_mib": round(peaks.server) or None,
            "caller_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "shard_table_mib": None if shard is None else round(shard.nbytes / 2**20, 1),
            "shards_mb_on_disk": round(size / 1e6, 1)}


def _child(engine: str, workers: int, episodes: int) -> dict:
    cmd = [sys.executable, __file__, "--child", f"{engine}:{workers}:{episodes}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, action="append", help="episodes per job [1600 and 3200]")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--json", help="also write every run here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        engine, workers, episodes = args.child.split(":")
        print(json.dumps(run_child(engine, int(workers), int(episodes))))
        return
    runs = [("serial", 1), ("local", 1), ("local", 2)] + ([] if args.no_ray else [("ray", 2)])
    rows = []
    for episodes in args.episodes or [1600, 3200]:
        best: dict[tuple, dict] = {}
        for _ in range(args.repeat):
            for engine, workers in runs:  # interleaved, so a busy spell hits every case alike
                r = _child(engine, workers, episodes)
                rows.append(r)
                key = (engine, workers)
                if key not in best or r["seconds"] < best[key]["seconds"]:
                    best[key] = r
        one, two = best[("serial", 1)], best[("local", 2)]
        print(f"\n{FAMILY} x {LENGTH:,} tokens x {episodes:,} episodes = {one['tokens'] / 1e6:.0f}M tokens, "
              f"{one['shards']} shards of {one['rows_per_shard']} rows ({one['shard_table_mib']} MiB as a table), "
              f"{one['shards_mb_on_disk']} MB on disk; best of {args.repeat}")
        print(f"{'engine':<8}{'workers':>8}{'seconds':>9}{'Mtok/s':>8}{'speed-up':>9}{'worker peak RSS MiB':>22}"
              f"{'caller MiB':>11}{'fork server MiB':>16}{'warm-up s':>10}")
        for (engine, workers), r in best.items():
            peaks = r["worker_peak_rss_mib"]
            print(f"{engine:<8}{workers:>8}{r['seconds']:>9.2f}{r['tokens'] / r['seconds'] / 1e6:>8.1f}"
                  f"{one['seconds'] / r['seconds']:>8.2f}x{(max(peaks) if peaks else '-'):>22}"
                  f"{r['caller_peak_rss_mib']:>11}{r['fork_server_rss_mib'] or '-':>16}{r['warm_up_s']:>10.2f}")
        if ("ray", 2) in best:
            ray = best[("ray", 2)]
            print(f"ray overhead vs 2 local workers: {ray['seconds'] - two['seconds']:+.2f} s "
                  f"({ray['seconds'] / two['seconds'] - 1:+.0%}); cluster start {ray['ray_start_s']} s apart")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
