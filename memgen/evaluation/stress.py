"""``stress()``: the long-context stress test (``memgen stress``): mixed-family episodes at
2,097,152 tokens, generated into a temporary folder, every model run on them and scored, with
the wall time and peak RSS of the run.

Imports only the standard library at module level, so ``memgen --help`` stays fast.
"""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memgen.evaluation.predict import Evaluation
    from memgen.models.registry import Model

STRESS_LENGTH = 2_097_152
STRESS_EPISODES = 50
#: targets of the stress test on a 2-core machine (issue 5)
STRESS_MAX_SECONDS = 300.0
STRESS_MAX_RSS = 2 << 30
#: targets when the learned memslot_ref runs (issue 17): 10 minutes, 4 GiB, 99% of queries pooled
LEARNED_MAX_SECONDS = 600.0
LEARNED_MAX_RSS = 4 << 30
LEARNED_MIN_POOLED = 0.99


def cpu_seconds() -> float:
    """User plus system CPU time of this process so far (on a shared machine, the part of the
    wall time this run itself spent)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss() -> int:
    """Peak resident set size of this process so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class StressReport:
    """The stress test's figures: the evaluation, and the times and memory it took."""

    evaluation: Evaluation
    length: int
    episodes: int
    generate_seconds: float
    eval_seconds: float
    peak_rss: int  # bytes, this process
    command: str
    cpu_seconds: float = 0.0  # user + system, this process

    @property
    def seconds(self) -> float:
        return self.generate_seconds + self.eval_seconds

    def hybrid_label(self) -> str | None:
        """``"hybrid"`` (its default knobs) if it ran: the model the 50/50 target is about."""
        return "hybrid" if "hybrid" in self.evaluation.results else None

    def learned_label(self) -> str | None:
        """The learned ``memslot_ref`` (any checkpoint) if it ran: the model the 99% target is about."""
        return next((label for label in self.evaluation.results if label.split(":")[0] == "memslot_ref"), None)

    def checks(self) -> list[tuple[str, bool]]:
        """(what, met) for each target: time, memory (the learned tier's when memslot_ref ran),
        the hybrid fully correct, and memslot_ref's pooled accuracy."""
        learned = self.learned_label()
        max_s, max_rss = (LEARNED_MAX_SECONDS, LEARNED_MAX_RSS) if learned else (STRESS_MAX_SECONDS, STRESS_MAX_RSS)
        out = [(f"wall time {self.seconds:.1f} s < {max_s:.0f} s", self.seconds < max_s),
               (f"peak RSS {self.peak_rss / 2**30:.2f} GiB < {max_rss / 2**30:.0f} GiB", self.peak_rss < max_rss)]
        h = self.hybrid_label()
        if h is not None:
            n = self.evaluation.episodes_correct(h)
            out.append((f"{h}: {n}/{self.evaluation.n_episodes} episodes fully correct",
                        n == self.evaluation.n_episodes))
        if learned is not None:
            ev = self.evaluation
            right = int(ev.results[learned].correct.sum())
            out.append((f"{learned}: {right}/{ev.n_queries} queries pooled >= {LEARNED_MIN_POOLED:.0%}",
                        right >= LEARNED_MIN_POOLED * ev.n_queries))
        return out

    def summary(self) -> dict:
        return {**self.evaluation.summary(), "length": self.length, "episodes": self.episodes,
                "generate_seconds": round(self.generate_seconds, 3),
                "eval_seconds": round(self.eval_seconds, 3), "seconds": round(self.seconds, 3),
                "cpu_seconds": round(self.cpu_seconds, 3), "peak_rss_bytes": self.peak_rss, "command": self.command,
                "checks": [{"check": c, "met": ok} for c, ok in self.checks()]}


def stress(length: int = STRESS_LENGTH, episodes: int = STRESS_EPISODES, *, seed: int = 0,
           models: Sequence[str | Model] | None = None, dataset: str | Path | None = None,
           out: str | Path | None = None,
           on_shard: Callable[[str, int, int], None] | None = None) -> StressReport:
    """Generate ``episodes`` mixed-family episodes of ``length`` tokens in the chunk rendering
    (into ``dataset``, resuming or reusing it; default a temporary folder removed afterwards),
    run ``models`` (default: all) on them, and report times, peak RSS and the table."""
    from memgen.evaluation.predict import evaluate
    from memgen.generators.knobs import Knobs
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import Request
    from memgen.render.registry import RenderOptions

    req = Request(families=("mixed",), renderings=("chunk",), lengths=(length,), episodes=episodes,
                  seed=seed, knobs=Knobs(), render=RenderOptions())
    tmp = None
    if dataset is None:
        tmp = tempfile.mkdtemp(prefix="memgen-stress-")
        dataset = Path(tmp) / "ds"
    try:
        t = time.perf_counter()
        generate(req, dataset)
        gen_s = time.perf_counter() - t
        t = time.perf_counter()
        ev = evaluate(dataset, models, out=out, on_shard=on_shard)
        eval_s = time.perf_counter() - t
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    cmd = f"memgen stress --length {length} --episodes {episodes} --seed {seed}"
    return StressReport(ev, length, episodes, gen_s, eval_s, peak_rss(), cmd, cpu_seconds())
