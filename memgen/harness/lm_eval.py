"""The lm-evaluation-harness export (``memgen export --format lm-eval``, docs/ecosystem.md).

:func:`export_lm_eval` writes one ``generate_until`` task over every exported text config:
``<name>.yaml``, ``utils.py`` (the metric and its aggregation) and, for a local export,
``data/<config>.jsonl`` (one doc per episode, read through ``dataset_kwargs`` with paths relative
to the folder); for a dataset published on the Hub (``hub_name``) the task loads the Hub repo
by name instead and the folder holds no data.  One doc is one episode: ``doc_to_text`` is its
prompt (all of its questions, answered as ``<number>: <answer>`` lines).  The doc keeps the
row's ``id`` and no ``qid``, so ``memgen score`` reads lm-eval's ``--log_samples`` file as
answer blocks and maps line *n* to question *n* of that episode.

Every metric is a share of questions, not of episodes: ``process_results`` returns
``[right, asked]`` per doc for ``query_accuracy``, for each probe (``probe_<name>``) and for
the episode's length (``length_<tokens>``), and :func:`question_accuracy` sums both over the
docs, so lm-eval's table gives the numbers ``memgen score`` gives on the same answers.  The
task folder is written atomically (a temporary folder beside it, renamed into place).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from memgen import __version__
from memgen.format.codes import PROBES
from memgen.format.errors import DataError, UsageError
from memgen.harness.output import MARKER, _check_name, _staging, _swap_in, _write_jsonl
from memgen.harness.text_dataset import TextEpisode, iter_episodes, open_text_dataset
from memgen.io.dataset import Dataset

#: bumped whenever the exported task (docs, prompt, target, metric) changes (lm-eval's habit)
TASK_VERSION = 2.0
#: lm-eval's tag of its long-context tasks (ruler, babilong, longbench)
TAG = "longcxt"

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


def is_correct(reply: str | None, gold: str, domain: str | None = None) -> bool:
    """Whether one answer is ``correct`` for the gold text exactly as ``memgen score``'s strict
    scoring counts it (the domain's type words dropped; an absent gold is matched by any
    "unknown"-like answer)."""
    from memgen.scorers.answers import strict_correct

    return strict_correct(reply, gold, domain)


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


# ---------------------------------------------------------------------------------------------
# what utils.py calls: docs are exported episodes ({"answers", "probes", ...}) or dataset rows
# read from the Hub ({"queries": [{"answer_text", "probe", ...}], ...})


def doc_answers(doc: Mapping) -> list[str]:
    """The gold answer text of each question of a doc, in question order."""
    if "queries" in doc:
        return [q["answer_text"] for q in doc["queries"]]
    return list(doc["answers"])


def doc_probes(doc: Mapping) -> list[str]:
    """The probe of each question of a doc, in question order."""
    if "queries" in doc:
        return [q["probe"] for q in doc["queries"]]
    return list(doc["probes"])


def doc_to_text(doc: Mapping) -> str:
    """The prompt of a doc: an exported episode's ``prompt``, or a stored row's
    ``prompt_head + context + prompt_tail`` (how a shard keeps it, the context stored once)."""
    if "prompt" in doc:
        return doc["prompt"]
    return doc["prompt_head"] + doc["context"] + doc["prompt_tail"]


def doc_to_target(doc: Mapping) -> str:
    """The gold answer block of a doc (``"1: a\\n2: b"``)."""
    from memgen.harness.text_dataset import answer_block

    return answer_block(doc_answers(doc))


def metric_names(probes: Sequence[str], lengths: Sequence[int]) -> list[str]:
    """The metrics of a task over these probes and lengths, as lm-eval's table lists them."""
    return ["query_accuracy"] + [f"probe_{p}" for p in probes] + [f"length_{n}" for n in lengths]


