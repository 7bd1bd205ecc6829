"""Throughput of the scorers: predictions scored per second, token and text, on one core.

    python benchmarks/bench_score.py                    # 1,024,000 queries
    python benchmarks/bench_score.py --queries 128000   # a quicker run

A ``mixed`` dataset (2,048 tokens, 48 keys and 64 queries per episode: about 47 other-key
trap values per query) is generated into a temporary folder.  Predictions are a realistic
mix: gold answers, stale and other-version values, distractor and other-key values, "unknown",
values of no trap, and (token) special or out-of-range ids / (text) free-form and empty
answers.  Arrow's thread pools are set to one thread, so every figure is one core.

Each rate is the best of three runs of ``memgen.scorers.scoring`` on a frame read once (reading
and flattening the dataset is reported apart: it is paid once per dataset, not per model):

* token aligned: an array with one token id per query (bundled models hand this over);
* token table: an Arrow table of (id, qid, prediction): the join on (id, qid) included;
* token jsonl: a JSONL file: parsing, join and classification;
* text aligned / text jsonl: the same for text answers against the text surfaces of
  ``memgen.render.text.domain.value_surface`` in five domains (normalisation, surface lookup
  and the lenient search of the answers strict scoring cannot read included);
* the report of the text model: every cell's clustered interval (one cluster bootstrap).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _best(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _first(rag, rows: np.ndarray) -> np.ndarray:
    """The first value of each list in ``rows`` (lists must be non-empty)."""
    return rag.values[rag.offsets[rows]]


def _mixed_choice(frame, rng) -> dict[str, np.ndarray]:
    """Query indices per kind of answer (disjoint), for the realistic mix."""
    n = frame.n_queries
    u = rng.random(n)
    kinds = {}
    has = {f: np.diff(getattr(frame.traps, f).offsets) > 0 for f in ("stale", "distractor", "other_keys")}
    kinds["stale"] = np.flatnonzero((u < 0.15) & has["stale"])
    kinds["distractor"] = np.flatnonzero((u >= 0.15) & (u < 0.20) & has["distractor"])
    kinds["other_keys"] = np.flatnonzero((u >= 0.20) & (u < 0.25) & has["other_keys"])
    kinds["unknown"] = np.flatnonzero((u >= 0.25) & (u < 0.30))
    kinds["no_trap"] = np.flatnonzero((u >= 0.30) & (u < 0.35))
    kinds["junk"] = np.flatnonzero((u >= 0.35) & (u < 0.40))
    return kinds


def token_predictions(frame, vocab, rng) -> np.ndarray:
    pred = np.where(frame.answer >= 0, frame.answer + vocab.value_offset, vocab.absent_id)
    k = _mixed_choice(frame, rng)
    for f in ("stale", "distractor", "other_keys"):
        pred[k[f]] = _first(getattr(frame.traps, f), k[f]) + vocab.value_offset
    pred[k["unknown"]] = vocab.absent_id
    pred[k["no_trap"]] = vocab.value_offset + rng.integers(0, vocab.values, k["no_trap"].size)
    pred[k["junk"]] = rng.choice([0, 5, -3, vocab.vocab_size + 7], k["junk"].size)
    return pred


def text_frame(root: Path):
    """The token dataset's queries as a text rendering: five domains, gold texts from
    ``memgen.render.text.domain.value_surface``."""
    from memgen.io.dataset import Dataset
    from memgen.render.text.domain import available_domains, value_surface
    from memgen.scorers.frame import build_frame

    ds = Dataset.open(root)
    table = pa.concat_tables([ds.table(c) for c in ds.configs]).select(
        ["id", "family", "rendering", "target_length", "length", "events", "queries"])
    domains = available_domains()
    dom = np.array(domains, dtype=object)[np.arange(table.num_rows) % len(domains)]
    queries = table.column("queries").combine_chunks()
    q = queries.flatten()
    owner = pc.list_parent_indices(queries).to_numpy()
    answer = q.field("answer").to_numpy()
    cache: dict[tuple[str, int], str] = {}
    texts = []
    for d, a in zip(dom[owner].tolist(), answer.tolist(), strict=True):
        if a < 0:
            texts.append("unknown")
        else:
            s = cache.get((d, a))
            if s is None:
                s = cache[(d, a)] = value_surface(d, a)
            texts.append(s)
    fields = [q.field(i) for i in range(q.type.num_fields)]
    names = [q.type.field(i).name for i in range(q.type.num_fields)]
    fields[names.index("answer_text")] = pa.array(texts, pa.string())
    new_q = pa.ListArray.from_arrays(queries.offsets, pa.StructArray.from_arrays(fields, names=names))
    table = table.set_column(table.column_names.index("queries"), "queries", new_q)
    table = table.set_column(table.column_names.index("rendering"), "rendering",
                             pa.array(["text"] * table.num_rows))
    table = table.append_column("domain", pa.array(dom.tolist(), pa.string()))
    return build_frame(table, source="text-bench")


def text_predictions(frame, rng) -> list[str]:
    from memgen.render.text.domain import value_surface

    doms = frame.domain[frame.row]
    pred = list(frame.answer_text)
    k = _mixed_choice(frame, rng)
    # gold answers in another case / with punctuation, as models write them
    restyle = np.flatnonzero(rng.random(frame.n_queries) < 0.3)
    for i in restyle.tolist():
        pred[i] = pred[i].upper() + "." if i % 2 else f"The answer is {pred[i]}"
    for f in ("stale", "distractor", "other_keys"):
        vals = _first(getattr(frame.traps, f), k[f])
        for i, v in zip(k[f].tolist(), vals.tolist(), strict=True):
            pred[i] = value_surface(doms[i], int(v))
    phrasings = ["Unknown.", "unknown", "It no longer exists.", "N/A", "not known"]
    for j, i in enumerate(k["unknown"].tolist()):
        pred[i] = phrasings[j % len(phrasings)]
    for i, v in zip(k["no_trap"].tolist(), rng.integers(0, 1024, k["no_trap"].size).tolist(), strict=True):
        pred[i] = value_surface(doms[i], int(v))
    for j, i in enumerate(k["junk"].tolist()):
        pred[i] = "" if j % 4 == 0 else f"I think it was item {j}, but I am not sure"
    return pred


def write_jsonl(path: Path, frame, preds) -> None:
    ids = frame.ids.take(pa.array(frame.row)).to_pylist()
    qids = frame.qid.tolist()
    vals = preds.tolist() if isinstance(preds, np.ndarray) else preds
    with open(path, "w") as fh:
        for i, q, p in zip(ids, qids, vals, strict=True):
            fh.write(json.dumps({"id": i, "qid": q, "prediction": p}) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=1_024_000, help="queries scored (64 per episode)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)

    from memgen.generators.knobs import Knobs
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import Request
    from memgen.scorers.aggregate import report
    from memgen.scorers.answers import TokenVocab
    from memgen.scorers.dataset import read_dataset
    from memgen.scorers.predictions import Predictions
    from memgen.scorers.scoring import score

    rng = np.random.default_rng(0)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ds"
        episodes = max(1, args.queries // 64)
        generate(Request(families=("mixed",), lengths=(2048,), episodes=episodes, seed=0,
                         knobs=Knobs(keys=48, queries=64)), root)
        t0 = time.perf_counter()
        frame = read_dataset(root)
        out["read_s"] = time.perf_counter() - t0
        n = frame.n_queries
        out["queries"] = n
        out["trap_values_per_query"] = sum(getattr(frame.traps, f).values.size for f in
                                           ("stale", "distractor", "other_keys", "deleted")) / n
        vocab = TokenVocab.from_manifest(frame.manifest)

        tokens = token_predictions(frame, vocab, rng)
        acc = score(frame, tokens).accuracy
        out["token_accuracy_of_the_mix"] = acc
        out["token_aligned_per_s"] = n / _best(lambda: score(frame, tokens))
        table = pa.table({"id": frame.ids.take(pa.array(frame.row)), "qid": frame.qid, "prediction": tokens})
        out["token_table_per_s"] = n / _best(lambda: score(frame, Predictions.from_table(table)))
        jpath = Path(tmp) / "tokens.jsonl"
        write_jsonl(jpath, frame, tokens)
        out["token_jsonl_per_s"] = n / _best(lambda: score(frame, jpath))

        t0 = time.perf_counter()
        tframe = text_frame(root)
        out["text_frame_s"] = time.perf_counter() - t0
        texts = text_predictions(tframe, rng)
        scored = score(tframe, texts)
        out["text_accuracy_of_the_mix"] = scored.accuracy
        out["text_lenient_accuracy_of_the_mix"] = scored.lenient_accuracy
        out["text_aligned_per_s"] = n / _best(lambda: score(tframe, texts))
        out["text_report_s"] = _best(lambda: report(scored))
        tpath = Path(tmp) / "texts.jsonl"
        write_jsonl(tpath, tframe, texts)
        out["text_jsonl_per_s"] = n / _best(lambda: score(tframe, tpath))

    if args.json:
        print(json.dumps(out, indent=1))
        return
    print(f"queries: {n:,} ({out['trap_values_per_query']:.1f} trap values per query); one core")
    print(f"dataset read + flatten (once per dataset): {out['read_s']:.2f} s")
    print(f"token predictions/s, aligned array : {out['token_aligned_per_s'] / 1e6:6.2f} M")
    print(f"token predictions/s, (id, qid) table: {out['token_table_per_s'] / 1e6:6.2f} M")
    print(f"token predictions/s, JSONL file     : {out['token_jsonl_per_s'] / 1e6:6.2f} M")
    print(f"text predictions/s, aligned list    : {out['text_aligned_per_s'] / 1e3:6.0f} k")
    print(f"text predictions/s, JSONL file      : {out['text_jsonl_per_s'] / 1e3:6.0f} k")
    print(f"report of one text model (1,000 cluster-bootstrap resamples): {out['text_report_s']:.2f} s")
    print(f"(accuracy of the prediction mix: token {out['token_accuracy_of_the_mix']:.3f}, "
          f"text {out['text_accuracy_of_the_mix']:.3f} strict, {out['text_lenient_accuracy_of_the_mix']:.3f} lenient)")


if __name__ == "__main__":
    main()
