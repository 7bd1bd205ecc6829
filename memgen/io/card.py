"""The dataset card (README.md) of a dataset folder: YAML front matter that the Hub and
``datasets.load_dataset`` read (``configs:``, ``dataset_info``), then a human description."""

from __future__ import annotations

import pyarrow as pa
import yaml

from memgen import __version__
from memgen.format.codes import PROBES
from memgen.format.schema import DEFAULT_VOCAB_SIZE, manifest_vocab_size, schema_for

PROBE_TEXT = {
    "write": "a fact written with a write signal is recalled",
    "overwrite": "after an overwrite, the newest value is returned (trap: a stale value)",
    "version": "the k-th value, or the one before the current, is recalled (trap: another version)",
    "distractor": "negated / hypothetical / unconfirmed / rejected / look-alike statements are not stored",
    "no_write_signal": "a fact stated in passing, never flagged, is still found",
    "discard": "a deleted fact is forgotten (answer unknown), or replaced by its re-write",
}

#: one line per family, for the card; a family registered without a line here is listed bare
FAMILY_TEXT = {
    "write": "keys written once with a write signal; queries ask their values",
    "overwrite": "keys written, then overwritten several times; queries ask the latest value",
    "version": "keys with several values; queries ask the k-th value or the one before the current",
    "distractor": "keys written once plus negated / hypothetical / unconfirmed / rejected / look-alike "
                  "statements that must not be stored",
    "no_write_signal": "some writes are stated in passing, with no write signal",
    "discard": "keys deleted (some written again later); queries ask deleted and re-written keys",
    "mixed": "every op and every ask at once; each query carries its own probe",
}


_DTYPES = {pa.string(): "string", pa.bool_(): "bool", pa.int32(): "int32", pa.int64(): "int64", pa.uint16(): "uint16",
           pa.uint64(): "uint64", pa.float32(): "float32", pa.float64(): "float64"}


def _feature(t: pa.DataType):
    """One Arrow type in the card's ``dataset_info.features`` notation (as ``datasets`` writes it)."""
    if pa.types.is_list(t):
        inner = t.value_type
        if pa.types.is_struct(inner):
            return {"list": [_named(f) for f in inner]}
        return {"list": _DTYPES[inner]} if inner in _DTYPES else {"list": _feature(inner)}
    if pa.types.is_struct(t):
        return {"struct": [_named(f) for f in t]}
    return {"dtype": _DTYPES[t]}


def _named(f: pa.Field) -> dict:
    return {"name": f.name, **_feature(f.type)}


def features_yaml(rendering: str, vocab_size: int | None = DEFAULT_VOCAB_SIZE) -> list:
    """The ``features`` list of a config's ``dataset_info``; tested equal to what
    ``datasets.Features.from_arrow_schema(...)._to_yaml_list()`` gives (no heavy import here)."""
    return [_named(f) for f in schema_for(rendering, vocab_size)]