def lm_eval_process_results(doc: Mapping, results: list, probes: Sequence[str] = PROBES,
                            lengths: Sequence[int] = ()) -> dict[str, list[int]]:
    """lm-eval ``process_results``: ``[right, asked]`` of the episode's questions for
    ``query_accuracy``, for every probe in ``probes`` and every length in ``lengths`` (``[0, 0]``
    where the episode has none), so that every doc reports the same metrics."""
    reply = results[0] if results else ""
    while isinstance(reply, list):
        reply = reply[0] if reply else ""
    golds = doc_answers(doc)
    got = block_answers(reply if isinstance(reply, str) else "", len(golds))
    right = [is_correct(a, g, doc.get("domain")) for a, g in zip(got, golds, strict=True)]
    out = {"query_accuracy": [sum(right), len(right)]}
    per_probe = doc_probes(doc)
    for p in probes:
        mine = [r for r, q in zip(right, per_probe, strict=True) if q == p]
        out[f"probe_{p}"] = [sum(mine), len(mine)]
    for n in lengths:
        out[f"length_{n}"] = [sum(right), len(right)] if int(doc["target_length"]) == n else [0, 0]
    return out


def question_accuracy(items: Sequence[Sequence[int]]) -> float:
    """lm-eval aggregation: questions answered right over questions asked, across docs
    (-1 where no doc asked any, as lm-eval's ruler marks a length it has no samples of)."""
    right = sum(int(i[0]) for i in items)
    asked = sum(int(i[1]) for i in items)
    return right / asked if asked else -1.0


def load_docs(folder: str | Path, data_files: Mapping[str, Sequence[str]], **_metadata):
    """lm-eval ``custom_dataset``: the JSON docs at ``data_files`` (paths relative to the task
    ``folder``, which they may not leave) as a ``datasets.DatasetDict``; lm-eval also passes the
    task's metadata, which is not needed here."""
    import datasets

    root = Path(folder).resolve()
    if not isinstance(data_files, Mapping):
        raise DataError(f"{root}: dataset_kwargs.data_files must map a split to its files")
    files: dict[str, list[str]] = {}
    for split, paths in data_files.items():
        files[split] = []
        for rel in [paths] if isinstance(paths, str) else paths:
            path = (root / rel).resolve()
            if Path(rel).is_absolute() or not path.is_relative_to(root):
                raise DataError(f"{root}: data file {rel!r} is not inside the task folder")
            if not path.is_file():
                raise DataError(f"{root}: no data file {rel!r}; export the task again")
            files[split].append(str(path))
    return datasets.load_dataset("json", data_files=files)


# ---------------------------------------------------------------------------------------------
# lm-evaluation-harness


@dataclass
class Export:
    """What an export wrote: the destination, the task of each config (config -> task name),
    the task name (``group``), rows written per config, and the configs left out (not text
    renderings)."""

    out: Path
    tasks: dict[str, str] = field(default_factory=dict)
    group: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _utils_py(probes: Sequence[str], lengths: Sequence[int]) -> str:
    return f'''"""Metric of the memgen task in this folder (written by memgen export; needs memgen installed)."""

from pathlib import Path

from memgen.harness import lm_eval as _memgen

PROBES = {tuple(probes)!r}
LENGTHS = {tuple(lengths)!r}


def doc_to_text(doc):
    """The episode's prompt."""
    return _memgen.doc_to_text(doc)


def load_docs(**kwargs):
    """The exported docs, read from data/ beside this file."""
    return _memgen.load_docs(Path(__file__).parent, **kwargs)


def doc_to_target(doc):
    """The gold answer block."""
    return _memgen.doc_to_target(doc)


def process_results(doc, results):
    """[right, asked] questions of the episode: overall, per probe, per length."""
    return _memgen.lm_eval_process_results(doc, results, PROBES, LENGTHS)


def question_accuracy(items):
    """Questions right over questions asked, summed over episodes."""
    return _memgen.question_accuracy(items)
'''


class _Dumper(yaml.SafeDumper):
    """Safe YAML with strings that hold a line break written in double quotes (``"\\n\\n"``)."""


_Dumper.add_representer(str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s,
                                                             style='"' if "\n" in s else None))


