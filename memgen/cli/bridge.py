"""``memgen bridge``: the frozen-encoder bridge (docs/bridge.md): encode, train, eval.  A thin
click shell over :mod:`memgen.bridge` (torch is imported only when a command runs)."""

from __future__ import annotations

from pathlib import Path

import click

from memgen.cli.common import _split_csv, err, out

_ENCODER = click.option("--encoder", "encoder_path", type=click.Path(path_type=Path),
                        help="A BERT folder (config.json, tokenizer.json, model.safetensors) [default: the "
                             "installed all-MiniLM-L6-v2, sha256-checked].")
_LAYERS = click.option("--layers", type=int, help="Keep the encoder's first N layers [default: all].")
_PRECISION = click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True)
_CACHE = click.option("--cache", type=click.Path(path_type=Path),
                      help="Where frozen states are cached [default: $MEMGEN_CACHE/bridge or ~/.cache/memgen/bridge].")
_THREADS = click.option("--threads", type=int, default=1, show_default=True,
                        help="torch CPU threads (0: torch's default).")


def _encoder(path: Path | None, layers: int | None, precision: str, threads: int):
    import torch

    from memgen.bridge.encoder import DTYPES, load_encoder

    if threads:
        torch.set_num_threads(threads)
    return load_encoder(str(path) if path else None, layers=layers, dtype=DTYPES[precision])


@click.group("bridge")
def bridge_group() -> None:
    """The frozen-encoder bridge: pointer heads over a frozen sentence encoder's states of a
    text episode's events and questions (docs/bridge.md).

    \b
    Modes: oracle (the IR's key ids given) and text (keys matched from the text alone).
    Heads:  replay (structured soft replay) and transformer (generic pointer transformer).
    \b
      memgen generate --family all --rendering text --length 2048 --episodes 45 --queries 4 --seed 1 --out ds
      memgen bridge eval --dataset ds --mode oracle --mode text --out bridge-report
      memgen score --dataset ds --predictions bridge-report/text-replay.jsonl
    """


@bridge_group.command("encode")
@click.option("--dataset", required=True, type=click.Path(path_type=Path), help="A text dataset folder.")
@click.option("--config", "configs", multiple=True, help="Text configs to encode [default: all].")
@_ENCODER
@_LAYERS
@_PRECISION
@_CACHE
@_THREADS
@click.option("--quiet", is_flag=True, help="No progress bar.")
def encode_command(dataset: Path, configs: tuple[str, ...], encoder_path: Path | None, layers: int | None,
                   precision: str, cache: Path | None, threads: int, quiet: bool) -> None:
    """Encode every event sentence and question of a text dataset into the cache."""
    import time

    from memgen.bridge.cache import cache_dir
    from memgen.bridge.episodes import dataset_episodes
    from memgen.bridge.train import encode_episodes

    enc = _encoder(encoder_path, layers, precision, threads)
    for name, eps in dataset_episodes(dataset, _split_csv(configs) or None).items():
        t0 = time.perf_counter()
        got = encode_episodes(enc, eps, cache, progress=not quiet)
        n = got.states.pooled.shape[0]
        out.print(f"{name}: {n} sentences, {time.perf_counter() - t0:.1f} s")
    out.print(f"cache: {cache_dir(cache)} (encoder {enc.fingerprint[:12]}...{enc.fingerprint[64:]})")


@bridge_group.command("train")
@click.option("--mode", type=click.Choice(["oracle", "text"]), default="oracle", show_default=True)
@click.option("--head", type=click.Choice(["replay", "transformer"]), default="replay", show_default=True)
@click.option("--episodes", type=int, default=6, show_default=True,
              help="Training episodes per (family, domain), generated in memory from the training seed.")
@click.option("--family", "families", multiple=True,
              help="Families to train on (repeat or comma-separate) [default: every family].")
