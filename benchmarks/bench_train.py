"""The learned tier's benchmarks: held-out accuracy of checkpoints (models x probes x lengths)
and training throughput of every learned model.

    python benchmarks/bench_train.py --model memslot_ref --length 192              # one checkpoint
    python benchmarks/bench_train.py --table --model transformer --model delta_net \\
        --length 192 --length 4096 --length 65536                                  # models x probes
    python benchmarks/bench_train.py --throughput --seconds 20                     # tokens/s, all 4
    python benchmarks/bench_train.py --inference --rounds 2                        # learned eval speed at length

Held-out episodes come from ``derive_seed("heldout", seed, family)`` (memgen.models.train): a
seed domain no ``memgen generate`` uses, and with ``--seed`` other than the training run's, not
the held-out set the training curve was measured on.  100 queries per probe (600 in all),
answered by the registered model's ``predict`` and classified by memgen's scorers; the default
checkpoint is the shipped one.  ``--table`` runs every (model, length) in its own subprocess, so
each cell's time and peak RSS are its own, and a cell that fails (out of memory, a refusal) is
reported as such instead of ending the table.

``--throughput`` trains each model from its initial weights on the same batches (length 192,
batch 32, one thread), in rounds that alternate the models so that a change in the machine's
load falls on all of them; it prints the median tokens/s of the rounds per model.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa

LEARNED = ("memslot_ref", "transformer", "delta_net", "topk_attention")


def heldout(model: str, checkpoint: str | None, length: int, per_probe: int, seed: int, threads: int,
            batch_tokens: int) -> dict:
    """Held-out accuracy per probe of one checkpoint at one length, with the wrong outcomes."""
    import torch

    torch.set_num_threads(threads)
    from memgen.evaluation.learned import LEARNED_MODELS
    from memgen.format.codes import OUTCOMES, PROBES
    from memgen.format.vocab import Vocab
    from memgen.models.stream import TokenBatch
    from memgen.models.train import ALL_FAMILIES, episode_table
    from memgen.scorers.answers import TokenVocab
    from memgen.scorers.frame import REQUIRED_COLUMNS, build_frame
    from memgen.scorers.scoring import score

    vocab = Vocab()
    cls = {m.name: m for m in LEARNED_MODELS}[model]
    net = cls(checkpoint=checkpoint or "", batch_tokens=batch_tokens)
    tables, have, start = [], np.zeros(len(PROBES), int), 0
    while (have < per_probe).any():
        for fam in ALL_FAMILIES:
            t = episode_table(fam, length, start, 16, seed, "heldout", vocab)
            tables.append(t)
            probes = t.column("queries").combine_chunks().flatten().field("probe").to_pylist()
            have += np.bincount([PROBES.index(p) for p in probes], minlength=len(PROBES))
        start += 16
    table = pa.concat_tables(tables)
    t0 = time.perf_counter()
    answers = net.predict(TokenBatch.from_table(table, vocab))
    secs = time.perf_counter() - t0
    frame = build_frame(table.select(list(REQUIRED_COLUMNS)), source="heldout")
    tv = TokenVocab(vocab.value_offset, 6, vocab.values, vocab.vocab_size)
    res = score(frame, answers.prediction.tolist(), name=model, vocab=tv)
    probe, outcome = np.asarray(frame.probe), np.asarray(res.outcome)
    keep = np.zeros(probe.size, bool)
    for p in range(len(PROBES)):
        keep[np.flatnonzero(probe == p)[:per_probe]] = True
    rows = []
    for p, name in enumerate(PROBES):
        sel = keep & (probe == p)
        counts = np.bincount(outcome[sel], minlength=len(OUTCOMES))
        rows.append({"probe": name, "correct": int(counts[0]), "n": int(sel.sum()),
                     "wrong": {OUTCOMES[o]: int(n) for o, n in enumerate(counts) if o and n}})
    return {"model": model, "checkpoint": str(net.checkpoint_path()), "length": length, "seed": seed, "rows": rows,
            "correct": sum(r["correct"] for r in rows), "n": int(keep.sum()), "episodes": len(table),
            "predict_seconds": round(secs, 2),
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def print_heldout(r: dict, threads: int) -> None:
    print("| probe | correct | wrong outcomes |\n|---|---|---|")
    for row in r["rows"]:
        print(f"| {row['probe']} | {row['correct']}/{row['n']} | {row['wrong'] or '-'} |")
    print(f"| all | {r['correct']}/{r['n']} | |")
    print(f"predict: {r['predict_seconds']:.1f} s for {r['episodes']} episodes x {r['length']} tokens, "
          f"{threads} thread(s), peak RSS {r['peak_rss_bytes'] / 2**30:.2f} GiB")


def table(args: argparse.Namespace) -> None:
    """Models x probes x lengths, each cell in its own subprocess; one Markdown row per cell."""
    from memgen.format.codes import PROBES

    models = args.model or list(LEARNED)
    print(f"| model | length | {' | '.join(PROBES)} | all | predict | peak RSS | dominant wrong outcomes |")
    print("|---|---|" + "---|" * (len(PROBES) + 4))
    results = []
    for m in models:
        for L in args.length or [192]:
            cmd = [sys.executable, __file__, "--model", m, "--length", str(L), "--seed", str(args.seed),
                   "--per-probe", str(args.per_probe), "--threads", str(args.threads),
                   "--batch-tokens", str(args.batch_tokens), "--child"]
            if args.checkpoint:
                cmd += ["--checkpoint", args.checkpoint]
            t0 = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                why = (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]
                if out.returncode < 0:
                    why = f"killed by signal {-out.returncode} after {time.perf_counter() - t0:.0f} s (out of memory?)"
                print(f"| {m} | {L:,} | " + " | ".join("-" * len(PROBES)) + f" | - | - | - | did not run: {why} |")
                results.append({"model": m, "length": L, "error": why})
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(r)
            wrong: dict[str, int] = {}
            for row in r["rows"]:
                for o, n in row["wrong"].items():
                    wrong[f"{row['probe']}:{o}"] = n
            top = ", ".join(f"{k} {n}" for k, n in sorted(wrong.items(), key=lambda kv: -kv[1])[:3]) or "-"
            print(f"| {m} | {L:,} | " + " | ".join(str(row["correct"]) for row in r["rows"])
                  + f" | {r['correct']}/{r['n']} | {r['predict_seconds']:.0f} s | "
                  f"{r['peak_rss_bytes'] / 2**30:.1f} GiB | {top} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


def throughput(args: argparse.Namespace) -> None:
    """Training tokens/s of each learned model, median of rounds that alternate the models."""
    import torch

    torch.set_num_threads(args.threads)
    import memgen.evaluation.zoo  # noqa: F401  (the built-in memories by name)
    from memgen.format.vocab import Vocab
    from memgen.models.frontend import parameter_count
    from memgen.models.train import TrainConfig, build, train_step, training_batches

    vocab = Vocab()
    models = args.model or list(LEARNED)
    cfg = TrainConfig(length=args.length[0] if args.length else 192)
    batches = training_batches(cfg, vocab)
    data = [next(batches) for _ in range(4)]  # the same batches for every model, generated once
    nets = {}
    for m in models:
        torch.manual_seed(0)
        net = build(m, {}, {}, vocab).train()
        nets[m] = (net, torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.0))
        train_step(*nets[m], data[0], True)  # warm-up
    rates: dict[str, list[float]] = {m: [] for m in models}
    cpu_rates: dict[str, list[float]] = {m: [] for m in models}  # per CPU second of this process
    for _ in range(args.rounds):
        for m in models:
            steps, tokens, t0, c0 = 0, 0, time.perf_counter(), time.process_time()
            while time.perf_counter() - t0 < args.seconds / args.rounds:
                d = data[steps % len(data)]
                train_step(*nets[m], d, True)
                steps, tokens = steps + 1, tokens + d.ids.size
            rates[m].append(tokens / (time.perf_counter() - t0))
            cpu_rates[m].append(tokens / max(time.process_time() - c0, 1e-9))
    print(f"training throughput, length {cfg.length}, batch {cfg.batch}, {args.threads} thread(s), "
          f"median of {args.rounds} alternating rounds ({args.seconds:.0f} s per model in all)\n")
    print("| model | parameters | tokens/s (median) | min | max | tokens per CPU second (median) |")
    print("|---|---|---|---|---|---|")
    for m in models:
        r = rates[m]
        print(f"| {m} | {parameter_count(nets[m][0]):,} | {statistics.median(r):,.0f} | {min(r):,.0f} | "
              f"{max(r):,.0f} | {statistics.median(cpu_rates[m]):,.0f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({m: {"tokens_per_second": statistics.median(r), "rounds": r,
                           "tokens_per_cpu_second": statistics.median(cpu_rates[m])} for m, r in rates.items()},
                      f, indent=1)


def inference(args: argparse.Namespace) -> None:
    """CPU time of one long mixed episode through a model's predict, the front end's MLP form and
    its table form alternating (the predictions must agree)."""
    import torch

    torch.set_num_threads(args.threads)
    import memgen.models.frontend as frontend
    from memgen.evaluation.learned import LEARNED_MODELS
    from memgen.format.vocab import Vocab
    from memgen.models.stream import TokenBatch
    from memgen.models.train import episode_table

    vocab = Vocab()
    L = args.length[0] if args.length else 2_097_152
    batch = TokenBatch.from_table(episode_table("mixed", L, 0, 1, args.seed, "heldout", vocab), vocab)
    net = {c.name: c for c in LEARNED_MODELS}[(args.model or ["memslot_ref"])[0]](checkpoint=args.checkpoint or "")
    net.load()
    tables, seen = frontend.TABLE_FLOATS, {}
    print(f"one mixed episode of {L:,} tokens, {batch.n_queries} queries, {args.threads} thread(s)\n")
    print("| front end | CPU s | wall s | tokens per CPU second |\n|---|---|---|---|")
    for _ in range(args.rounds):
        for form, limit in (("MLP", 0), ("tables", tables)):
            frontend.TABLE_FLOATS = limit
            c0, t0 = time.process_time(), time.perf_counter()
            pred = net.predict(batch).prediction
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
            assert (seen.setdefault("pred", pred) == pred).all(), "the two forms disagree"
            print(f"| {form} | {cpu:.2f} | {wall:.2f} | {L / cpu:,.0f} |", flush=True)
    frontend.TABLE_FLOATS = tables
    # the fallback cache: appending a chunk's (key, value, bias) to a Tape, against concatenating
    # every chunk so far at each chunk (what the cache did before), for the same stream
    T, cfg = 65536, net.load()[0].cfg
    xs = [(torch.randn(1, T, cfg.d_key), torch.randn(1, T, cfg.d_model), torch.randn(1, T)) for _ in range(L // T)]
    with torch.inference_mode():
        c0, tape = time.process_time(), frontend.EMPTY_TAPE
        for x in xs:
            tape = tape.append(*x, align=64)
            tape.tensors()
        tape_s, c0, cache = time.process_time() - c0, time.process_time(), ()
        for x in xs:
            cache = (*cache, x)
            [torch.cat([c[i] for c in cache], 1) for i in range(3)]
        cat_s = time.process_time() - c0
    print(f"\nfallback cache, {len(xs)} chunks of {T:,}: tape {tape_s:.2f} s CPU, concatenation {cat_s:.2f} s CPU")


def record_fixed(args: argparse.Namespace) -> None:
    """Write the fixed eval set if missing, and each shipped checkpoint's accuracy on it into its
    sidecar (``"fixed_eval"``): run after shipping a checkpoint."""
    import torch

    torch.set_num_threads(args.threads)
    from memgen.evaluation.learned import FIXED_EVAL, LEARNED_MODELS, fixed_eval_accuracy, write_fixed_eval
    from memgen.io.atomic import atomic_write_text

    if not FIXED_EVAL.is_file():
        write_fixed_eval()
    for m in args.model or list(LEARNED):
        net, _ = {c.name: c for c in LEARNED_MODELS}[m]().load()
        acc = fixed_eval_accuracy(net)
        side_path = {c.name: c for c in LEARNED_MODELS}[m]().checkpoint_path().with_suffix(".json")
        side = json.loads(side_path.read_text())
        side["fixed_eval"] = {"set": FIXED_EVAL.name, **acc}
        atomic_write_text(side_path, json.dumps(side, indent=1, sort_keys=True) + "\n")
        print(f"{m}: {acc['correct']}/{acc['n']} on {FIXED_EVAL.name} -> {side_path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help=f"{', '.join(LEARNED)}; repeat [default: all four]")
    ap.add_argument("--checkpoint", help="a checkpoint file [default: the model's shipped one]")
    ap.add_argument("--length", type=int, action="append", help="tokens per episode; repeat [default: 192]")
    ap.add_argument("--per-probe", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-tokens", type=int, default=1 << 20, help="tokens predicted at once")
    ap.add_argument("--table", action="store_true", help="every --model x --length, one subprocess each")
    ap.add_argument("--throughput", action="store_true", help="training tokens/s of every --model")
    ap.add_argument("--seconds", type=float, default=40.0, help="--throughput: training seconds per model")
    ap.add_argument("--rounds", type=int, default=5, help="--throughput: alternating rounds")
    ap.add_argument("--inference", action="store_true",
                    help="CPU time of one long mixed episode (--length, default 2,097,152), MLP vs table front end")
    ap.add_argument("--record-fixed", action="store_true",
                    help="record each shipped checkpoint's accuracy on the fixed eval set in its sidecar")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.checkpoint and len(args.model or (LEARNED if args.table else ["memslot_ref"])) > 1:
        ap.error("--checkpoint names one model's checkpoint: give one --model with it")
    if args.table:
        return table(args)
    if args.throughput:
        return throughput(args)
    if args.record_fixed:
        return record_fixed(args)
    if args.inference:
        return inference(args)
    if len(args.model or [None]) > 1 or len(args.length or [None]) > 1:
        ap.error("several --model or --length: use --table")
    r = heldout((args.model or ["memslot_ref"])[0], args.checkpoint, (args.length or [192])[0], args.per_probe,
                args.seed, args.threads, args.batch_tokens)
    if args.child:
        print(json.dumps(r))
        return
    print_heldout(r, args.threads)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=1)


if __name__ == "__main__":
    main()
