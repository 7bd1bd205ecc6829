"""``memgen audit``: the click command over :func:`memgen.audit.report.audit_dataset`."""

from __future__ import annotations

from pathlib import Path

import click

from memgen.format.errors import DataError


@click.command("audit")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--config", "configs", multiple=True,
              help="Audit this text config only (repeatable) [default: every text config].")
@click.option("--seed", default=0, show_default=True,
              help="Seed of the train/test split of episodes and the sampling.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Also write the figures here as JSON.")
@click.option("--plot", "plot_out", type=click.Path(path_type=Path), default=None,
              help="Also draw the AUCs and the heuristics' accuracies, with their targets, as a PNG here.")
@click.option("--check", is_flag=True, help="Exit with code 1 when a target is missed.")
@click.option("--no-verify", is_flag=True, help="Skip memgen verify's checksums of every shard.")
def audit(dataset: Path, configs: tuple[str, ...], seed: int, json_out: Path | None, plot_out: Path | None,
          check: bool, no_verify: bool) -> None:
    """Look for shortcuts in a text dataset: answers a reader could get without memory.

    Trains bag-of-words / character n-gram logistic regressions on some episodes to tell event
    sentences from filler, passing mentions (silent writes) from filler, and each distractor kind
    from true writes, with key surfaces masked, and prints their ROC AUC on the other episodes
    with the most telling features; then the accuracy per probe of answering without memory
    (the last or first value-shaped string in a sentence naming the key, or always unknown).
    Targets: AUC <= 0.80 for events and passing mentions vs filler; heuristics <= 50% on every
    probe but write.

    \b
    Example:
      memgen generate --family mixed --rendering text --length 8192 --episodes 40 --out ds
      memgen audit ds --plot audit.png
    """
    from memgen.audit.report import audit_dataset
    from memgen.cli.progress import progress_bar
    from memgen.io.atomic import output_file

    json_path = output_file(json_out, "--json") if json_out else None
    plot_path = output_file(plot_out, "--plot") if plot_out else None
    with progress_bar("episodes") as bar:
        task = bar.add_task("reading", total=None)
        result = audit_dataset(dataset, configs or None, check=not no_verify, seed=seed,
                               on_row=lambda: bar.advance(task))
    click.echo(result.markdown(), nl=False)
    if json_path:
        result.write_json(json_path)
    if plot_path:
        from memgen.audit.plot import plot_audit

        plot_audit(result, plot_path)
    if check and result.misses():
        raise DataError(f"audit: {len(result.misses())} target(s) missed: {result.misses()[0]}")