@click.option("--length", type=int, default=2048, show_default=True, help="Tokens per training episode.")
@click.option("--steps", type=int, default=400, show_default=True, help="Optimiser steps.")
@click.option("--batch", type=int, default=8, show_default=True, help="Episodes per step.")
@click.option("--lr", type=float, default=3e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the weights and the episode order.")
@click.option("--no-aux", is_flag=True, help="Train on the pointer loss alone (no auxiliary labels).")
@click.option("--no-exact", is_flag=True, help="Text mode: no exact word-piece identity channel.")
@click.option("--piece-dropout", type=float, default=0.0, show_default=True,
              help="Text mode: share of training episodes in which the matcher's word-piece features are "
                   "replaced by their episode mean (it then decides from whole words alone).")
@click.option("--surrogates", type=int, default=2, show_default=True,
              help="Text mode: copies of every training question with the asked name replaced by a random "
                   "surrogate name (and some words by random ones), for the name tagger; 0 for none.")
@click.option("--readers", "readers_path", type=click.Path(path_type=Path),
              help="Text mode: a trained head file of the same head (an oracle one) whose readers are "
                   "copied and kept fixed, so that only the matcher learns and the two modes differ "
                   "in selection alone.")
@_ENCODER
@_LAYERS
@_PRECISION
@_CACHE
@_THREADS
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path),
              help="Head file to write (HEAD.pt, with HEAD.json beside it).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_command(mode: str, head: str, episodes: int, families: tuple[str, ...], length: int, steps: int,
                  batch: int, lr: float, seed: int, no_aux: bool, no_exact: bool, piece_dropout: float,
                  surrogates: int, readers_path: Path | None,
                  encoder_path: Path | None,
                  layers: int | None, precision: str, cache: Path | None, threads: int, out_path: Path,
                  quiet: bool) -> None:
    """Train a pointer head on episodes generated on the fly; write HEAD.pt and HEAD.json.

    \b
    Every family, every domain but the held-out one (lab_notebook), and version episodes
    asking every ordinal; seeds disjoint from any evaluation dataset.
    """
    from memgen.bridge.train import HELD_OUT_DOMAIN, encode_episodes, save_head, train_head, training_set
    from memgen.cli.progress import progress_bar
    from memgen.format.errors import UsageError
    from memgen.io.atomic import output_file

    if out_path.suffix != ".pt":
        raise UsageError(f"--out {out_path}: a head file ends in .pt")
    if min(episodes, steps, batch) < 1:
        raise UsageError("--episodes, --steps and --batch must be at least 1")
    if not 0 <= surrogates <= 16:
        raise UsageError("--surrogates must be 0 to 16")
    if not 0 <= piece_dropout < 1:
        raise UsageError("--piece-dropout must be at least 0 and below 1")
    surrogates = surrogates if mode == "text" else 0
    readers = readers_meta = None
    if readers_path is not None:
        from memgen.bridge.train import check_readers, load_head

        check_readers(mode, head)  # before reading the file
        readers, side = load_head(readers_path)
        check_readers(mode, head, readers)
        readers_meta = {"file": Path(readers_path).name, "sha256": side["sha256"], "command": side.get("command")}
    output_file(out_path)
    enc = _encoder(encoder_path, layers, precision, threads)
    if readers is not None and side.get("encoder") != enc.fingerprint:
        raise UsageError(f"--readers {readers_path}: made with another encoder than this one "
                         f"({str(side.get('encoder'))[:12]}... vs {enc.fingerprint[:12]}...)")
    from memgen.bridge.train import FAMILIES
    from memgen.pipeline.request import family_names

    asked = set(family_names(_split_csv(families) or ("all",)))
    if asked - set(FAMILIES):
        raise UsageError(f"--family {', '.join(sorted(asked - set(FAMILIES)))}: unknown; "
                         f"choose from {', '.join(FAMILIES)}")
    fams = tuple(f for f in FAMILIES if f in asked)  # one order, so the same sentences hit the same cache entry
    eps = training_set(episodes, length, families=fams)
    encoded = encode_episodes(enc, eps, cache, progress=not quiet, surrogates=surrogates,
                              seed=seed)
    with progress_bar("steps") as bar:
        task = bar.add_task(f"training {mode}-{head}", total=steps, visible=not quiet)
        model, info = train_head(encoded, mode, head, steps=steps, batch=batch, lr=lr, aux=not no_aux,
                                 exact=not no_exact, seed=seed, piece_dropout=piece_dropout if mode == "text" else 0.0,
                                 readers=readers,
                                 on_step=lambda s, v: bar.update(task, completed=max(s + 1, 0),
                                                                 description=f"training {mode}-{head} loss {v:.3f}"))
    command = (f"memgen bridge train --mode {mode} --head {head} --episodes {episodes} --family {','.join(fams)} "
               f"--length {length} "
               f"--steps {steps} --batch {batch} --lr {lr:g} --seed {seed}" + (" --no-aux" if no_aux else "")
               + (" --no-exact" if no_exact else "") + (f" --surrogates {surrogates}" if mode == "text" else "")
               + (f" --piece-dropout {piece_dropout:g}" if mode == "text" and piece_dropout else "")
               + (f" --readers {Path(readers_path).name}" if readers_path is not None else "")
               + (f" --layers {layers}" if layers else "")
               + f" --precision {precision} --out {out_path.name}")
    meta = {"command": command, "mode": mode, "head": head, "encoder": enc.fingerprint,
            "training": {"episodes": len(eps), "per_family_domain": episodes, "families": list(fams), "length": length,
                         "held_out_domain": HELD_OUT_DOMAIN, "seed": "memgen.bridge.episodes.TRAIN_SEED",
                         "surrogate_copies": surrogates},
            "readers": readers_meta,
            **info}
    save_head(model, out_path, meta)
    out.print(f"wrote {out_path} ({info['params']:,} parameters, {len(eps)} episodes, {info['seconds']} s)")


