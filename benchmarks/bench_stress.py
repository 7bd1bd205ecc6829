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


def child(args: argparse.Namespace) -> dict:
    from memgen.evaluation.stress import stress

    report = stress(args.length, args.episodes, seed=args.seed, models=args.model or None)
    return report.summary()


def markdown(s: dict) -> str:
    """The report as Markdown: the table, then one line per figure."""
    cells = {(c["model"], c["probe"]): c for c in s["cells"]}
    models = list(s["models"])
    probes = [p for p in ("write", "overwrite", "version", "distractor", "no_write_signal", "discard", "all")
              if any((m, p) in cells for m in models)]
    lines = ["| model | " + " | ".join(probes) + " | episodes all right | active chunks | s |",
             "|---|" + "---|" * (len(probes) + 3)]
    for m in models:
        row = [f"`{m}`"]
        for p in probes:
            c = cells.get((m, p))
            if c is None:
                row.append("")
                continue
            text = f"{100 * c['accuracy']:.1f}% ({c['correct']}/{c['n']})"
            if c["wrong"]:
                text += f" {c['wrong']} {c['wrong_n']}"
            row.append(text)
        info = s["models"][m]
        lo, hi = info["active_chunks"]
        row += [f"{info['episodes_correct']}/{info['episodes']}", f"{lo}-{hi}", f"{info['seconds']:.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    hybrid = "hybrid" if "hybrid" in models else None
    lines.append("")
    if hybrid:
        h = s["models"][hybrid]
        lines.append(f"- `{hybrid}` pooled: {h['episodes_correct']}/{h['episodes']} episodes fully correct, "
                     f"{h['correct']}/{h['queries']} queries; routes "
                     + ", ".join(f"{r} {n}" for r, n in h["routes"].items()))
    for m in models:
        lo, hi = s["models"][m]["active_chunks"]
        if hi:
            lines.append(f"- active chunks per query, `{m}`: {lo}-{hi}")
    if "generate_seconds" in s:  # a stress report (an eval summary.json has no generation)
        lines.append(f"- wall time {s['seconds']:.1f} s (generate {s['generate_seconds']:.1f} s, evaluate "
                     f"{s['eval_seconds']:.1f} s, of which reading and parsing {s['parse_seconds']:.1f} s); "
                     f"peak RSS {s['peak_rss_bytes'] / 2**20:,.0f} MiB")
        lines += [f"- {'met' if c['met'] else 'MISSED'}: {c['check']}" for c in s["checks"]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--length", type=int, default=2_097_152)
    ap.add_argument("--episodes", type=int, default=50)
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
