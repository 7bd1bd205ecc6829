"""Held-out accuracy of a learned checkpoint: 100 queries per probe (600 in all) from fresh seeds,
answered by the registered model's ``predict`` and classified by memgen's scorers.

    python benchmarks/bench_train.py --checkpoint memgen/data/checkpoints/memslot_ref.pt \
        --length 192 --seed 1000

Episodes come from ``derive_seed("heldout", seed, family)`` (memgen.models.train): a seed domain
no ``memgen generate`` uses, and with ``--seed`` other than the training run's, not the held-out
set the training curve was measured on.  Prints one Markdown row per probe, the pooled count,
the outcome mix of the wrong answers, and the time in ``predict``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pyarrow as pa


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--model", default="memslot_ref")
    ap.add_argument("--length", type=int, default=192)
    ap.add_argument("--per-probe", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from memgen.evaluation.learned import LEARNED_MODELS
    from memgen.format.codes import OUTCOMES, PROBES
    from memgen.format.vocab import Vocab
    from memgen.models.stream import TokenBatch
    from memgen.models.train import ALL_FAMILIES, episode_table
    from memgen.scorers.answers import TokenVocab
    from memgen.scorers.frame import REQUIRED_COLUMNS, build_frame
    from memgen.scorers.scoring import score

    vocab = Vocab()
    cls = {m.name: m for m in LEARNED_MODELS}[args.model]
    model = cls(checkpoint=args.checkpoint)
    tables, have, start = [], np.zeros(len(PROBES), int), 0
    while (have < args.per_probe).any():
        for fam in ALL_FAMILIES:
            t = episode_table(fam, args.length, start, 16, args.seed, "heldout", vocab)
            tables.append(t)
            probes = t.column("queries").combine_chunks().flatten().field("probe").to_pylist()
            have += np.bincount([PROBES.index(p) for p in probes], minlength=len(PROBES))
        start += 16
    table = pa.concat_tables(tables)
    t0 = time.perf_counter()
    answers = model.predict(TokenBatch.from_table(table, vocab))
    secs = time.perf_counter() - t0
    frame = build_frame(table.select(list(REQUIRED_COLUMNS)), source="heldout")
    tv = TokenVocab(vocab.value_offset, 6, vocab.values, vocab.vocab_size)
    res = score(frame, answers.prediction.tolist(), name=args.model, vocab=tv)
    probe = np.asarray(frame.probe)
    keep = np.zeros(probe.size, bool)
    for p in range(len(PROBES)):
        keep[np.flatnonzero(probe == p)[:args.per_probe]] = True
    outcome = np.asarray(res.outcome)
    rows, total = [], 0
    print("| probe | correct | wrong outcomes |\n|---|---|---|")
    for p, name in enumerate(PROBES):
        sel = keep & (probe == p)
        c = int((outcome[sel] == 0).sum())
        total += c
        wrong = {OUTCOMES[o]: int(n) for o, n in enumerate(np.bincount(outcome[sel], minlength=len(OUTCOMES)))
                 if o and n}
        rows.append({"probe": name, "correct": c, "n": int(sel.sum()), "wrong": wrong})
        print(f"| {name} | {c}/{int(sel.sum())} | {wrong or '-'} |")
    print(f"| all | {total}/{int(keep.sum())} | |")
    print(f"predict: {secs:.1f} s for {len(table)} episodes x {args.length} tokens ({frame.probe.size} queries), "
          f"{args.threads} thread(s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"checkpoint": args.checkpoint, "length": args.length, "seed": args.seed, "rows": rows,
                       "correct": total, "n": int(keep.sum()), "predict_seconds": round(secs, 2)}, f, indent=1)


if __name__ == "__main__":
    main()