def _task_yaml(task: str, source: dict, until: Sequence[str], max_gen_toks: int, manifest: dict,
               configs: Sequence[str], metrics: Sequence[str]) -> str:
    """The task's YAML; ``source`` holds the keys that say where the docs come from."""
    body = {
        "task": task,
        "tag": [TAG],
        **{k: v for k, v in source.items() if k != "functions"},
        "output_type": "generate_until",
        **({} if "doc_to_text" in source["functions"] else {"doc_to_text": "{{prompt}}"}),
        **({} if "doc_to_target" in source["functions"] else {"doc_to_target": "{{target}}"}),
        "target_delimiter": "",
        # no stop string: a chat reply "Here are the answers:\n\n1: ..." must not be cut before its
        # answers; generation ends at the model's end-of-sequence token or at max_gen_toks
        "generation_kwargs": {"until": list(until), "max_gen_toks": int(max_gen_toks), "do_sample": False},
        "metadata": {"version": TASK_VERSION, "memgen_version": __version__,
                     "generator_version": manifest.get("generator_version"), "configs": list(configs)},
    }
    text = yaml.dump(body, Dumper=_Dumper, sort_keys=False, width=120)
    functions = [f"{key}: !function utils.{fn}" for key, fn in source["functions"].items()]
    functions.append("process_results: !function utils.process_results")
    functions.append("metric_list:")
    for m in metrics:
        functions += [f"  - metric: {m}", "    aggregation: !function utils.question_accuracy",
                      "    higher_is_better: true"]
    return f"# memgen: written by memgen export; one doc per episode\n{text}" + "\n".join(functions) + "\n"


def _episode_doc(ep: TextEpisode) -> dict:
    return {"id": ep.id, "config": ep.config, "family": ep.family, "target_length": ep.target_length,
            "n_questions": len(ep.answers), "prompt": ep.prompt, "target": ep.target, "answers": list(ep.answers),
            "probes": list(ep.probes), "domain": ep.domain}


def default_max_gen_toks(max_questions: int) -> int:
    """Tokens to allow for an answer block of ``max_questions`` lines (16 a line, plus 32)."""
    return 16 * max(1, max_questions) + 32


def _hub_source(ds: Dataset, repo: str, configs: Sequence[str]) -> dict:
    """Where a task over ``configs`` of the Hub repo ``repo`` reads its rows: by config name
    for one config, else by the configs' shard files (paths inside the repo)."""
    from memgen.io.hub import check_repo_id

    try:
        check_repo_id(repo)
    except UsageError as e:
        raise UsageError(e.message.replace("--repo-id", "--hub-name", 1)) from None
    split = ds.manifest.get("config", {}).get("split", "test")
    source: dict = {"dataset_path": repo}
    if len(configs) == 1:
        source["dataset_name"] = configs[0]
    else:
        source["dataset_kwargs"] = {"data_files": {split: [s["path"] for c in configs
                                                           for s in ds.config(c)["shards"]]}}
    source["test_split"] = split
    source["functions"] = {"doc_to_text": "doc_to_text", "doc_to_target": "doc_to_target"}
    return source


