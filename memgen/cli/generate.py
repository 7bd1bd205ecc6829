"""``memgen generate``, ``memgen verify`` and ``memgen show``: thin click shells over
:mod:`memgen.pipeline`, :mod:`memgen.io.dataset` and :mod:`memgen.render.show`."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from memgen.cli.common import _fail, _split_csv, out
from memgen.format.errors import DataError


def _depth(value: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in value.split(","))
    except ValueError:
        raise click.BadParameter("use two fractions, e.g. 0,1 or 0.1,0.3", param_hint="--depth") from None
    return lo, hi


@click.command()
@click.option("--family", "families", multiple=True, required=True,
              help="Episode family (repeat, comma-separate, or 'all'): write, overwrite, version, "
                   "distractor, no_write_signal, discard, mixed.")
@click.option("--rendering", "renderings", multiple=True, default=("token",), show_default=True,
              help="token, chunk, bridge or text (repeatable).")
@click.option("--length", "lengths", multiple=True, type=int, default=(4096,), show_default=True,
              help="Target length in tokens (repeatable).")
@click.option("--episodes", type=int, default=100, show_default=True, help="Episodes per config.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", required=True,
              help="Output folder (a Hub dataset repo): a path or an fsspec/pyarrow URL (file://, s3://).")
@click.option("--split", default="test", show_default=True)
@click.option("--shard-size", type=int, default=None, help="Episodes per shard [default: ~4M tokens per shard].")
@click.option("--format", "shard_format", type=click.Choice(["parquet", "arrow"]), default="parquet",
              show_default=True, help="Shard files: Parquet (the Hub's viewer, DuckDB, Polars read it) or Arrow IPC.")
@click.option("--workers", type=int, default=None,
              help="Parallel shard tasks [local: 1 process; ray: the cluster's CPUs].")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where shard tasks run: local processes, or a Ray cluster (pip install 'memgen-bench[ray]').")
@click.option("--address", default=None, help="Ray: the cluster's address [default: start a local one].")
@click.option("--keys", type=int, default=None, help="Keys written per episode [family default, scales with length].")
@click.option("--overwrites", type=int, default=None, help="Overwrite events per episode, spread over keys.")
@click.option("--distractors", type=int, default=None, help="Distractor statements per episode.")
@click.option("--distractor-kinds", default="negated,hypothetical,unconfirmed,rejected,lookalike",
              show_default=True, help="Comma-separated distractor kinds to draw from.")
@click.option("--silent-share", type=float, default=None, help="Share of writes with no write signal.")
@click.option("--deletes", type=int, default=None, help="Keys deleted per episode.")
@click.option("--rewrite-share", type=float, default=None, help="Share of deleted keys written again later.")
@click.option("--absent-keys", type=int, default=None, help="Never-written keys that may be asked about.")
@click.option("--queries", type=int, default=None, help="Queries per episode.")
@click.option("--query-position", type=click.Choice(["end", "interleaved"]), default="end", show_default=True)
@click.option("--max-version", type=int, default=32, show_default=True, help="Largest k of a version ask.")
@click.option("--depth", default="0,1", show_default=True, help="Where events sit: fractions lo,hi of the context.")
@click.option("--spacing", type=click.Choice(["uniform", "powerlaw"]), default="uniform", show_default=True)
@click.option("--alpha", type=float, default=1.2, show_default=True, help="Power-law exponent of event gaps.")
@click.option("--chunk-size", type=int, default=None,
              help="Chunk rendering: tokens per chunk [default: 128]; text rendering: cut the context into "
                   "passages of at most this many tokens, on sentence boundaries [default: no passages].")
@click.option("--layout-chunk", type=int, default=64, show_default=True,
              help="Token/bridge renderings: no event straddles a multiple of this.")
@click.option("--segments", type=int, default=4, show_default=True, help="Bridge rendering: sequences.")
@click.option("--vocab-size", type=int, default=4096, show_default=True)
@click.option("--key-tokens", type=int, default=256, show_default=True, help="Distinct key tokens.")
@click.option("--key-length", type=int, default=2, show_default=True, help="Tokens per key.")
@click.option("--values", type=int, default=1024, show_default=True, help="Distinct value ids.")
@click.option("--tokenizer", default="cl100k", show_default=True,
              help="Text rendering: cl100k, o200k, or a local tokenizer.json / folder.")
@click.option("--domain", default=None, help="Text rendering: one domain [default: rotate].")
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
def generate(families, renderings, lengths, episodes, seed, out, split, shard_size, shard_format, workers, engine,
             address,
             keys, overwrites, distractors, distractor_kinds, silent_share, deletes, rewrite_share, absent_keys,
             queries, query_position, max_version, depth, spacing, alpha, chunk_size, layout_chunk, segments,
             vocab_size, key_tokens, key_length, values, tokenizer, domain, quiet) -> None:
    """Generate episodes and write them as a Hugging Face dataset folder."""
    from memgen.pipeline.engines import prestart

    prestart(engine, workers)  # the workers' imports overlap with this process's own
    from memgen.format.vocab import Vocab
    from memgen.generators.knobs import Knobs
    from memgen.pipeline.job import generate as run
    from memgen.pipeline.request import Request, family_names
    from memgen.render.registry import RenderOptions

    fams = family_names(_split_csv(families))
    vocab = Vocab(vocab_size=vocab_size, key_tokens=key_tokens, key_length=key_length, values=values,
                  max_version=max(32, max_version))
    renderings = tuple(dict.fromkeys(_split_csv(renderings)))
    req = Request(
        families=fams, renderings=renderings,
        lengths=tuple(dict.fromkeys(lengths)), episodes=episodes, seed=seed, split=split, shard_size=shard_size,
        format=shard_format,
        knobs=Knobs(keys=keys, overwrites=overwrites, distractors=distractors,
                    distractor_kinds=_split_csv((distractor_kinds,)), silent_share=silent_share,
                    deletes=deletes, rewrite_share=rewrite_share, absent_keys=absent_keys, queries=queries,
                    query_position=query_position, max_version=max_version),
        render=RenderOptions(vocab=vocab, chunk_size=RenderOptions.chunk_size if chunk_size is None else chunk_size,
                             layout_chunk=layout_chunk, segments=segments, depth=_depth(depth), spacing=spacing,
                             alpha=alpha, tokenizer=tokenizer, domain=domain,
                             passage_size=chunk_size if "text" in renderings else None),
    )
    from memgen.pipeline.request import tasks, validate

    for warning in validate(req):  # one line each, never wrapped
        sys.stderr.write(f"memgen: warning: {warning}\n")
    todo = tasks(req)
    if workers is not None and engine == "local" and not quiet:
        from memgen.pipeline.engines import check_engine, size_workers

        check_engine(engine, workers, address)  # a bad --workers is its one line, not after this one
        sys.stderr.write(f"memgen: {size_workers(workers, len(todo)).describe(workers)}\n")
    if quiet:
        manifest = run(req, out, workers=workers, engine=engine, address=address)
    else:
        from memgen.cli.progress import progress_bar

        with progress_bar("shards") as bar:
            tid = bar.add_task("generating", total=len(todo))
            manifest = run(req, out, workers=workers, engine=engine, address=address,
                           on_shard=lambda t, e: bar.update(tid, advance=1, description=t.config))
    if not quiet:
        _print_summary(out, manifest)


def _print_summary(root: Path, manifest: dict) -> None:
    table = Table(title=f"{root}  (memgen {manifest['memgen_version']}, generator v{manifest['generator_version']})")
    for col in ("config", "episodes", "shards", "MB"):
        table.add_column(col, justify="right" if col != "config" else "left")
    for name, c in manifest["configs"].items():
        table.add_row(name, f"{c['rows']:,}", str(len(c["shards"])),
                      f"{sum(s['bytes'] for s in c['shards']) / 1e6:.1f}")
    out.print(table)


@click.command()
@click.argument("dataset", type=click.Path(path_type=Path))
def verify(dataset: Path) -> None:
    """Check every shard's checksum, size, rows and schema, and the card's configs."""
    from memgen.format.names import escaped
    from memgen.io.dataset import verify as run

    problems = run(dataset)
    if problems:
        for p in problems[:-1]:
            sys.stderr.write(f"memgen: bad: {escaped(p)}\n")
        _fail(f"{dataset}: {problems[-1]}" + (f" ({len(problems)} problems)" if len(problems) > 1 else ""), 1)
    from memgen.io.dataset import Dataset

    ds = Dataset.open(dataset)
    n = sum(len(c["shards"]) for c in ds.manifest["configs"].values())
    rows = sum(c["rows"] for c in ds.manifest["configs"].values())
    out.print(f"ok: {dataset}: {len(ds.configs)} configs, {n} shards, {rows:,} episodes, all checksums match")


@click.command()
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--config", "config", default=None, help="Config name [default: the first].")
@click.option("--index", type=int, default=0, show_default=True, help="Row within the config.")
@click.option("--tokens", "show_tokens", is_flag=True, help="Also print the token ids of every event.")
def show(dataset: Path, config: str | None, index: int, show_tokens: bool) -> None:
    """Pretty-print one episode: its events and queries with answers, probes and traps."""
    from memgen.io.dataset import Dataset
    from memgen.render.show import render_episode

    ds = Dataset.open(dataset)
    if not ds.configs:
        raise DataError(f"{dataset}: the manifest lists no configs")
    name = config or ds.configs[0]
    cfg = ds.config(name)
    if not 0 <= index < cfg["rows"]:
        raise click.BadParameter(f"{name} has {cfg['rows']} episodes (0..{cfg['rows'] - 1})", param_hint="--index")
    row = _row(ds, name, index)
    render_episode(Console(highlight=False), row, ds.vocab, show_tokens=show_tokens)


def _row(ds, name: str, index: int) -> dict:
    seen = 0
    for shard in ds.config(name)["shards"]:
        if index < seen + shard["rows"]:
            from memgen.format.errors import DataError
            from memgen.io.atomic import sha256_file
            from memgen.io.shards import read_shard

            path = ds.root / shard["path"]
            # a damaged shard can still decode to plausible rows: show only what was written
            if not path.is_file() or path.stat().st_size != shard["bytes"] or sha256_file(path) != shard["sha256"]:
                raise DataError(f"{shard['path']}: missing or changed since it was written (sha256 differs); "
                                f"run memgen verify {ds.root}")
            return read_shard(path).slice(index - seen, 1).to_pylist()[0]
        seen += shard["rows"]
    raise AssertionError("index checked above")
