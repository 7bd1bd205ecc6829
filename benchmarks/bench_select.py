"""Query-time selection measured per failure mode (docs/selection.md): recall@k and the trap mix
of every selector on mixed episodes, and how fast they rank.

    python benchmarks/bench_select.py text --episodes 50      # text at 32,768 tokens, passages of 256
    python benchmarks/bench_select.py chunk --episodes 50     # the chunk rendering at 65,536 tokens
    python benchmarks/bench_select.py million                 # one 1,048,576-token text episode: time
                                                              # to select for every query (bm25, dense)
    python benchmarks/bench_select.py text --episodes 100 --limit 20 --select dense:k=8   # a subset

``text`` and ``chunk`` generate the dataset (every domain in turn; cached under --work), run
``memgen select``'s library call on it and print its Markdown tables (per selector and probe:
recall@1/2/4/8, MRR, trap mix) and each selector's throughput: (query, passage) pairs ranked
per second, index building and encoding included, after a warm-up that loads the libraries and
the encoder.  ``million`` times, for one episode, the whole of selecting every query's
passages: bm25 (tokenising, indexing, scoring) and dense (encoding every passage with a cold
embedding cache, then scoring).  Threads: --threads (torch, for dense), 1 by default.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

CASES = {
    "text": dict(rendering="text", length=32_768, chunk_size=256,
                 selectors=("tfidf:k=8", "bm25:k=8", "dense:k=8", "recency:k=8", "oracle:k=8")),
    "chunk": dict(rendering="chunk", length=65_536, chunk_size=128,
                  selectors=("tfidf:k=8", "bm25:k=8", "recency:k=8", "oracle:k=8", "sparse:k=4", "hybrid:k=4")),
}


def dataset(work: Path, rendering: str, length: int, chunk_size: int, episodes: int, seed: int) -> Path:
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import make_request

    root = work / f"mixed-{rendering}-{length}-c{chunk_size}-n{episodes}-s{seed}"
    manifest = root / "manifest.json"
    if not manifest.is_file() or json.loads(manifest.read_text()).get("status") != "complete":  # new, or resume
        t = time.perf_counter()
        generate(make_request("mixed", renderings=rendering, lengths=length, episodes=episodes, seed=seed,
                              chunk_size=chunk_size), root)
        print(f"generated {root.name} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return root


def warm_up(work: Path, rendering: str, selectors) -> None:
    from memgen.selection.evaluate import evaluate_selection

    root = dataset(work, rendering, 4096, 256 if rendering == "text" else 128, 1, 999)
    evaluate_selection(root, selectors)


def run_case(name: str, episodes: int, seed: int, work: Path, out: Path | None, selectors=None,
             limit: int | None = None) -> dict:
    from memgen.selection.evaluate import evaluate_selection
    from memgen.selection.report import markdown, summary, write_report

    c = CASES[name]
    selectors = selectors or c["selectors"]
    root = dataset(work, c["rendering"], c["length"], c["chunk_size"], episodes, seed)
    warm_up(work, c["rendering"], selectors)
    t = time.perf_counter()
    res = evaluate_selection(root, selectors, limit=limit)
    wall = time.perf_counter() - t
    print(markdown(res))
    print(f"wall {wall:.1f} s for {res.episodes} episodes, {len(res.qid)} queries, {res.passages} passages")
    if out is not None:
        write_report(res, out)
        print(f"wrote {out}")
    return {"case": name, "wall_s": round(wall, 2), **summary(res)}


def million(work: Path, seed: int, dense_passages: int | None = None) -> dict:
    import numpy as np

    from memgen.io.dataset import Dataset
    from memgen.selection.episodes import iter_selection_episodes
    from memgen.selection.metrics import rank
    from memgen.selection.registry import parse_select

    t, c = time.perf_counter(), time.process_time()
    root = dataset(work, "text", 1_048_576, 256, 1, seed)
    gen, gen_cpu = time.perf_counter() - t, time.process_time() - c
    t = time.perf_counter()
    ep = next(iter_selection_episodes(Dataset.open(root), Dataset.open(root).configs[0]))
    read = time.perf_counter() - t
    out = {"generate_s": round(gen, 1), "generate_cpu_s": round(gen_cpu, 1), "read_s": round(read, 2),
           "passages": ep.n_passages, "queries": ep.n_queries}
    warm_up(work, "text", ("bm25", "dense"))
    for spec in ("bm25:k=8", "dense:k=8"):
        part = ep
        if spec.startswith("dense") and dense_passages and dense_passages < ep.n_passages:
            part = replace(ep, docs=ep.docs[:dense_passages], kinds=ep.kinds[:, :dense_passages],
                           before=np.minimum(ep.before, dense_passages),
                           evidence=[e[e < dense_passages] for e in ep.evidence])
        with tempfile.TemporaryDirectory() as cache:
            os.environ["MEMGEN_CACHE"] = cache  # a cold cache: dense encodes every passage
            sel = parse_select(spec)
            t, c = time.perf_counter(), time.process_time()
            r = rank(sel.scores(part), part.before)
            secs, cpu = time.perf_counter() - t, time.process_time() - c
        kept = [r.top(q, sel.k) for q in range(part.n_queries)]
        hit = np.mean([np.isin(e, k).mean() for e, k in zip(part.evidence, kept, strict=True) if e.size])
        scale = ep.n_passages / part.n_passages  # 1 unless dense ran on the first passages only
        out[spec] = {"passages": part.n_passages, "seconds": round(secs, 2), "cpu_seconds": round(cpu, 2),
                     "recall@8": round(float(hit), 3), "whole_episode_cpu_s": round(cpu * scale, 1),
                     "passages_per_cpu_s": round(part.n_passages / cpu, 1)}
        print(f"{spec}: {secs:.1f} s wall, {cpu:.1f} s CPU for all {part.n_queries} queries over "
              f"{part.n_passages} passages (recall@8 {hit:.3f})"
              + (f"; the whole episode at this rate: {cpu * scale:.0f} s CPU" if scale > 1 else ""))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", choices=(*CASES, "million"))
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "memgen-bench-select")
    ap.add_argument("--select", action="append", default=None, help="Selectors instead of the case's (repeatable).")
    ap.add_argument("--limit", type=int, default=None, help="Select on the first N episodes only.")
    ap.add_argument("--dense-passages", type=int, default=None,
                    help="million: encode only the first N passages for dense (CPU time scaled to the episode).")
    ap.add_argument("--out", type=Path, default=None, help="Also write the report folder here.")
    ap.add_argument("--json", type=Path, default=None, help="Write the figures as JSON here.")
    args = ap.parse_args()
    os.environ["MEMGEN_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    import memgen.selection  # noqa: F401  (registers the selectors)

    args.work.mkdir(parents=True, exist_ok=True)
    if args.case == "million":
        res = million(args.work, args.seed, args.dense_passages)
    else:
        res = run_case(args.case, args.episodes, args.seed, args.work, args.out, args.select, args.limit)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
