"""``memgen score``: the click command over :func:`memgen.scorers.scoring` and
:func:`memgen.scorers.aggregate` (parse, call, print).  Expected failures are raised as
:class:`~memgen.format.errors.MemgenError`; the ``memgen`` group turns them into one line and an exit
code."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from memgen.format.errors import UsageError


@click.command("score")
@click.option("--dataset", "dataset", type=click.Path(path_type=Path), required=True,
              help="Dataset folder (made by memgen generate).")
@click.option("--predictions", "predictions", multiple=True, required=True,
              type=click.Path(path_type=Path),
              help="Predictions: JSONL (id/qid/prediction rows, answer blocks, or lm-eval "
                   "samples_*.jsonl), .arrow/.parquet, or a folder. Repeat to compare models.")
@click.option("--name", "names", multiple=True,
              help="Model name for each --predictions, in order [default: the file name].")
@click.option("--config", default=None, help="Score this config only.")
@click.option("--split", default=None, help="Score this split only.")
@click.option("--column", default=None,
              help="Predictions table: the column holding the answers [prediction / predictions].")
@click.option("--lm-eval-filter", default=None,
              help="lm-eval logs with several filters: the one to score [default: the first].")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write report.json (with provenance), report.md, queries-<model>.parquet and the PNG "
                   "plots (heatmap, length, depth, updates, outcomes) here.")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True,
              help="What to print on stdout.")
@click.option("--no-plots", is_flag=True,
              help="With --out: write the report and the per-query tables but no PNG plots (they need "
                   "matplotlib: memgen-bench[plots]).")
@click.option("--no-verify", is_flag=True,
              help="Skip memgen verify's checksums of every shard (large folders already verified).")
def score(dataset: Path, predictions: tuple[Path, ...], names: tuple[str, ...], config: str | None,
          split: str | None, column: str | None, lm_eval_filter: str | None, out: Path | None,
          fmt: str, no_plots: bool, no_verify: bool) -> None:
    """Classify every prediction into one outcome and report accuracy per probe.

    Every answer is scored strictly (exact after normalisation) and leniently (the answer holds
    the gold and no other value of the episode); both are reported side by side, with 95%
    intervals clustered by episode (docs/scoring.md).

    \b
    Examples:
      memgen score --dataset ds --predictions model.jsonl
      memgen score --dataset ds --predictions a.jsonl --predictions b.jsonl --out report/
    """
    from rich.console import Console
    from rich.markup import escape as markup_escape

    from memgen.cli.progress import progress_bar
    from memgen.format.names import escaped
    from memgen.scorers.aggregate import report
    from memgen.scorers.dataset import read_dataset
    from memgen.scorers.predictions import read_predictions
    from memgen.scorers.scoring import score as run

    if names and len(names) != len(predictions):
        raise UsageError(f"--name given {len(names)} times for {len(predictions)} --predictions")
    plots = out is not None and not no_plots
    if plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--out writes plots, which need matplotlib: pip install 'memgen-bench[plots]', "
                             "or pass --no-plots") from None
    # steps: the dataset, each model, the report's intervals, and the --out folder
    with progress_bar("steps") as bar:
        task = bar.add_task("reading the dataset", total=2 + len(predictions) + (out is not None))
        frame = read_dataset(dataset, config=config, split=split, check=not no_verify)
        results = []
        for i, p in enumerate(predictions):
            bar.update(task, advance=1, description=f"scoring {markup_escape(escaped(p.name))}")
            results.append(run(frame, read_predictions(p, name=names[i] if names else None, column=column,
                                                       lm_eval_filter=lm_eval_filter)))
        bar.update(task, advance=1, description="intervals (cluster bootstrap)")
        rep = report(results, dataset=str(dataset))
        if out is not None:
            bar.update(task, advance=1, description="plots")
            _write_out(out, rep, results, plots)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for m in rep.models:
        for note in m["notes"]:
            err.print(f"memgen: {m['name']}: {note}", markup=False)

    if fmt == "json":
        sys.stdout.write(rep.to_json() + "\n")
    else:
        rep.print(Console(highlight=False))
    if out is not None:
        from memgen.scorers.plots import PLOTS

        pngs = f", {', '.join(PLOTS)}" if plots else ""
        err.print(f"memgen: report written to {out}/ (report.json, report.md{pngs})", markup=False)


def _write_out(out: Path, rep, results, plots: bool) -> None:
    """The report folder, written whole (io.atomic.write_folder): report.json and .md, one
    queries-<model>.parquet per model, and the plots (with ``plots``)."""
    import pyarrow.parquet as pq

    from memgen.io.atomic import write_folder
    from memgen.scorers.plots import write_plots

    slugs = [_slug(m["name"]) for m in rep.models]
    same = sorted({s for s in slugs if slugs.count(s) > 1})
    if same:
        raise UsageError(f"--name: models {', '.join(repr(m['name']) for m in rep.models if _slug(m['name']) in same)} "
                         f"would write the same file queries-{same[0]}.parquet; give names that differ in letters")

    def write(tmp: Path) -> None:
        (tmp / "report.json").write_text(rep.to_json() + "\n")
        (tmp / "report.md").write_text(rep.to_markdown())
        for slug, r in zip(slugs, results, strict=True):
            pq.write_table(r.to_table(), tmp / f"queries-{slug}.parquet")
        if plots:
            write_plots(rep, tmp)

    write_folder(out, write, own=lambda name: name in ("report.json", "report.md") or name.endswith(".png")
                 or (name.startswith("queries-") and name.endswith(".parquet")))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "model"
