"""``memgen train``: a thin click shell over :func:`memgen.models.train.train` and
:mod:`memgen.models.checkpoint` (torch is imported only when the command runs)."""

from __future__ import annotations

from pathlib import Path

import click

from memgen.cli.common import _split_csv, err, out

_FAMILY_HELP = "Families to train on (repeat or comma-separate); 'all' = every family [default: all]."


def _command(model: str, families: tuple[str, ...], length: int, minutes: float, steps: int, batch: int,
             lr: float, seed: int, supervision: str, out_path: Path) -> str:
    parts = ["memgen train", f"--model {model}", "--family " + ",".join(families), f"--length {length}",
             f"--minutes {minutes:g}"]
    if steps:
        parts.append(f"--steps {steps}")
    parts += [f"--batch {batch}", f"--lr {lr:g}", f"--seed {seed}", f"--write-supervision {supervision}",
              f"--out {out_path}"]
    return " ".join(parts)


@click.command("train")
@click.option("--model", default="memslot_ref", show_default=True,
              help="memslot_ref, delta_net, transformer, topk_attention, or package.module:Class "
                   "(a memory: docs/models.md).")
@click.option("--family", "families", multiple=True, help=_FAMILY_HELP)
@click.option("--length", type=int, default=192, show_default=True, help="Tokens per training episode.")
@click.option("--minutes", type=float, default=20.0, show_default=True, help="Wall-clock training budget.")
@click.option("--steps", type=int, default=0, show_default=True, help="Stop after this many steps (0: no limit).")
@click.option("--batch", type=int, default=32, show_default=True, help="Episodes per step.")
@click.option("--lr", type=float, default=3e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the weights and of the training and held-out episodes (their own seed domains).")
@click.option("--write-supervision", "supervision", type=click.Choice(["lite", "none"]), default="lite",
              show_default=True, help="lite: an auxiliary loss on the write/discard gates from the IR's events.")
@click.option("--eval-every", type=float, default=30.0, show_default=True, help="Seconds between held-out evaluations.")
@click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads (0: torch's default).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: a CUDA GPU when torch sees one, else the CPU.")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path),
              help="Checkpoint file to write (CKPT.pt; CKPT.json and CKPT.png beside it).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_command(model: str, families: tuple[str, ...], length: int, minutes: float, steps: int, batch: int,
                  lr: float, seed: int, supervision: str, eval_every: float, threads: int, device: str,
                  out_path: Path, quiet: bool) -> None:
    """Train a learned model on episodes generated on the fly; write its checkpoint.

    \b
    Example:
      memgen train --model memslot_ref --family all --length 192 --minutes 20 --out ckpt.pt
      memgen eval --dataset ds --model memslot_ref:checkpoint=ckpt.pt
    """
    from memgen.evaluation import zoo  # noqa: F401  (the built-in memories, by name)
    from memgen.format.errors import UsageError
    from memgen.io.atomic import output_file
    from memgen.models.train import ALL_FAMILIES, TrainConfig

    fams = _split_csv(families) or ("all",)
    fams = ALL_FAMILIES if "all" in fams else fams
    if batch < 1 or length < 1:
        raise UsageError("--batch and --length must be at least 1")
    output_file(out_path)  # refuse a folder or a device before any work
    cfg = TrainConfig(model=model, families=tuple(fams), length=length, batch=batch, lr=lr, minutes=minutes,
                      steps=steps, seed=seed, write_supervision=supervision, eval_every=eval_every,
                      threads=threads, device=device)
    shown = ("all",) if tuple(fams) == ALL_FAMILIES else tuple(fams)
    command = _command(model, shown, length, minutes, steps, batch, lr, seed, supervision, out_path)
    result = _train(cfg, quiet)
    meta = _meta(result, command)
    from memgen.models import checkpoint

    side = checkpoint.save(out_path, model, result.net.state_dict(), meta)
    checkpoint.plot_curve(result.curve, out_path.with_suffix(".png"),
                          f"{model}, {length} tokens, write supervision {supervision}: held-out accuracy")
    acc = result.curve[-1]["accuracy"]
    out.print(f"{model}: {result.parameters:,} parameters, {result.steps:,} steps in {result.seconds:.0f} s "
              f"({result.tokens_per_second:,.0f} tokens/s)")
    out.print("held-out " + ", ".join(f"{p} {v:.3f}" for p, v in acc.items() if isinstance(v, float))
              + f" ({acc['correct']}/{acc['n']})")
    out.print(f"checkpoint {out_path} (sha256 {side['sha256'][:16]}...), {out_path.with_suffix('.json')}, "
              f"{out_path.with_suffix('.png')}")


def _train(cfg, quiet: bool):
    from memgen.models.train import train

    if quiet or not err.is_terminal:
        return train(cfg)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                   TimeElapsedColumn(), TextColumn("step {task.fields[step]} loss {task.fields[loss]}"),
                   TextColumn("{task.fields[acc]}"), console=err, transient=False)
    with bar:
        task = bar.add_task(f"train {cfg.model}", total=1.0, step=0, loss="-", acc="")

        def on_progress(e: dict) -> None:
            fields = {"step": e["step"], "loss": f"{e['loss']:.3f}" if e.get("loss") is not None else "-"}
            if "accuracy" in e:
                a = e["accuracy"]
                fields["acc"] = "held-out " + " ".join(f"{p[:6]} {v:.2f}" for p, v in a.items()
                                                       if isinstance(v, float))
            bar.update(task, completed=e["fraction"], **fields)

        return train(cfg, on_progress)


def _meta(result, command: str) -> dict:
    import os
    import platform

    import torch

    from memgen import __version__

    cfg = result.config
    return {
        "frontend": result.net.cfg.to_dict(), "knobs": cfg.knobs, "train": cfg.to_dict(), "command": command,
        "seeds": {"weights": cfg.seed, "train": f"derive_seed('train', {cfg.seed}, family), episodes 0, 1, ...",
                  "heldout": f"derive_seed('heldout', {cfg.seed}, family)"},
        "parameters": result.parameters, "steps": result.steps, "seconds": round(result.seconds, 1),
        "tokens_per_second": round(result.tokens_per_second), "curve": result.curve,
        "final": result.curve[-1]["accuracy"], "memgen_version": __version__, "torch_version": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {cfg.threads} torch thread(s)",
    }
