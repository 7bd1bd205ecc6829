"""The frozen-encoder bridge's benchmark (docs/bridge.md): the shipped heads, oracle and text
modes, on held-out text datasets (seed 1; the heads' training seed is memgen.bridge.episodes.TRAIN_SEED).

    python benchmarks/bench_bridge.py --out /tmp/bridge-bench            # everything
    python benchmarks/bench_bridge.py --out /tmp/bridge-bench --only 2048,heldout
    python benchmarks/bench_bridge.py --out /tmp/bridge-bench --only timing
    python benchmarks/bench_bridge.py --out /tmp/bridge-bench --only heldout --heads none --head-file own.pt

Sets (each a dataset folder under --out, made as ``memgen generate`` makes it):
  2048     the six families at 2,048 tokens, 9 episodes x 5 questions per training domain: 180 per family
  heldout  the six families at 2,048 tokens in lab_notebook, a domain no head was trained on,
           18 episodes x 5 questions: 90 per family
  8192     distractor and version at 8,192 tokens (more keys, more similar names), 4 episodes x 5 questions
           per training domain: 80 per family
  32768    distractor and version at 32,768 tokens, the same counts: 80 per family
  timing   encode + train + evaluate 200 / 100 episodes at 2,048 tokens, oracle replay head, fresh cache
Prints one Markdown table per set (correct / queries per family and probe, per head, and the
text - oracle gap) and writes bench.json under --out.  One torch thread throughout.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

FAMILIES = ("write", "overwrite", "version", "distractor", "no_write_signal", "discard")
TRAIN_DOMAINS = ("accounts", "inventory", "server_config", "travel")
SETS = {
    "2048": dict(families=FAMILIES, length=2048, episodes=9, queries=5, domains=TRAIN_DOMAINS),
    "heldout": dict(families=FAMILIES, length=2048, episodes=18, queries=5, domains=("lab_notebook",)),
    "8192": dict(families=("distractor", "version"), length=8192, episodes=4, queries=5, domains=TRAIN_DOMAINS),
    "32768": dict(families=("distractor", "version"), length=32768, episodes=4, queries=5, domains=TRAIN_DOMAINS),
}
HEADS = (("oracle", "replay"), ("text", "replay"), ("oracle", "transformer"), ("text", "transformer"))


def make_sets(out: Path, names: list[str]) -> dict[str, list[Path]]:
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import make_request

    made = {}
    for name in names:
        s = SETS[name]
        made[name] = []
        for d in s["domains"]:
            # the folder names the set's counts, so a set whose counts change is made again, not reused
            root = out / f"ds-{name}-{d}-{s['episodes']}x{s['queries']}"
            if not (root / "manifest.json").exists():
                generate(make_request(s["families"], renderings="text", lengths=s["length"], episodes=s["episodes"],
                                      queries=s["queries"], seed=1, domain=d), root)
            made[name].append(root)
    return made


def run_set(roots: list[Path], encoder, heads: dict, cache: Path | None) -> dict:
    """{label: {family: {probe: [correct, queries]}}} and seconds, over every dataset in ``roots``."""
    from memgen.bridge.episodes import dataset_episodes
    from memgen.bridge.evaluate import evaluate_head
    from memgen.bridge.train import encode_episodes

    cells: dict = {label: {} for label in heads}
    errors: dict = {label: {} for label in heads}
    t0 = time.perf_counter()
    for root in roots:
        encoded = {f"{root.name}/{n}": encode_episodes(encoder, eps, cache)
                   for n, eps in dataset_episodes(root).items()}
        for label, model in heads.items():
            r = evaluate_head(model, encoded, label)
            for config, c in r.per_config.items():
                fam = config.split("/")[1].rsplit("-text-", 1)[0]
                for probe, pc in c["probes"].items():
                    cell = cells[label].setdefault(fam, {}).setdefault(probe, [0, 0])
                    cell[0] += pc["correct"]
                    cell[1] += pc["queries"]
                for k, v in c["errors"].items():
                    errors[label][k] = errors[label].get(k, 0) + v
    return {"cells": cells, "errors": errors, "seconds": round(time.perf_counter() - t0, 1)}


def table(result: dict, labels: list[str]) -> str:
    """Markdown: per family (all probes) and per probe (all families), each head, text - oracle gap."""
    cells = result["cells"]
    fams = sorted({f for lab in labels for f in cells[lab]})
    probes = sorted({p for lab in labels for f in cells[lab].values() for p in f})

    def total(lab, fam=None, probe=None):
        c = q = 0
        for f, by in cells[lab].items():
            for p, (cc, qq) in by.items():
                if (fam is None or f == fam) and (probe is None or p == probe):
                    c, q = c + cc, q + qq
        return c, q

    def row(name, **where):
        got = [total(lab, **where) for lab in labels]
        pct = {lab: 100 * c / q if q else 0.0 for lab, (c, q) in zip(labels, got, strict=True)}
        gaps = [f"{pct[f'text-{h}'] - pct[f'oracle-{h}']:+.1f}" for h in ("replay", "transformer")
                if f"text-{h}" in pct and f"oracle-{h}" in pct]
        return "| " + " | ".join([name, *(f"{c}/{q}" for c, q in got), *gaps]) + " |"

    gap_heads = [h for h in ("replay", "transformer") if f"text-{h}" in labels and f"oracle-{h}" in labels]
    head = "| " + " | ".join(["", *labels, *(f"gap {h} (pts)" for h in gap_heads)]) + " |"
    sep = "|---" * (1 + len(labels) + len(gap_heads)) + "|"
    lines = [head, sep] + [row(f"family {f}", fam=f) for f in fams] + [row(f"probe {p}", probe=p) for p in probes]
    lines.append(row("all"))
    return "\n".join(lines)


def timing(out: Path, encoder) -> dict:
    """Encode + train + evaluate: 200 training / 100 held-out episodes at 2,048 tokens, a fresh cache."""
    import shutil

    from memgen.bridge.episodes import training_episodes
    from memgen.bridge.evaluate import evaluate_head
    from memgen.bridge.train import encode_episodes, train_head

    cache = out / "cache-timing"
    shutil.rmtree(cache, ignore_errors=True)
    t0 = time.perf_counter()
    train = training_episodes(("mixed", "version", "distractor", "discard"), [2048], 50, domains=("travel",))
    test = training_episodes(("mixed", "version", "distractor", "discard"), [2048], 25, domains=("travel",), seed=1)
    t_gen = time.perf_counter()
    enc_train, enc_test = encode_episodes(encoder, train, cache), encode_episodes(encoder, test, cache)
    t_enc = time.perf_counter()
    model, _ = train_head(enc_train, "oracle", "replay", steps=200)
    t_train = time.perf_counter()
    r = evaluate_head(model, {"test": enc_test}, "oracle-replay").per_config["test"]
    t_end = time.perf_counter()
    return {"train_episodes": len(train), "test_episodes": len(test), "generate_s": round(t_gen - t0, 1),
            "encode_s": round(t_enc - t_gen, 1), "train_s": round(t_train - t_enc, 1),
            "evaluate_s": round(t_end - t_train, 1), "total_s": round(t_end - t0, 1),
            "correct": r["correct"], "queries": r["queries"],
            "sentences": int(enc_train.states.pooled.shape[0] + enc_test.states.pooled.shape[0])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--only", default="2048,heldout,8192,32768,timing")
    ap.add_argument("--cache", type=Path, help="state cache [default: memgen's]")
    ap.add_argument("--heads", default=",".join(f"{m}-{h}" for m, h in HEADS),
                    help="shipped heads to run (results of others already in bench.json are kept)")
    ap.add_argument("--head-file", action="append", default=[], type=Path,
                    help="a trained head file to run too (repeatable), labelled by its file name: e.g. a text "
                         "head trained without --readers")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from memgen.bridge.encoder import load_encoder
    from memgen.bridge.train import load_head, shipped_head

    names = [n.strip() for n in args.only.split(",") if n.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    encoder = load_encoder()
    results = {}
    path = args.out / "bench.json"
    if path.exists():
        results = json.loads(path.read_text())
    sets = make_sets(args.out, [n for n in names if n in SETS])
    wanted = {h.strip() for h in args.heads.split(",")}
    heads = {f"{m}-{h}": load_head(shipped_head(m, h))[0] for m, h in HEADS if f"{m}-{h}" in wanted}
    shipped = set(heads) | {f"{m}-{h}" for m, h in HEADS}
    for f in args.head_file:
        if f.stem in shipped:
            raise SystemExit(f"--head-file {f}: name it other than a shipped head ({f.stem})")
        heads[f.stem] = load_head(f)[0]
    for name, roots in sets.items():
        got = run_set(roots, encoder, heads, args.cache)
        kept = results.get(name, {"cells": {}, "errors": {}, "seconds": {}})
        for part in ("cells", "errors"):
            kept[part].update(got[part])
        kept["seconds"] = {**(kept["seconds"] if isinstance(kept["seconds"], dict) else {}),
                           ",".join(heads): got["seconds"]}
        results[name] = kept
        labels = [f"{m}-{h}" for m, h in HEADS if f"{m}-{h}" in kept["cells"]]
        labels += sorted(lab for lab in kept["cells"] if lab not in labels)
        print(f"\n### {name} ({got['seconds']} s for {', '.join(heads)})\n\n{table(kept, labels)}")
        print("errors:", json.dumps(results[name]["errors"]))
        path.write_text(json.dumps(results, indent=1))
    if "timing" in names:
        got = timing(args.out, encoder)
        print("\n### timing\n", json.dumps(got))
        # another run may have written other sets meanwhile
        results = {**(json.loads(path.read_text()) if path.exists() else {}), "timing": got}
        path.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
