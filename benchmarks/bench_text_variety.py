"""Variety of the text rendering: distinct phrasings per event category, and repeated sentences
in one long context.

    python benchmarks/bench_text_variety.py [--events 1000] [--length 131072]

For each shipped domain it prints

* the number of distinct phrasings among ``--events`` rendered events of each category
  (key, value, replaced value and other entities' values masked, so only the wording counts);
* for one ``mixed`` episode of ``--length`` tokens (cl100k): the share of its sentences that
  repeat an earlier sentence word for word, over all sentences and over event sentences, both
  as written and with every key- and value-shaped string masked.
"""

from __future__ import annotations

import argparse

import numpy as np

from memgen.audit.units import units
from memgen.generators.build import build_program
from memgen.generators.knobs import Knobs
from memgen.generators.registry import get_family
from memgen.ir.rng import Streams, episode_seeds
from memgen.render.text.domain import EVENT_CATEGORIES, available_domains, load_domain
from memgen.render.text.episode import render_text

MASKS = {"key": "KEY", "value": "VALUE", "old": "OLD", "other": "OTHER", "other2": "OTHER", "lookalike": "LOOK"}


def distinct_phrasings(domain: str, category: str, n: int, seed: int = 0) -> int:
    """Distinct masked texts among ``n`` events of ``category``."""
    dom = load_domain(domain)
    rng = np.random.default_rng(seed)
    return len({dom.render(category, rng, **MASKS) for _ in range(n)})


def repeats(domain: str, length: int, seed: int = 0) -> dict[str, float]:
    """Shares of sentences of one ``mixed`` episode that repeat an earlier one."""
    from memgen.format.vocab import Vocab

    dom = load_domain(domain)
    v = Vocab()
    seeds = episode_seeds(seed, 0, 1)
    program = build_program(get_family("mixed")(Knobs(), length), Streams(seeds), v.key_space, v.key_tokens, v.values)
    ep = program.episode(0, id="v", family="mixed", seed=int(seeds[0]))
    row = render_text(ep, target_length=length, tokenizer="cl100k", domain=domain, seed=int(seeds[0]))
    ctx = row.context
    data = {"context": ctx, "domain": domain,
            "events": [{"op": e.op, "kind": e.kind, "key": e.key, "alias": e.alias, "start": e.start, "end": e.end}
                       for e in row.episode.events],
            "queries": [{"key": q.key, "start": q.start, "end": q.end} for q in row.episode.queries]}
    sent = units(data, 0)
    value_shape = dom.values.pattern()
    out = {}
    for name, pick in (("all", lambda u: True), ("events", lambda u: u.label != "filler")):
        chosen = [u for u in sent if pick(u)]
        for masked in (False, True):
            texts = [value_shape.sub("VALUE", u.text) if masked else ctx[u.start:u.end] for u in chosen]
            out[f"{name}{' masked' if masked else ''}"] = 1 - len(set(texts)) / max(len(texts), 1)
    out["sentences"] = len(sent)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--length", type=int, default=131_072)
    args = ap.parse_args()
    cats = EVENT_CATEGORIES
    print(f"distinct phrasings in {args.events:,} events (key and values masked)\n")
    print("| domain | " + " | ".join(cats) + " |")
    print("|---|" + "---|" * len(cats))
    for d in available_domains():
        print(f"| {d} | " + " | ".join(f"{distinct_phrasings(d, c, args.events):,}" for c in cats) + " |")
    print(f"\nrepeated sentences in one mixed episode of {args.length:,} tokens (cl100k)\n")
    print("| domain | sentences | all | all, shapes masked | events | events, shapes masked |")
    print("|---|---|---|---|---|---|")
    for d in available_domains():
        r = repeats(d, args.length)
        print(f"| {d} | {r['sentences']:,} | {r['all']:.1%} | {r['all masked']:.1%} | {r['events']:.1%} | "
              f"{r['events masked']:.1%} |")


if __name__ == "__main__":
    main()
