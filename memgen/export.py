"""Exports of the text rendering for other harnesses: lm-evaluation-harness task folders and
plain JSONL (docs/ecosystem.md).

* :func:`export_lm_eval` writes one ``generate_until`` task per text config (a YAML beside a
  JSONL file of its episodes), a group over them, and ``utils.py`` with the per-question
  metric.  One lm-eval doc is one episode: ``doc_to_text`` is the episode's prompt (all of its
  questions, answered as ``<number>: <answer>`` lines) and ``doc_to_target`` the gold answer
  block.  The doc keeps the row's ``id`` and no ``qid``, so ``memgen score`` reads lm-eval's
  ``--log_samples`` file as answer blocks and maps line *n* to question *n* of that episode.
* :func:`export_jsonl` writes one row per query (``prompt`` asking that one question,
  ``answer``, ``id``, ``qid``, ``probe``, ...) or one row per episode.

Both read a dataset folder that passes ``memgen verify`` and write atomically: a temporary
file or folder beside the destination, renamed into place, so a failure leaves nothing half
written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from . import __version__
from .errors import DataError, UsageError
from .io.dataset import TMP_MARK, Dataset, open_verified
from .ir import ABSENT_TEXT

#: the renderings whose rows carry a natural-language ``prompt``
TEXT_RENDERINGS = ("text",)
#: bumped whenever the exported task (docs, prompt, target, metric) changes (lm-eval's habit)
TASK_VERSION = 1.0
#: written into every exported folder, so a re-export may replace it
MARKER = "memgen_export.json"
_TAIL = "\n</log>"


@dataclass(frozen=True)
class Episode:
    """One text episode, ready to be asked: ``prompt`` holds every question; ``answers`` the
    gold answer text of question 1, 2, ... (``"unknown"`` when the key has no value)."""

    id: str
    config: str
    family: str
    target_length: int
    prompt: str
    answers: tuple[str, ...]
    qids: tuple[int, ...]
    probes: tuple[str, ...]
    asks: tuple[str, ...]
    questions: tuple[str, ...]
    inline: tuple[bool, ...]

    @property
    def target(self) -> str:
        """The gold answer block, in the format the prompt asks for."""
        return answer_block(self.answers)


def answer_block(answers: Sequence[str]) -> str:
    """``"1: a\\n2: b"``: answers in the ``<number>: <answer>`` lines the prompts ask for."""
    return "\n".join(f"{n}: {a}" for n, a in enumerate(answers, start=1))


def open_text_dataset(root: str | Path, configs: Sequence[str] | None = None) -> tuple[Dataset, list[str], list[str]]:
    """(dataset, text configs to use, non-text configs left out) of the folder ``root``.

    Raises :class:`DataError` if the folder fails ``memgen verify``; :class:`UsageError` for a
    config it does not have, a named config that is not a text rendering, or a folder with no
    text config at all."""
    root = Path(root)
    ds = open_verified(root)
    names = list(configs) if configs else ds.configs
    for name in names:
        ds.config(name)  # UsageError naming the configs it has
    text = [n for n in names if ds.config(n)["rendering"] in TEXT_RENDERINGS]
    other = [n for n in names if n not in text]
    if configs and other:
        raise UsageError(f"--config {other[0]}: a {ds.config(other[0])['rendering']} rendering; only text "
                         "configs have prompts (memgen generate --rendering text)")
    if not text:
        raise UsageError(f"{root}: no text config (it has {', '.join(ds.configs)}); prompts come from the text "
                         "rendering: memgen generate --rendering text ...")
    return ds, text, other


def iter_episodes(ds: Dataset, config: str) -> Iterator[Episode]:
    """The episodes of ``config`` in dataset order, one shard in memory at a time."""
    cfg = ds.config(config)
    for table in ds.iter_tables(config):
        cols = table.select(["id", "family", "target_length", "prompt", "questions", "queries"]).to_pydict()
        for i in range(table.num_rows):
            qs = cols["queries"][i]
            yield Episode(
                id=cols["id"][i], config=config, family=cols["family"][i] or cfg["family"],
                target_length=int(cols["target_length"][i]), prompt=cols["prompt"][i],
                answers=tuple(q["answer_text"] for q in qs), qids=tuple(int(q["qid"]) for q in qs),
                probes=tuple(q["probe"] for q in qs), asks=tuple(q["ask"] for q in qs),
                questions=tuple(cols["questions"][i]), inline=tuple(q["start"] >= 0 for q in qs))


def single_question_prompt(ep: Episode, n: int) -> str:
    """The prompt of ``ep`` asking only question ``n`` (1-based): the instructions and the log
    as they are, then that question and the answer format.  An interleaved question stays where
    it was asked inside the log (its answer is the state at that point)."""
    cut = ep.prompt.rfind(_TAIL)
    if cut < 0:
        raise DataError(f"{ep.config}/{ep.id}: the prompt has no '</log>' line; not a memgen text prompt")
    if ep.inline[n - 1]:
        ask = f"Answer question {n}, asked inside the log above"
    else:
        ask = f"Question:\n{n}. {ep.questions[n - 1]}\n\nAnswer this question"
    return f"{ep.prompt[:cut]}{_TAIL}\n\n{ask} on one line, as \"{n}: <answer>\".\n"


def is_correct(reply: str | None, gold: str) -> bool:
    """Whether one answer matches the gold text under the scorer's normalisation (an absent
    gold is matched by any "unknown"-like answer), as ``memgen score`` counts ``correct``."""
    from .scorers.normalise import is_absent, normalise

    if reply is None:
        return False
    got = normalise(reply)
    if not got:
        return False
    if got == normalise(gold):
        return True
    return gold == ABSENT_TEXT and is_absent(got)


def block_answers(reply: str | None, n_questions: int) -> list[str | None]:
    """The answers to questions ``1..n_questions`` in a reply of ``<number>: <answer>`` lines,
    parsed as ``memgen score`` parses answer blocks (None where a question got no line)."""
    from .scorers.predictions import Predictions

    preds = Predictions.from_records([{"id": "-", "answer_block": reply or ""}])
    out: list[str | None] = [None] * n_questions
    texts = preds.texts_at(np.arange(len(preds)))
    texts = texts.to_pylist() if hasattr(texts, "to_pylist") else list(texts)  # an Arrow array or a list
    for slot, text in zip(preds.slots.tolist(), texts, strict=True):
        if 0 <= slot < n_questions:
            out[slot] = text
    return out


def lm_eval_process_results(doc: dict, results: list) -> dict[str, float]:
    """lm-eval ``process_results`` of an exported task: ``query_accuracy``, the share of the
    episode's questions answered correctly (the per-probe, per-outcome report comes from
    ``memgen score`` on the samples file)."""
    reply = results[0] if results else ""
    while isinstance(reply, list):
        reply = reply[0] if reply else ""
    golds = list(doc["answers"])
    got = block_answers(reply if isinstance(reply, str) else "", len(golds))
    right = sum(is_correct(a, g) for a, g in zip(got, golds, strict=True))
    return {"query_accuracy": right / len(golds) if golds else 0.0}


# ---------------------------------------------------------------------------------------------
# lm-evaluation-harness


@dataclass
class Export:
    """What an export wrote: the destination, the tasks (config -> task name), the group,
    rows written per config, and the configs left out (not text renderings)."""

    out: Path
    tasks: dict[str, str] = field(default_factory=dict)
    group: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def task_name(prefix: str, config: str) -> str:
    """The lm-eval task name of a config: ``<prefix>_<config>`` with ``-`` as ``_``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{prefix}_{config}")