def render_card(manifest: dict) -> str:
    configs = manifest["configs"]
    split = manifest["config"]["split"]
    front = {
        "license": "apache-2.0",
        "pretty_name": "memgen: memory management episodes",
        "task_categories": ["question-answering", "text-generation"],
        "tags": ["long-context", "memory", "synthetic", "memgen"],
        "configs": [
            {"config_name": name, "data_files": [{"split": split, "path": f"data/{name}/{split}-*.arrow"}]}
            for name in configs
        ],
        "dataset_info": [
            {"config_name": name, "features": features_yaml(c["rendering"], manifest_vocab_size(manifest)),
             "splits": [{"name": split, "num_bytes": sum(s["bytes"] for s in c["shards"]),
                         "num_examples": c["rows"]}]}
            for name, c in configs.items()
        ],
    }
    text_configs = [name for name, c in configs.items() if c["rendering"] == "text"]
    if text_configs:
        front = {"language": ["en"], **front}
    yaml_text = yaml.safe_dump(front, sort_keys=False, width=100)
    rows = "\n".join(
        f"| `{name}` | {c['family']} | {c['rendering']} | {c['length']:,} | {c['rows']:,} |"
        for name, c in configs.items())
    probes = "\n".join(f"| `{p}` | {PROBE_TEXT[p]} |" for p in PROBES)
    used = list(dict.fromkeys(c["family"] for c in configs.values()))
    families = "\n".join(f"| `{f}` | {FAMILY_TEXT.get(f, '')} |" for f in used)
    text_md = ""
    if text_configs:
        text_md = (
            "\n## Text rendering\n\n"
            "Each text row holds a `prompt`: instructions, a log (`context`: filler prose with the events, "
            "written from jinja2 templates in one `domain`), and the `questions`; the model answers with one "
            "`<number>: <answer>` line per question, copying the value or writing `unknown`.  `length` is "
            "the prompt's token count under `tokenizer`; every event's and interleaved question's `start`/`end` "
            "is its character span in `context`.\n")
    vocab = manifest.get("vocab")
    vocab_md = ""
    if vocab:
        vocab_md = (
            "\n## Token vocabulary\n\n"
            "| range | ids |\n|---|---|\n"
            f"| specials | pad {vocab['pad']}, bos {vocab['bos']}, write {vocab['write']}, query {vocab['query']}, "
            f"delete {vocab['delete']}, answer slot {vocab['answer_slot']}, absent {vocab['absent']}, "
            f"ask latest {vocab['ask_latest']}, ask previous {vocab['ask_previous']} |\n"
            f"| distractor markers | {', '.join(f'{k} {v}' for k, v in vocab['distractor_markers'].items())} |\n"
            f"| ask version k | {vocab['ask_version_offset']} + k - 1, k = 1..{vocab['max_version']} |\n"
            f"| key tokens | {vocab['key_offset']} .. {vocab['key_offset'] + vocab['key_tokens'] - 1} "
            f"(a key is {vocab['key_length']} of them) |\n"
            f"| values | value id v is token {vocab['value_offset']} + v (v < {vocab['values']}) |\n"
            f"| filler | {vocab['filler_offset']} .. {vocab['vocab_size'] - 1} |\n\n"
            "Events read `WRITE key value` (silent writes drop the marker), `DELETE key`, "
            "`MARKER(kind) key value`; queries read `QUERY ASK key SLOT` and the answer is predicted at "
            "the SLOT position (the query's `end - 1`).\n")
    return f"""---
{yaml_text}---

# memgen episodes

Synthetic episodes that test how a long-context model **manages memory**: does it write a
fact, overwrite it, keep older versions, refuse to store distractors, find a fact that was
never flagged, and forget a fact it was told to discard? Generated by
[memgen](https://pypi.org/project/memgen/) {__version__} (generator version
{manifest['generator_version']}, schema version {manifest['schema_version']}).

Every query carries the **probe** it tests, its gold answer (value id; -1 / "unknown" when the
key has no value) and its **traps**: the values a specific failure would return (stale, distractor,
other keys' values, deleted values), so a wrong answer can be classified by cause.

| probe | what it tests |
|---|---|
{probes}

Families (how the episodes of a config are built):

| family | episodes |
|---|---|
{families}

## Configs

| config | family | rendering | target length | episodes |
|---|---|---|---|---|
{rows}
{vocab_md}{text_md}
## Generation

```
{manifest['command']}
```

Seed {manifest['config']['seed']}; episode *i* of a config draws from its own seed (the `seed`
column), so the same command gives the same bytes on any machine and any number of workers.
`manifest.json` holds the full configuration and the sha256 of every shard; `memgen verify DIR`
checks them.

## Schema

Columns: `id`, `family`, `rendering`, `seed`, `target_length`, `length`, `events` (list of
`op`, `key`, `value`, `version`, `signal`, `kind`, `alias`, `start`, `end`, `chunk`, `segment`),
`queries` (list of `qid`, `key`, `ask`, `version`, `answer`, `answer_text`, `probe`, `traps`,
`start`, `end`, `evidence`), plus the rendering's own columns (`input_ids`; `chunk_size`;
`segments`; `context`, `questions`, `prompt`, `tokenizer`, `domain`). `input_ids`, and the
token renderings' trap lists, are uint16 while the vocabulary has at most 65,536 ids (int32
beyond); cast ids to int64 (`torch.long`) before an embedding lookup.

## Use

```python
from datasets import load_dataset
ds = load_dataset("path/or/repo", "{next(iter(configs))}", split="{split}")
```

## Scoring

`memgen score` classifies every answer into one outcome (`correct`, `stale`, `wrong_version`,
`distractor`, `cross_key`, `resurrected`, `false_absent`, `missed_absent`, `hallucinated`,
`unparsed`) and reports accuracy per probe with confidence intervals:

```
pip install memgen
memgen score --dataset DIR --predictions preds.jsonl
```

Predictions are JSONL rows `{{"id": ..., "qid": ..., "prediction": ...}}` (a token id for the
token renderings, a text answer for the text rendering), rows `{{"id": ..., "answer_block": ...}}`
holding a model's whole `<number>: <answer>` reply, or lm-evaluation-harness `--log_samples` files.
For the text rendering, `memgen run --dataset DIR --hf MODEL --out preds.jsonl` (or
`--openai-base-url URL --model NAME`) writes them, and `memgen export DIR --format lm-eval --out TASKS`
writes lm-evaluation-harness tasks.

## Citation

```bibtex
@software{{memgen,
  title = {{memgen: measuring memory management in long-context models}},
  version = {{{__version__}}},
  year = {{2026}}
}}
```
"""


def card_configs(text: str) -> list[str]:
    """Config names listed in a card's YAML front matter; ValueError if it is malformed."""
    if not text.startswith("---\n"):
        raise ValueError("no YAML front matter (the card must start with '---')")
    end = text.find("\n---", 4)
    if end < 0:
        raise ValueError("YAML front matter is not closed by '---'")
    try:
        front = yaml.safe_load(text[4:end])
    except yaml.YAMLError as e:
        raise ValueError(f"broken YAML front matter: {str(e).splitlines()[0]}") from None
    if not isinstance(front, dict) or not isinstance(front.get("configs"), list):
        raise ValueError("YAML front matter has no 'configs:' list")
    try:
        return [c["config_name"] for c in front["configs"]]
    except (TypeError, KeyError):
        raise ValueError("every entry of 'configs:' needs a config_name") from None
