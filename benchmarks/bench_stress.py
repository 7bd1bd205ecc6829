"""The mechanism-tier stress test: mixed-family episodes in the chunk rendering, every model.

    python benchmarks/bench_stress.py                          # 50 episodes x 2,097,152 tokens
    python benchmarks/bench_stress.py --length 4096 --episodes 1000
    python benchmarks/bench_stress.py --model hybrid --model hybrid:fallback=unslotted
    python benchmarks/bench_stress.py --markdown preds/summary.json   # a memgen eval table as Markdown

Runs ``memgen.evaluation.stress.stress`` (generate into a temporary folder, evaluate, remove) in a fresh
subprocess, so the peak RSS is the run's own, and prints the models x probes table as Markdown
(accuracy, correct/n, dominant wrong outcome) with the figures the issue asks for: the
hybrid's episodes fully correct, its pooled queries, the range of active chunks, wall time
and peak RSS.  ``--json FILE`` keeps the full report.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import TYPE_CHECKING

from memgen.evaluation.stress import STRESS_EPISODES, STRESS_LENGTH

if TYPE_CHECKING:
    from memgen.scorers.aggregate import ProbeCell


def child(args: argparse.Namespace) -> dict:
    from memgen.evaluation.stress import stress

    report = stress(args.length, args.episodes, seed=args.seed, models=args.model or None)
    return report.summary()


def markdown(s: dict) -> str:
    """The report as Markdown: the models x probes table (one row per model), then one line per figure."""
    from memgen.scorers.aggregate import ProbeTable, markdown_table

    table = ProbeTable.from_summary(s)
    header = ["model", *table.probes, *(label for label, _ in table.figures)]
    rows = [[f"`{m}`", *(_cell(c) for c in cells), *figures] for m, cells, figures in table.by_model()]
    lines = [markdown_table(header, rows)]
    models = list(s["models"])
    lines.append("")
    for m in models:
        if m == "hybrid" or m.split(":")[0] == "memslot_ref":
            h = s["models"][m]
            lines.append(f"- `{m}` pooled: {h['episodes_correct']}/{h['episodes']} episodes fully correct, "
                         f"{h['correct']}/{h['queries']} queries; routes "
                         + ", ".join(f"{r} {n}" for r, n in h["routes"].items()))
    for m in models:
        lo, hi = s["models"][m]["active_chunks"]
        if hi:
            lines.append(f"- active chunks per query, `{m}`: {lo}-{hi}")
    if "generate_seconds" in s:  # a stress report (an eval summary.json has no generation)
        lines.append(f"- wall time {s['seconds']:.1f} s (generate {s['generate_seconds']:.1f} s, evaluate "
                     f"{s['eval_seconds']:.1f} s, of which reading and parsing {s['parse_seconds']:.1f} s); "
                     + (f"CPU time {s['cpu_seconds']:.1f} s; " if "cpu_seconds" in s else "")
                     + f"peak RSS {s['peak_rss_bytes'] / 2**20:,.0f} MiB")
        lines += [f"- {'met' if c['met'] else 'MISSED'}: {c['check']}" for c in s["checks"]]
    return "\n".join(lines)


def _cell(c: ProbeCell | None) -> str:
    """'33.0% (29/88) wrong_version 59'; empty where the model has no query of the probe."""
    if c is None:
        return ""
    return f"{c.accuracy_text} ({c.counts_text})" + (f" {c.wrong_text}" if c.wrong else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--length", type=int, default=STRESS_LENGTH)
    ap.add_argument("--episodes", type=int, default=STRESS_EPISODES)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", action="append", help="name or name:knob=value,...; repeat [default: all]")
    ap.add_argument("--json", help="also write the full report here")
    ap.add_argument("--markdown", metavar="SUMMARY_JSON",
                    help="only print the table of a memgen eval --out summary.json or a --json report")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.markdown:
        with open(args.markdown) as f:
            print(markdown(json.load(f)))
        return
    if args.child:
        print(json.dumps(child(args)))
        return
    cmd = [sys.executable, __file__, "--child", "--length", str(args.length), "--episodes", str(args.episodes),
           "--seed", str(args.seed)]
    for m in args.model or ():
        cmd += ["--model", m]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "stress run failed")
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    print(f"{summary['command']}  ({summary['episodes']} episodes x {summary['length']:,} tokens)\n")
    print(markdown(summary))


if __name__ == "__main__":
    main()