def _check_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise UsageError(f"--name {name!r}: use letters, digits and '_', starting with a letter")
    return name


UTILS_PY = '''"""Metric of the memgen tasks in this folder (written by memgen export; needs memgen installed)."""

from memgen.export import lm_eval_process_results


def process_results(doc, results):
    """query_accuracy: share of the episode's questions answered correctly."""
    return lm_eval_process_results(doc, results)
'''


class _Dumper(yaml.SafeDumper):
    """Safe YAML with strings that hold a line break written in double quotes (``"\\n\\n"``)."""


_Dumper.add_representer(str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s,
                                                             style='"' if "\n" in s else None))


def _task_yaml(task: str, group: str, data_file: Path, until: Sequence[str], max_gen_toks: int,
               manifest: dict, config: str) -> str:
    body = {
        "task": task,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file)}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{target}}",
        "target_delimiter": "",
        "generation_kwargs": {"until": list(until), "max_gen_toks": int(max_gen_toks), "do_sample": False},
        "metric_list": [{"metric": "query_accuracy", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": TASK_VERSION, "memgen_version": __version__,
                     "generator_version": manifest.get("generator_version"), "config": config},
    }
    text = yaml.dump(body, Dumper=_Dumper, sort_keys=False, width=120)
    return f"# memgen {config}: written by memgen export; one doc per episode\n{text}" \
           "process_results: !function utils.process_results\n"


