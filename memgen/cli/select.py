"""``memgen select``: run selectors on a dataset and score what they select, apart from any
answer (a thin click shell over :mod:`memgen.selection.evaluate` and :mod:`memgen.selection.report`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("select")
@click.option("--dataset", type=click.Path(path_type=Path), required=True,
              help="Dataset folder: the chunk rendering, or text generated with --chunk-size N.")
@click.option("--config", "configs", multiple=True, help="Only this config (repeatable) [default: every config "
                                                         "with passages or chunks].")
@click.option("--select", "specs", multiple=True, required=True, metavar="NAME:k=K",
              help="A selector (repeatable): tfidf, bm25, dense, recency, oracle (text and chunk; dense: text "
                   "only), sparse, hybrid (the mechanism models' chunk choices: chunk only).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Report folder: report.json, report.md, queries.jsonl, recall.png, traps.png.")
@click.option("--limit", type=int, default=None, help="Only the first N episodes of each config.")
@click.option("--plots/--no-plots", default=True, show_default=True, help="Write recall.png and traps.png.")
@click.option("--quiet", is_flag=True, help="No progress bar or table.")
def select_command(dataset: Path, configs: tuple[str, ...], specs: tuple[str, ...], out: Path, limit: int | None,
                   plots: bool, quiet: bool) -> None:
    """Score query-time selectors per probe: evidence recall@1/2/4/8, MRR, and what outranked the evidence.

    \b
    The trap of a query is the kind of passage the selector ranked first when it is not the
    evidence: stale, deleted, distractor, lookalike, other_key or filler.  For sparse and hybrid
    the model itself is run too, and each wrong answer is attributed to selection or reading.
    \b
    Examples:
      memgen generate --family mixed --rendering text --length 32768 --chunk-size 256 --out ds
      memgen select --dataset ds --select bm25:k=8 --select dense:k=8 --select oracle --out sel
      memgen select --dataset chunks --select sparse:k=4 --select bm25 --out sel-chunks
    """
    from memgen.selection.evaluate import evaluate_selection
    from memgen.selection.registry import parse_select
    from memgen.selection.report import markdown, write_report

    sels = [parse_select(s) for s in specs]  # every spec checked before any work
    if quiet:
        res = evaluate_selection(dataset, sels, configs=configs or None, limit=limit)
    else:
        from memgen.cli.progress import progress_bar
        from memgen.io.dataset import Dataset
        from memgen.selection.evaluate import select_configs

        ds = Dataset.open(dataset)
        total = sum(min(ds.config(c)["rows"], limit or ds.config(c)["rows"])
                    for c in select_configs(ds, configs or None))
        with progress_bar("episodes") as bar:
            tid = bar.add_task("selecting", total=total)
            res = evaluate_selection(dataset, sels, configs=configs or None, limit=limit,
                                     on_episode=lambda ep: bar.update(tid, advance=1, description=ep.config))
    write_report(res, out, plots=plots)
    if not quiet:
        sys.stdout.write(markdown(res) + f"\nwrote {out}\n")
