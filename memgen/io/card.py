"""The dataset card (README.md) of a dataset folder: YAML front matter that the Hub and
``datasets.load_dataset`` read (``configs:``, ``dataset_info``), then a human description.

The text is the jinja2 template ``card.md.j2`` beside this module; the small functions below
compute what it shows from the manifest.  Each family's line comes from the family itself
(:func:`memgen.generators.registry.family_description`)."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path

import pyarrow as pa
import yaml
from jinja2 import FileSystemLoader, StrictUndefined, Template
from jinja2.sandbox import ImmutableSandboxedEnvironment

from memgen import __version__
from memgen.format.codes import PROBES
from memgen.format.schema import DEFAULT_VOCAB_SIZE, manifest_vocab_size, schema_for
from memgen.generators.registry import family_description

PROBE_TEXT = {
    "write": "a fact written with a write signal is recalled",
    "overwrite": "after an overwrite, the newest value is returned (trap: a stale value)",
    "version": "the k-th value, or the one before the current, is recalled (trap: another version)",
    "distractor": "negated / hypothetical / unconfirmed / rejected / look-alike statements are not stored",
    "no_write_signal": "a fact stated in passing, never flagged, is still found",
    "discard": "a deleted fact is forgotten (answer unknown), or replaced by its re-write",
}

#: the vocabulary fields the card's token table shows as they are
_VOCAB_SHOWN = ("pad", "bos", "write", "query", "delete", "answer_slot", "absent", "ask_latest", "ask_previous",
                "ask_version_offset", "max_version", "key_length", "value_offset", "values")


@functools.cache
def _template() -> Template:
    """The card's text, compiled on first use; values come from the manifest (untrusted), hence
    the sandbox."""
    env = ImmutableSandboxedEnvironment(loader=FileSystemLoader(Path(__file__).parent), undefined=StrictUndefined,
                                        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                                        autoescape=False)
    return env.get_template("card.md.j2")


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
    """The README.md of a dataset folder from its ``manifest.json``: YAML front matter, then the
    description (``card.md.j2`` beside this module, rendered in jinja2's sandbox)."""
    configs = manifest["configs"]
    split = manifest["config"]["split"]
    return _template().render(
        front_matter=front_matter(manifest), memgen_version=__version__,
        generator_version=manifest["generator_version"], schema_version=manifest["schema_version"],
        probes=[(p, PROBE_TEXT[p]) for p in PROBES], families=_families(configs), configs=_config_rows(configs),
        vocab=_vocab_table(manifest.get("vocab")), text_rendering=bool(_text_configs(configs)),
        command=manifest["command"], seed=manifest["config"]["seed"], first_config=next(iter(configs)), split=split,
        manifest_sha256=manifest_sha256(manifest))


def manifest_sha256(manifest: dict) -> str:
    """The sha256 of a manifest's content: its JSON with sorted keys and no spaces, so that the
    checksum the card records survives reformatting and catches any change of a value."""
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


#: how the card states the manifest's checksum (``card.md.j2``'s Generation section)
_MANIFEST_SHA = re.compile(r"^manifest content sha256: `([0-9a-f]{64})`$", re.M)


def card_manifest_sha256(text: str) -> str | None:
    """The manifest content checksum a card records: None if it states none, "" (matching no
    manifest) if it states several or a line of the form is malformed."""
    found = _MANIFEST_SHA.findall(text)
    if len(found) == 1:
        return found[0]
    return "" if found or "manifest content sha256:" in text else None


#: the Hub's ``size_categories`` bins: (upper bound of the example count, label)
_SIZES = [(10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"),
          (10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B"), (10**10, "1B<n<10B")]


def size_category(rows: int) -> str:
    """The Hub's ``size_categories`` label for a dataset of ``rows`` examples."""
    return next((label for bound, label in _SIZES if rows < bound), "n>10B")


def front_matter(manifest: dict) -> str:
    """The card's YAML front matter (without its ``---`` lines): what the Hub and
    ``datasets.load_dataset`` read: ``configs:`` with their data files, ``dataset_info``."""
    configs = manifest["configs"]
    split = manifest["config"]["split"]
    fmt = manifest["config"].get("format", "parquet")
    front = {
        "license": "apache-2.0",
        "pretty_name": "memgen: memory management episodes",
        "size_categories": [size_category(sum(c["rows"] for c in configs.values()))],
        "task_categories": ["question-answering", "text-generation"],
        "tags": ["long-context", "memory", "synthetic", "memgen"],
        # the first config is the default: load_dataset(DIR) needs no config name
        "configs": [
            {"config_name": name, **({"default": True} if i == 0 else {}),
             "data_files": [{"split": split, "path": f"data/{name}/{split}-*.{fmt}"}]}
            for i, name in enumerate(configs)
        ],
        "dataset_info": [
            {"config_name": name, "features": features_yaml(c["rendering"], manifest_vocab_size(manifest)),
             "splits": [{"name": split, "num_bytes": sum(s["bytes"] for s in c["shards"]),
                         "num_examples": c["rows"]}]}
            for name, c in configs.items()
        ],
    }
    if _text_configs(configs):
        front = {"language": ["en"], **front}
    return yaml.safe_dump(front, sort_keys=False, width=100)


def _text_configs(configs: dict) -> list[str]:
    return [name for name, c in configs.items() if c["rendering"] == "text"]


def _families(configs: dict) -> list[tuple[str, str]]:
    """Each family the configs use, in order of first use, with its line from the registry."""
    used = dict.fromkeys(c["family"] for c in configs.values())
    return [(f, family_description(f)) for f in used]


def _config_rows(configs: dict) -> list[dict]:
    """One row of the card's config table per config, counts with thousands separators."""
    return [{"name": name, "family": c["family"], "rendering": c["rendering"], "length": f"{c['length']:,}",
             "rows": f"{c['rows']:,}"} for name, c in configs.items()]


def _vocab_table(vocab: dict | None) -> dict | None:
    """What the token vocabulary table shows (the manifest's ``vocab`` and the ranges derived
    from it); None when the manifest has no vocabulary (no token rendering)."""
    if not vocab:
        return None
    return {**{name: vocab[name] for name in _VOCAB_SHOWN},
            "markers": ", ".join(f"{k} {v}" for k, v in vocab["distractor_markers"].items()),
            "key_first": vocab["key_offset"], "key_last": vocab["key_offset"] + vocab["key_tokens"] - 1,
            "filler_first": vocab["filler_offset"], "filler_last": vocab["vocab_size"] - 1}


def card_configs(text: str) -> list[str]:
    """Config names listed in a card's YAML front matter; ValueError if it is malformed."""
    return [c["config_name"] for c in card_front(text)["configs"]]


def card_front(text: str) -> dict:
    """A card's YAML front matter (read with ``yaml.safe_load``: no tags run code), with a
    ``configs:`` list whose every entry is a table with a string ``config_name``; ValueError
    saying what is wrong otherwise."""
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
    if not all(isinstance(c, dict) and isinstance(c.get("config_name"), str) for c in front["configs"]):
        raise ValueError("every entry of 'configs:' needs a config_name")
    return front