@bridge_group.command("eval")
@click.option("--dataset", required=True, type=click.Path(path_type=Path), help="A text dataset folder.")
@click.option("--mode", "modes", multiple=True, type=click.Choice(["oracle", "text"]),
              help="Modes to run (repeatable) [default: oracle and text].")
@click.option("--head", "heads", multiple=True, type=click.Choice(["replay", "transformer"]),
              help="Shipped heads to run (repeatable) [default: replay].")
@click.option("--head-file", "head_files", multiple=True, type=click.Path(path_type=Path),
              help="A trained head file (HEAD.pt) instead of the shipped ones (repeatable).")
@click.option("--config", "configs", multiple=True, help="Text configs to run [default: all].")
@_ENCODER
@_LAYERS
@_PRECISION
@_CACHE
@_THREADS
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path),
              help="Folder for <mode>-<head>.jsonl predictions, breakdown.json and memgen's report.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def eval_command(dataset: Path, modes: tuple[str, ...], heads: tuple[str, ...], head_files: tuple[Path, ...],
                 configs: tuple[str, ...], encoder_path: Path | None, layers: int | None, precision: str,
                 cache: Path | None, threads: int, out_path: Path, quiet: bool) -> None:
    """Run bridge heads on a text dataset: predictions for memgen score, and the errors by what
    was pointed at (lookalike, similar key, other key, wrong version, ...)."""
    from memgen.bridge.episodes import dataset_episodes
    from memgen.bridge.evaluate import ERRORS, evaluate_head, write_result
    from memgen.bridge.train import encode_episodes, load_head, shipped_head
    from memgen.format.errors import UsageError

    if head_files and (modes or heads):
        raise UsageError("give --head-file, or --mode/--head for the shipped heads, not both")
    episodes = dataset_episodes(dataset, _split_csv(configs) or None)
    files = list(head_files) or [shipped_head(m, h) for m in (modes or ("oracle", "text"))
                                 for h in (heads or ("replay",))]
    loaded = [load_head(f) for f in files]
    labels = [f"{model.mode}-{model.head_name}" for model, _ in loaded]
    if len(set(labels)) != len(labels):
        labels = [f"{lab}-{i}" for i, lab in enumerate(labels)]
    enc = _encoder(encoder_path, layers, precision, threads)
    for (_, meta), f in zip(loaded, files, strict=True):
        if meta.get("encoder") != enc.fingerprint:
            raise UsageError(f"head {f}: trained on encoder {str(meta.get('encoder'))[:12]}...; this encoder is "
                             f"{enc.fingerprint[:12]}...{enc.fingerprint[64:]} "
                             "(give the same --encoder/--layers/--precision)")
    encoded = {name: encode_episodes(enc, eps, cache, progress=not quiet) for name, eps in episodes.items()}
    results = [evaluate_head(model, encoded, label) for (model, _), label in zip(loaded, labels, strict=True)]
    write_result(results, dataset, out_path)
    rows = []
    for name in encoded:
        cells = [f"{r.per_config[name]['correct']}/{r.per_config[name]['queries']}" for r in results]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    out.print("| config | " + " | ".join(labels) + " |\n|---|" + "---|" * len(labels) + "\n" + "\n".join(rows))
    for r in results:
        s = r.summary()
        errs = ", ".join(f"{k} {s['errors'][k]}" for k in ERRORS if s["errors"][k])
        out.print(f"{r.label}: {s['correct']}/{s['queries']} pointed right" + (f"; wrong: {errs}" if errs else ""))
    written = ", ".join(f"{lab}.jsonl" for lab in labels)
    err.print(f"wrote {out_path}/ ({written}, breakdown.json, report.json, report.md)")

