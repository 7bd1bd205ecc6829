"""``memgen publish``, ``memgen export`` and ``memgen run``: thin click shells over
:mod:`memgen.io.hub`, :mod:`memgen.harness` and :mod:`memgen.harness.runners` (docs/ecosystem.md).

Registered on the ``memgen`` group with ``main.add_command(...)``; expected failures are raised
as :class:`~memgen.format.errors.MemgenError`, which the group prints as one line with an exit code.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console

from memgen.format.errors import UsageError

err = Console(stderr=True, highlight=False)


def _note(message: str) -> None:
    sys.stderr.write(f"memgen: {message}\n")  # one line, never wrapped


@click.command("publish")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--repo-id", required=True, help="Hub dataset repo, ORG/NAME (created if it does not exist).")
@click.option("--private", is_flag=True, help="Create the repo private.")
@click.option("--dry-run", is_flag=True,
              help="Validate and print the files (size, sha256) and the card's configs; no network access.")
@click.option("--message", default=None, help="Commit message [default: a summary of the upload].")
def publish_command(dataset: Path, repo_id: str, private: bool, dry_run: bool, message: str | None) -> None:
    """Validate a dataset folder and upload it to the Hugging Face Hub.

    \b
    Checks: memgen verify (every checksum), the card's YAML as the Hub reads it, and that
    every config loads with datasets.load_dataset(DIR, config).  The token is the one
    huggingface_hub finds (HF_TOKEN, or `hf auth login`).
    \b
    Examples:
      memgen publish ds --repo-id my-lab/memgen-episodes --dry-run
      memgen publish ds --repo-id my-lab/memgen-episodes --private
    """
    if dry_run:  # read by huggingface_hub and datasets at import: nothing below may reach the network
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
    from memgen.io.hub import plan_publish, upload

    plan = plan_publish(dataset, repo_id, private=private)
    if dry_run:
        sys.stdout.write("\n".join(plan.describe()) + "\n")
        return
    url = upload(plan, commit_message=message)
    sys.stdout.write(f"published {dataset} ({len(plan.files)} files, {plan.total_bytes:,} bytes) to {plan.url}"
                     f" ({url})\n")


@click.command("export")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["lm-eval", "jsonl"]), required=True,
              help="lm-eval: a task folder for lm-evaluation-harness; jsonl: prompt/answer rows.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="lm-eval: the task folder; jsonl: the file.")
@click.option("--config", "configs", multiple=True, help="Export only this config (repeatable) [default: every "
                                                         "text config].")
@click.option("--name", default="memgen", show_default=True,
              help="lm-eval: the task's name (lm_eval --tasks NAME).")
@click.option("--max-gen-toks", type=int, default=None,
              help="lm-eval: generation budget [default: 16 per question + 32].")
@click.option("--until", multiple=True, default=(), show_default="none: the model's end-of-sequence token",
              help="lm-eval: stop string (repeatable; \\n for a line break).")
@click.option("--hub-name", default=None,
              help="lm-eval: the dataset as published on the Hub (ORG/NAME): the task loads it from there "
                   "[default: the docs go into the task folder].")
@click.option("--unit", type=click.Choice(["query", "episode"]), default="query", show_default=True,
              help="jsonl: one row per question (its own prompt) or per episode (all questions).")
@click.option("--select", "select", default=None, metavar="NAME:k=K",
              help="Keep only the passages this selector picks for the questions (bm25:k=8, dense:k=4, "
                   "oracle, ...; text generated with --chunk-size; docs/selection.md).")
def export_command(dataset: Path, fmt: str, out: Path, configs: tuple[str, ...], name: str,
                   max_gen_toks: int | None, until: tuple[str, ...], hub_name: str | None, unit: str,
                   select: str | None) -> None:
    """Export the text rendering for lm-evaluation-harness or any other harness.

    \b
    Examples:
      memgen export ds --format lm-eval --out tasks/
      lm_eval --model hf --model_args pretrained=MODEL --include_path tasks/ --tasks memgen \\
          --log_samples --output_path results/
      memgen score --dataset ds --predictions results/MODEL/samples_memgen_DATE.jsonl
    \b
      memgen export ds --format lm-eval --hub-name my-lab/memgen-episodes --out tasks/
    \b
      memgen export ds --format jsonl --out ds.jsonl     # prompt, answer, id, qid, probe per row
    """
    from memgen.harness.jsonl import export_jsonl
    from memgen.harness.lm_eval import export_lm_eval

    until = tuple(u.replace("\\n", "\n").replace("\\t", "\t") for u in until)
    episodes = {} if select is None else {"episodes": _selected_episodes(select)}
    if fmt == "lm-eval":
        res = export_lm_eval(dataset, out, configs=configs or None, name=name, until=until,
                             max_gen_toks=max_gen_toks, hub_name=hub_name, **episodes)
    else:
        if hub_name:
            raise UsageError("--hub-name goes with --format lm-eval")
        res = export_jsonl(dataset, out, configs=configs or None, unit=unit, **episodes)
    if res.skipped:
        _note(f"left out (not text renderings): {', '.join(res.skipped)}")
    for config, n in res.rows.items():
        task = f"  task {res.tasks[config]}" if config in res.tasks else ""
        sys.stdout.write(f"{config}: {n:,} rows{task}\n")
    if fmt == "lm-eval":
        sys.stdout.write(f"wrote {res.out}: run with  lm_eval ... --include_path {res.out} --tasks {res.group}\n")
    else:
        sys.stdout.write(f"wrote {res.out}\n")


@click.command("run")
@click.option("--dataset", type=click.Path(path_type=Path), required=True, help="Dataset folder (text rendering).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Predictions JSONL (answer blocks); answers already in it are kept and skipped.")
@click.option("--config", "configs", multiple=True, help="Only this config (repeatable) [default: every text "
                                                         "config].")
@click.option("--hf", "hf_path", type=click.Path(path_type=Path), default=None,
              help="A local transformers model folder.")
@click.option("--openai-base-url", default=None, help="An OpenAI-compatible server, e.g. http://localhost:8000/v1.")
@click.option("--model", default=None, help="With --openai-base-url: the served model's name.")
@click.option("--max-new-tokens", type=int, default=None, help="Reply budget [default: 16 per question + 32].")
@click.option("--batch-size", type=int, default=8, show_default=True, help="--hf: prompts per batch.")
@click.option("--device", default="auto", show_default=True, help="--hf: cpu, cuda, cuda:1, ... [auto: cuda if any].")
@click.option("--dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"]), default="auto",
              show_default=True, help="--hf: weights' dtype [auto: bfloat16 on cuda, float32 on cpu].")
@click.option("--chat/--no-chat", default=None,
              help="--hf: wrap prompts in the tokenizer's chat template [default: if it has one].")
@click.option("--api", type=click.Choice(["chat", "completions"]), default="chat", show_default=True,
              help="OpenAI: /chat/completions or /completions.")
@click.option("--api-key", envvar="OPENAI_API_KEY", default=None, help="OpenAI: bearer token [env OPENAI_API_KEY].")
@click.option("--concurrency", type=int, default=4, show_default=True, help="OpenAI: requests in flight.")
@click.option("--retries", type=int, default=5, show_default=True, help="OpenAI: retries per request.")
@click.option("--backoff", type=float, default=1.0, show_default=True,
              help="OpenAI: first retry delay in seconds, doubled each retry.")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="OpenAI: seconds per request.")
@click.option("--stop", multiple=True, help="Cut each reply at this string (repeatable).")
@click.option("--max-model-len", type=int, default=None,
              help="Context in tokens (prompt + reply budget); longer episodes are recorded as 'overflow' "
                   "[--hf default: the model's max_position_embeddings].")
@click.option("--tokenizer", default=None,
              help="OpenAI with --max-model-len: count prompts with this tokenizer (cl100k, o200k, a "
                   "tokenizer.json or folder) [default: the dataset's].")
@click.option("--limit", type=int, default=None, help="Only the first N episodes (in dataset order).")
@click.option("--select", "select", default=None, metavar="NAME:k=K",
              help="Send only the passages this selector picks for the questions, in reading order "
                   "(bm25:k=8, dense:k=4, oracle, ...; text generated with --chunk-size; docs/selection.md).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run_command(dataset: Path, out: Path, configs: tuple[str, ...], hf_path: Path | None,
                openai_base_url: str | None, model: str | None, max_new_tokens: int | None, batch_size: int,
                device: str, dtype: str, chat: bool | None, api: str, api_key: str | None, concurrency: int,
                retries: int, backoff: float, timeout: float, stop: tuple[str, ...], max_model_len: int | None,
                tokenizer: str | None, limit: int | None, select: str | None,
                quiet: bool) -> None:
    """Run an LLM on the text rendering and write its predictions for memgen score.

    \b
    One prompt per episode, holding all of its questions; the reply is stored whole as an
    answer block ({"id", "config", "model", "answer_block"} rows), which memgen score splits
    by question number.  An episode over --max-model-len is recorded as 'overflow', one the
    server refuses (HTTP 400, 413, 422) as 'refused', and the run goes on.  Resumable: re-run
    the same command after an interruption.
    \b
    Examples:
      memgen run --dataset ds --hf ./my-model --batch-size 4 --out preds.jsonl
      memgen run --dataset ds --openai-base-url http://localhost:8000/v1 --model m --out preds.jsonl
      memgen score --dataset ds --predictions preds.jsonl
    """
    if (hf_path is None) == (openai_base_url is None):
        raise UsageError("give one model: --hf PATH or --openai-base-url URL --model NAME")
    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1")
    from memgen.harness.runners import PredictionLog, check_max_model_len, load_prompts

    check_max_model_len(max_model_len)

    if select is None:
        prompts, skipped = load_prompts(dataset, configs or None)
    else:
        from memgen.selection.contexts import selected_prompts
        from memgen.selection.registry import parse_select, selector_label

        select = selector_label(parse_select(select))
        prompts, skipped = selected_prompts(dataset, configs or None, select)
    if skipped:
        _note(f"left out (not text renderings): {', '.join(skipped)}")
    if limit is not None:
        prompts = prompts[:limit]
    if hf_path is not None:
        if model is not None:
            raise UsageError("--model goes with --openai-base-url; --hf names the model by its folder")
        from memgen.harness.runners.hf import HFRunner

        if tokenizer is not None:
            raise UsageError("--tokenizer goes with --openai-base-url; --hf counts with the model's own")
        runner = HFRunner(hf_path, device=device, dtype=dtype, batch_size=batch_size,
                          max_new_tokens=max_new_tokens, chat=chat, stop=stop, max_model_len=max_model_len)
    else:
        from memgen.harness.runners.openai import OpenAIRunner

        counter = None
        if max_model_len is not None:
            from memgen.harness.runners import dataset_tokenizer
            from memgen.render.text.tokenizers import load_tokenizer

            counter = load_tokenizer(tokenizer or dataset_tokenizer(dataset))
        runner = OpenAIRunner(openai_base_url, model or "", api_key=api_key, api=api, max_tokens=max_new_tokens,
                              concurrency=concurrency, retries=retries, backoff=backoff, timeout=timeout, stop=stop,
                              max_model_len=max_model_len, counter=counter)
    with PredictionLog(out, runner.name if select is None else f"{runner.name} select={select}") as log:
        if log.repaired:
            _note(f"{out}: cut off an incomplete last line ({log.repaired} bytes) left by an interrupted run")
        todo = log.todo(prompts)
        if len(todo) < len(prompts):
            _note(f"{out}: {len(prompts) - len(todo)} of {len(prompts)} episodes already answered; "
                  f"{len(todo)} to go")
        if todo:
            _run(runner, todo, log, quiet)
    sys.stdout.write(f"{runner.name}: {out} holds {log.summary()}; score with  memgen score --dataset {dataset} "
                     f"--predictions {out}\n")


def _selected_episodes(spec: str):
    """The ``episodes`` hook of the exports that cuts each prompt to the selected passages."""
    from memgen.selection.contexts import selected_episodes
    from memgen.selection.registry import parse_select

    sel = parse_select(spec)  # a bad spec fails here, before anything is written
    return lambda ds, config: selected_episodes(ds, config, sel)


def _run(runner, todo, log, quiet: bool) -> None:
    if quiet:
        runner.run(todo, log.write)
        return
    from memgen.cli.progress import progress_bar

    with progress_bar("episodes") as bar:
        tid = bar.add_task(runner.name, total=len(todo))
        runner.run(todo, log.write, advance=lambda n: bar.update(tid, advance=n))
