"""``memgen eval`` and ``memgen stress``: thin click shells over :mod:`memgen.evaluation`.

Both print one table, models x probes: accuracy with counts, and under it the dominant wrong
outcome of the cell (DESIGN.md section 7).  The library is imported when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from memgen.evaluation.stress import STRESS_EPISODES, STRESS_LENGTH

if TYPE_CHECKING:
    from memgen.evaluation.predict import Evaluation
    from memgen.evaluation.stress import StressReport
    from memgen.scorers.aggregate import ProbeCell

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

_MODEL_HELP = ("Model to run, as name or name:knob=value,... (e.g. fixed_state:d=64); repeat for "
               "several [default: every mechanism model; learned ones, e.g. memslot_ref, are named].")


def results_table(ev: Evaluation, title: str) -> Table:
    """Probes x models (one column per model, so it fits a terminal): accuracy with counts and
    the dominant wrong outcome per cell, then each model's episodes fully correct, range of
    active chunks per query, and time in its predict() (the shared parse not included)."""
    from memgen.scorers.aggregate import ProbeTable

    grid = ProbeTable.from_summary(ev.summary())
    table = Table(title=title, title_justify="left", show_lines=True)
    table.add_column("probe", style="bold", no_wrap=True)
    for label in grid.models:
        table.add_column(label, justify="right")
    for probe, cells in grid.rows():
        table.add_row(probe, *(_cell_text(c) for c in cells))
    for label, texts in grid.figures:
        table.add_row(label, *texts)
    return table


def _cell_text(c: ProbeCell | None) -> str:
    """'97.0%', then 'correct/n' dimmed and the dominant wrong outcome in red, one per line."""
    if c is None:
        return ""
    text = f"{c.accuracy_text}\n[dim]{c.counts_text}[/dim]"
    return text + (f"\n[red]{c.wrong_text}[/red]" if c.wrong else "")


def _progress(quiet: bool):
    """(context manager, on_shard callback) for a transient progress bar on stderr."""
    from contextlib import nullcontext

    if quiet:
        return nullcontext(), None
    from memgen.cli.progress import progress_bar

    bar = progress_bar("shards")
    tasks: dict[str, int] = {}

    def on_shard(config: str, index: int, count: int) -> None:
        if config not in tasks:
            tasks[config] = bar.add_task(config, total=count)
        bar.update(tasks[config], completed=index + 1)

    return bar, on_shard


def _print_notes(ev: Evaluation) -> None:
    for note in ev.notes:
        console.print(f"[dim]note: {note}[/dim]")


@click.command("eval")
@click.option("--dataset", required=True, type=click.Path(path_type=Path), help="A memgen dataset folder.")
@click.option("--model", "models", multiple=True, help=_MODEL_HELP)
@click.option("--config", default=None, help="One config [default: every token/chunk config].")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write <model>.jsonl predictions and summary.json here.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--workers", type=int, default=None,
              help="Shards evaluated at once [local: 1 process; ray: the cluster's CPUs].")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where shards are evaluated: local processes, or a Ray cluster.")
@click.option("--address", default=None, help="Ray: the cluster's address [default: start a local one].")
def eval_command(dataset: Path, models: tuple[str, ...], config: str | None, out: Path | None,
                 quiet: bool, workers: int | None, engine: str, address: str | None) -> None:
    """Run models (mechanism, or learned checkpoints such as memslot_ref) on a dataset and print
    models x probes accuracy.

    \b
    Example:
      memgen eval --dataset ds --model hybrid --model sparse --out preds
    """
    from memgen.evaluation.predict import evaluate

    bar, on_shard = _progress(quiet)
    with bar:
        ev = evaluate(dataset, models or None, config=config, out=out, on_shard=on_shard, workers=workers,
                      engine=engine, address=address)
    title = f"{dataset}: {len(ev.configs)} configs, {ev.n_episodes:,} episodes, {ev.n_queries:,} queries"
    console.print(results_table(ev, title))
    _print_notes(ev)
    if out is not None:
        console.print(f"predictions: {out}/<model>.jsonl, summary: {out}/summary.json")


@click.command("stress")
@click.option("--length", type=int, default=STRESS_LENGTH, show_default=True, help="Tokens per episode.")
@click.option("--episodes", type=int, default=STRESS_EPISODES, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--model", "models", multiple=True, help=_MODEL_HELP)
@click.option("--dataset", type=click.Path(path_type=Path), default=None,
              help="Generate into this folder and keep it (reused if it holds the same dataset) "
                   "[default: a temporary folder, removed].")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write <model>.jsonl predictions and summary.json here.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="Write the report (table cells, times, RSS, checks) as JSON here.")
@click.option("--strict", is_flag=True,
              help="Exit 1 when a target (time, memory, hybrid all right, memslot_ref >= 99%) is missed.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def stress_command(length: int, episodes: int, seed: int, models: tuple[str, ...], dataset: Path | None,
                   out: Path | None, json_path: Path | None, strict: bool, quiet: bool) -> None:
    """The long-context stress test: mixed-family episodes in the chunk rendering, every model.

    \b
    Default: 50 episodes of 2,097,152 tokens; prints the table, the hybrid's episodes and
    queries fully correct, the range of active chunks, wall time and peak RSS.
    """
    from memgen.evaluation.stress import stress

    bar, on_shard = _progress(quiet)
    with bar:
        report = stress(length, episodes, seed=seed, models=models or None, dataset=dataset, out=out,
                        on_shard=on_shard)
    print_stress(report)
    if json_path is not None:
        from memgen.io.atomic import atomic_write_text

        atomic_write_text(json_path, json.dumps(report.summary(), indent=1) + "\n")
    if strict and not all(ok for _, ok in report.checks()):
        raise click.exceptions.Exit(1)


def print_stress(report: StressReport) -> None:
    ev = report.evaluation
    title = (f"stress: {ev.n_episodes} mixed episodes x {report.length:,} tokens (chunk rendering), "
             f"{ev.n_queries:,} queries")
    console.print(results_table(ev, title))
    h = report.hybrid_label()
    if h is not None:
        res = ev.results[h]
        console.print(f"{h} pooled: {ev.episodes_correct(h)}/{ev.n_episodes} episodes fully correct, "
                  f"{int(res.correct.sum())}/{ev.n_queries} queries; routes "
                  + ", ".join(f"{r} {n}" for r, n in ev.routes(h).items()))
    for label, res in ev.results.items():
        a = res.active_chunks
        if a.max(initial=0) > 0:
            console.print(f"active chunks per query, {label}: {a.min()}-{a.max()} (mean {a.mean():.2f})")
    console.print(f"wall time {report.seconds:.1f} s (generate {report.generate_seconds:.1f} s, "
              f"evaluate {report.eval_seconds:.1f} s, of which reading and parsing the streams "
              f"{ev.parse_seconds:.1f} s); CPU time {report.cpu_seconds:.1f} s; peak RSS "
              f"{report.peak_rss / 2**20:,.0f} MiB")
    for what, ok in report.checks():
        console.print(("[green]met[/green]  " if ok else "[red]MISSED[/red] ") + what)
    _print_notes(ev)
