"""The lm-evaluation-harness export (``memgen export --format lm-eval``, docs/ecosystem.md).

:func:`export_lm_eval` writes one ``generate_until`` task per text config (a YAML beside a
JSONL file of its episodes), a group over them, and ``utils.py`` with the per-question metric.
One lm-eval doc is one episode: ``doc_to_text`` is the episode's prompt (all of its questions,
answered as ``<number>: <answer>`` lines) and ``doc_to_target`` the gold answer block.  The doc
keeps the row's ``id`` and no ``qid``, so ``memgen score`` reads lm-eval's ``--log_samples``
file as answer blocks and maps line *n* to question *n* of that episode.  The task folder is
written atomically (a temporary folder beside it, renamed into place).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from memgen import __version__
from memgen.format.codes import ABSENT_TEXT
from memgen.format.errors import DataError, UsageError
from memgen.harness.output import MARKER, _check_name, _staging, _swap_in, _write_jsonl
from memgen.harness.text_dataset import TextEpisode, iter_episodes, open_text_dataset
from memgen.io.dataset import Dataset

#: bumped whenever the exported task (docs, prompt, target, metric) changes (lm-eval's habit)
TASK_VERSION = 1.0


_TAIL = "\n</log>"


def single_question_prompt(ep: TextEpisode, n: int) -> str:
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
    from memgen.scorers.normalise import is_absent, normalise

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
    from memgen.scorers.predictions import Predictions

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


UTILS_PY = '''"""Metric of the memgen tasks in this folder (written by memgen export; needs memgen installed)."""

from memgen.harness.lm_eval import lm_eval_process_results


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


def _episode_doc(ep: TextEpisode) -> dict:
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