def _group_yaml(group: str, tasks: Sequence[str]) -> str:
    body = {
        "group": group,
        "task": list(tasks),
        "aggregate_metric_list": [{"metric": "query_accuracy", "aggregation": "mean", "weight_by_size": True}],
        "metadata": {"version": TASK_VERSION},
    }
    return "# written by memgen export\n" + yaml.safe_dump(body, sort_keys=False, width=120)


def _staging(out: Path) -> Path:
    """A fresh temporary folder beside ``out``, for an export renamed into place at the end."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise UsageError(f"--out {out}: a non-empty folder that memgen export did not write; choose another")
    tmp = out.with_name(f".{out.name}{TMP_MARK}{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    return tmp


def _swap_in(tmp: Path, out: Path) -> None:
    """Put the finished folder ``tmp`` at ``out`` (replacing an earlier export there)."""
    old = out.with_name(f".{out.name}{TMP_MARK}old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def _write_jsonl(path: Path, rows: Iterator[dict]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def _episode_doc(ep: Episode) -> dict:
    return {"id": ep.id, "config": ep.config, "family": ep.family, "target_length": ep.target_length,
            "n_questions": len(ep.answers), "prompt": ep.prompt, "target": ep.target, "answers": list(ep.answers)}


def default_max_gen_toks(max_questions: int) -> int:
    """Tokens to allow for an answer block of ``max_questions`` lines (16 a line, plus 32)."""
    return 16 * max(1, max_questions) + 32


def export_lm_eval(dataset: str | Path, out: str | Path, *, configs: Sequence[str] | None = None,
                   name: str = "memgen", until: Sequence[str] = ("\n\n",),
                   max_gen_toks: int | None = None) -> Export:
    """Write an lm-evaluation-harness task folder for the text configs of ``dataset`` at ``out``.

    ``out`` gets ``<name>_<config>.yaml`` and ``data/<config>.jsonl`` per config, the group
    ``<name>.yaml`` (run every config with ``--tasks <name>``), ``utils.py`` and a README.  The
    task YAMLs point at the JSONL files by absolute path (export again after moving ``out``).
    ``max_gen_toks`` defaults to :func:`default_max_gen_toks` of the config's most questions.
    An earlier export at ``out`` is replaced; any other non-empty folder is refused."""
    _check_name(name)
    if max_gen_toks is not None and max_gen_toks < 1:
        raise UsageError("--max-gen-toks must be at least 1")
    if not until or any(not u for u in until):
        raise UsageError("--until: give non-empty stop strings")
    ds, text, other = open_text_dataset(dataset, configs)
    out = Path(out).expanduser().resolve()
    result = Export(out=out, group=name, skipped=other)
    tmp = _staging(out)
    try:
        (tmp / "data").mkdir()
        for config in text:
            most = 0

            def docs(config=config):
                nonlocal most
                for ep in iter_episodes(ds, config):
                    most = max(most, len(ep.answers))
                    yield _episode_doc(ep)

            result.rows[config] = _write_jsonl(tmp / "data" / f"{config}.jsonl", docs())
            task = task_name(name, config)
            result.tasks[config] = task
            gen = max_gen_toks if max_gen_toks is not None else default_max_gen_toks(most)
            (tmp / f"{task}.yaml").write_text(
                _task_yaml(task, name, out / "data" / f"{config}.jsonl", until, gen, ds.manifest, config))
        (tmp / f"{name}.yaml").write_text(_group_yaml(name, list(result.tasks.values())))
        (tmp / "utils.py").write_text(UTILS_PY)
        (tmp / "README.md").write_text(_readme(ds, result))
        (tmp / MARKER).write_text(json.dumps({
            "format": "lm-eval", "memgen_version": __version__, "dataset": str(ds.root.resolve()),
            "group": name, "tasks": result.tasks, "rows": result.rows, "task_version": TASK_VERSION}, indent=1) + "\n")
        _swap_in(tmp, out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UsageError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def _readme(ds: Dataset, result: Export) -> str:
    tasks = "\n".join(f"| `{t}` | `{c}` | {result.rows[c]:,} |" for c, t in result.tasks.items())
    return f"""# memgen tasks for lm-evaluation-harness

