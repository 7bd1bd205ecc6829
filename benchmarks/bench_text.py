"""Text-rendering throughput, length error, filler variety and peak memory.

    python benchmarks/bench_text.py [--tokenizer cl100k] [--episodes 8]

For each length (4,096, 131,072 and 1,048,576 tokens) it renders ``mixed`` episodes with the
family's default knobs, rotating over the shipped domains, one process, and prints:
tokens/s (the tokenizer's real count of each prompt, over the wall time of render_text), the
length error (target - length, which must lie in [0, tolerance]), how many full-prompt counts
each episode took, the share of distinct filler sentences at 131,072 tokens, and the peak RSS
of the process (resource.getrusage).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import sys
import time

import numpy as np

from memgen.generators.build import build_program
from memgen.generators.knobs import Knobs
from memgen.generators.registry import get_family
from memgen.ir.rng import Streams
from memgen.render.text.domain import available_domains
from memgen.render.text.episode import render_text, tolerance
from memgen.render.text.tokenizers import LengthCounter, load_tokenizer

LENGTHS = (4_096, 131_072, 1_048_576)


class Counting(LengthCounter):
    """Wraps a counter to count how often a whole prompt is tokenised."""

    def __init__(self, inner: LengthCounter, big: int):
        self.inner, self.name, self.big, self.full = inner, inner.name, big, 0

    def count(self, text: str) -> int:
        if len(text) >= self.big:
            self.full += 1
        return self.inner.count(text)

    def count_many(self, texts):
        return self.inner.count_many(texts)


def filler_sentences(row) -> list[str]:
    spans = sorted([s for s in row.event_spans] + [s for s in row.query_spans if s[0] >= 0])
    parts, pos = [], 0
    for s, e in spans:
        parts.append(row.context[pos:s])
        pos = e
    parts.append(row.context[pos:])
    out = []
    for p in parts:
        out += [x for x in re.split(r"(?<=[.!?])\s+", p.strip()) if x]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default="cl100k")
    ap.add_argument("--episodes", type=int, default=32, help="episodes at 4,096 (fewer at longer lengths)")
    args = ap.parse_args()
    base = load_tokenizer(args.tokenizer)
    domains = available_domains()
    print(f"text rendering, tokenizer {base.name}, domains {', '.join(domains)}, one process; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'length':>9} {'episodes':>8} {'events':>7} {'tokens/s':>12} {'error min..max':>15} "
          f"{'tol':>5} {'full counts':>11}")
    distinct = None
    warm_plan = get_family("mixed")(Knobs(), 4096)
    warm = build_program(warm_plan, Streams(np.array([1], dtype=np.uint64)), 65_536, 256, 100_000)
    warm_ep = warm.episode(0, id="warm", family="mixed", seed=1)
    for length in LENGTHS:
        n = {4_096: args.episodes, 131_072: max(2, args.episodes // 4)}.get(length, 2)
        plan = get_family("mixed")(Knobs(), length)
        seeds = np.arange(1, n + 1, dtype=np.uint64) * np.uint64(104_729)
        program = build_program(plan, Streams(seeds), 65_536, 256, 100_000)
        eps = [program.episode(b, id=f"bench-{b}", family="mixed", seed=int(seeds[b])) for b in range(n)]
        counter = Counting(base, big=length)  # a prompt has >= 1 char per token
        # warm-up: load every domain and count its grammar pieces once per process (and counter)
        for d in domains:
            render_text(warm_ep, target_length=4096, tokenizer=counter, domain=d, seed=0)
        counter.full = 0
        tokens, wall, errors = 0, 0.0, []
        for b, ep in enumerate(eps):
            t0 = time.perf_counter()
            row = render_text(ep, target_length=length, tokenizer=counter, domain=domains[b % len(domains)],
                              seed=int(seeds[b]))
            wall += time.perf_counter() - t0
            tokens += row.length
            errors.append(length - row.length)
            if length == 131_072 and b == 0:
                sents = filler_sentences(row)
                distinct = (len(set(sents)), len(sents))
        assert all(0 <= e <= tolerance(length) for e in errors)
        print(f"{length:>9,} {n:>8} {len(eps[0].events):>7} {tokens / wall:>12,.0f} "
              f"{min(errors):>7}..{max(errors):<7} {tolerance(length):>5} {counter.full / n:>11.2f}")
    if distinct:
        print(f"distinct filler sentences at 131,072 tokens: {distinct[0]:,} of {distinct[1]:,} "
              f"({distinct[0] / distinct[1]:.1%})")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mib = rss / 1024 if sys.platform != "darwin" else rss / 2**20
    print(f"peak RSS of this process (all lengths, up to 1,048,576 tokens): {rss_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