def export_lm_eval(dataset: str | Path, out: str | Path, *, configs: Sequence[str] | None = None,
                   name: str = "memgen", until: Sequence[str] = (), max_gen_toks: int | None = None,
                   hub_name: str | None = None,
                   episodes: Callable[[Dataset, str], Iterable[TextEpisode]] = iter_episodes) -> Export:
    """Write an lm-evaluation-harness task folder for the text configs of ``dataset`` at ``out``.

    ``out`` gets the task ``<name>.yaml`` over every exported config (run it with ``--tasks
    <name>``, or ``--tasks longcxt`` with lm-eval's other long-context tasks), ``utils.py`` and
    a README; a local export also gets ``data/<config>.jsonl``, named in the YAML by paths
    relative to ``out`` (the folder can be moved or shared).  ``hub_name`` (``ORG/NAME``): the
    dataset as published on the Hub, loaded from there by name.  ``until``: stop strings (none
    by default).  ``max_gen_toks`` defaults to :func:`default_max_gen_toks` of the most
    questions of an episode.  ``episodes(ds, config)`` yields the episodes to export
    (:func:`iter_episodes` by default; ``memgen.selection`` passes one that keeps only the
    selected passages of each context).  An earlier export at ``out`` is replaced; any other non-empty
    folder is refused."""
    _check_name(name)
    if name == TAG:
        raise UsageError(f"--name {name!r}: that is lm-eval's tag of every long-context task; choose another")
    if max_gen_toks is not None and not 1 <= max_gen_toks <= 1 << 20:
        raise UsageError("--max-gen-toks must be within 1..1048576")
    if any(not u for u in until):
        raise UsageError("--until: give non-empty stop strings")
    if hub_name and episodes is not iter_episodes:
        raise UsageError("--hub-name: the task reads the published rows as they are; it cannot also keep only "
                         "selected passages (--select): export without --hub-name")
    ds, text, other = open_text_dataset(dataset, configs)
    source = _hub_source(ds, hub_name, text) if hub_name else None
    out = Path(out).expanduser().resolve()
    result = Export(out=out, group=name, skipped=other)
    most, probes, lengths = 0, set(), set()
    tmp = _staging(out)
    try:
        if source is None:
            (tmp / "data").mkdir()
        for config in text:
            def docs(config=config):
                nonlocal most
                for ep in episodes(ds, config):
                    most = max(most, len(ep.answers))
                    probes.update(ep.probes)
                    lengths.add(ep.target_length)
                    yield _episode_doc(ep)

            if source is None:
                result.rows[config] = _write_jsonl(tmp / "data" / f"{config}.jsonl", docs())
            else:
                result.rows[config] = sum(1 for _ in docs())
            result.tasks[config] = name
        if source is None:
            source = {"dataset_path": "json",
                      "dataset_kwargs": {"data_files": {"test": [f"data/{c}.jsonl" for c in text]}},
                      "test_split": "test", "functions": {"custom_dataset": "load_docs"}}
        probes_in = [p for p in PROBES if p in probes]
        gen = max_gen_toks if max_gen_toks is not None else default_max_gen_toks(most)
        (tmp / f"{name}.yaml").write_text(_task_yaml(name, source, until, gen, ds.manifest, text,
                                                     metric_names(probes_in, sorted(lengths))))
        (tmp / "utils.py").write_text(_utils_py(probes_in, sorted(lengths)))
        (tmp / "README.md").write_text(_readme(ds, result, hub_name))
        (tmp / MARKER).write_text(json.dumps({
            "format": "lm-eval", "memgen_version": __version__, "dataset": hub_name or ds.root.resolve().name,
            "task": name, "configs": text, "rows": result.rows, "task_version": TASK_VERSION}, indent=1) + "\n")
        _swap_in(tmp, out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UsageError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def _readme(ds: Dataset, result: Export, hub_name: str | None) -> str:
    rows = "\n".join(f"| `{c}` | {n:,} |" for c, n in result.rows.items())
    where = f"the Hub dataset `{hub_name}`" if hub_name else "`data/` (paths relative to this folder)"
    data = "DATASET_DIR"
    fetch = (f"\n`DATASET_DIR` is a local copy of the dataset (`hf download {hub_name} --repo-type dataset "
             "--local-dir DATASET_DIR`).\n" if hub_name else "")
    return f"""# memgen task for lm-evaluation-harness

Exported by memgen {__version__}; the docs come from {where}.  One doc per episode: the
prompt holds all of its questions; the model answers with `<number>: <answer>` lines.  Every
metric is a share of questions (not of episodes), as `memgen score` counts them:
`query_accuracy` overall, `probe_<name>` per probe, `length_<tokens>` per context length.

| config | episodes |
|---|---|
{rows}

```
lm_eval --model hf --model_args pretrained=MODEL --include_path . --tasks {result.group} \\
    --log_samples --output_path results/
memgen score --dataset {data} --predictions results/MODEL/samples_{result.group}_DATE.jsonl
```
{fetch}
`memgen score` also classifies every wrong answer by failure mode (stale, distractor,
resurrected, ...).  The task is tagged `{TAG}`, as lm-eval's long-context tasks are.
"""