Exported by memgen {__version__} from `{ds.root.resolve()}`.
One doc per episode: the prompt holds all of its questions; the model answers with
`<number>: <answer>` lines; `query_accuracy` is the share of questions answered correctly.

| task | config | episodes |
|---|---|---|
{tasks}

```
lm_eval --model hf --model_args pretrained=MODEL --include_path {result.out} \\
    --tasks {result.group} --log_samples --output_path results/
cat results/*/samples_{result.group}_*.jsonl > samples.jsonl
memgen score --dataset {ds.root.resolve()} --predictions samples.jsonl
```

`memgen score` classifies every answer by failure mode (stale, distractor, resurrected, ...)
and reports accuracy per probe.  The YAMLs point at `data/*.jsonl` by absolute path: run
`memgen export` again after moving this folder.
"""


# ---------------------------------------------------------------------------------------------
# JSONL


def query_rows(ep: Episode) -> Iterator[dict]:
    """One row per question of ``ep``: its own prompt, the bare gold ``answer``, and the
    ``target`` line in the prompt's answer format."""
    for n, (qid, probe, ask, answer) in enumerate(zip(ep.qids, ep.probes, ep.asks, ep.answers, strict=True),
                                                  start=1):
        yield {"id": ep.id, "qid": qid, "probe": probe, "ask": ask, "config": ep.config, "family": ep.family,
               "question": ep.questions[n - 1], "prompt": single_question_prompt(ep, n), "answer": answer,
               "target": f"{n}: {answer}"}


def episode_rows(ep: Episode) -> Iterator[dict]:
    """One row for the whole episode: the prompt with every question and the answer block."""
    yield {"id": ep.id, "config": ep.config, "family": ep.family, "n_questions": len(ep.answers),
           "probes": list(ep.probes), "qids": list(ep.qids), "prompt": ep.prompt, "answer": ep.target}


def export_jsonl(dataset: str | Path, out: str | Path, *, configs: Sequence[str] | None = None,
                 unit: str = "query") -> Export:
    """Write the text configs of ``dataset`` as one JSONL file ``out`` (atomically).

    ``unit="query"``: one row per question, ``{"id", "qid", "probe", "ask", "config", "family",
    "question", "prompt", "answer", "target"}``, the prompt asking that question alone;
    ``unit="episode"``: one row per episode with every question and the answer block."""
    make = {"query": query_rows, "episode": episode_rows}.get(unit)
    if make is None:
        raise UsageError(f"--unit {unit!r}: choose query or episode")
    ds, text, other = open_text_dataset(dataset, configs)
    out = Path(out).expanduser()
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder; give a file name (e.g. {out / 'memgen.jsonl'})")
    result = Export(out=out, skipped=other)
    tmp = out.with_name(f".{out.name}{TMP_MARK}{os.getpid()}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            for config in text:
                n = 0
                for ep in iter_episodes(ds, config):
                    for row in make(ep):
                        f.write(json.dumps(row, ensure_ascii=False) + "\n")
                        n += 1
                result.rows[config] = n
        os.replace(tmp, out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return result
