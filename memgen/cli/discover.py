"""``memgen list`` and ``memgen info``: what this install can make and run, and what a dataset
folder holds (its configs, their sizes, and the knob values each config was made with).

Both read the registries (families, renderings, models, selectors register by name) and never
a dataset's code; ``--json`` prints the same content for scripts.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from memgen.cli.common import out
from memgen.format.errors import DataError

SECTIONS = ("families", "renderings", "domains", "tokenizers", "models", "selectors")
#: the knobs of a family's plan, in the order ``memgen generate --help`` lists them
KNOB_ORDER = ("keys", "overwrites", "distractors", "distractor_kinds", "silent_share", "deletes", "rewrite_share",
              "absent_keys", "queries", "query_position", "max_version")


def _cell(value: object) -> Text:
    """A table cell that shows ``value`` as it is: never read as rich markup, control characters
    (a terminal escape in a name from a file) escaped."""
    s = value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return Text(s if s.isprintable() else repr(s))


def _first_sentence(doc: str | None, name: str = "") -> str:
    """The first sentence of a docstring, in plain text (no reST roles or literals, and no
    leading ``name:``)."""
    para = " ".join((doc or "").strip().split("\n\n")[0].split())
    para = re.sub(r":\w+:`~?([^`]*)`", lambda m: m.group(1).rsplit(".", 1)[-1], para)
    para = re.sub(r"``([^`]*)``", r"\1", para).removeprefix(f"{name}: ")
    cut = para.find(". ")
    return para if cut < 0 else para[:cut + 1]


def described(name: str, obj: object) -> str:
    """What a registered ``obj`` is, in one sentence: its own docstring (unless that is the one
    dataclasses writes, its signature, or one about its knobs), else its module's line for
    ``name`` (a ``* ``name``: ...`` item), else its module's first sentence."""
    own = (obj.__doc__ or "").strip()
    fields = {f.name for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else set()
    about_knobs = any(own.startswith(f"``{f}``") for f in fields)
    if own and not about_knobs and not own.startswith(f"{getattr(obj, '__name__', '')}("):
        return _first_sentence(own, name)
    doc = sys.modules[obj.__module__].__doc__ or ""
    item = re.search(rf"^\* ``{re.escape(name)}``: (.*(?:\n  .*)*)", doc, re.MULTILINE)
    return _first_sentence(item.group(1) if item else doc, name)


def _knobs(fields) -> dict:
    return {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}


def family_defaults(length: int) -> dict[str, dict]:
    """Every family: its card line and its knobs' values at ``length`` with nothing set."""
    from memgen.generators.knobs import Knobs
    from memgen.generators.registry import DESCRIPTIONS, FAMILIES
    from memgen.pipeline.request import resolved_knobs

    return {name: {"description": DESCRIPTIONS.get(name, ""),
                   "knobs": resolved_knobs(fn(Knobs(), length), Knobs().query_position)}
            for name, fn in FAMILIES.items()}


def catalogue(length: int, sections: tuple[str, ...] = SECTIONS) -> dict[str, object]:
    """What ``memgen list`` prints for ``sections``: the registered families, renderings,
    domains, tokenizers, models and (where :mod:`memgen.selection` is installed) selectors,
    with their knobs and defaults."""
    cat: dict[str, object] = {"length": length}
    if "families" in sections:
        cat["families"] = family_defaults(length)
    if "renderings" in sections:
        import memgen.render  # noqa: F401  (registers the renderings)
        from memgen.render.registry import RENDERINGS

        cat["renderings"] = {name: described(name, fn) for name, fn in RENDERINGS.items()}
    if "domains" in sections:
        from memgen.format.errors import MemgenError
        from memgen.render.text.domain import available_domains, load_domain

        cat["domains"] = {}
        for d in available_domains():
            try:  # loading checks the domain: a broken one says so here, not in the middle of a run
                cat["domains"][d] = load_domain(d).description
            except MemgenError as e:
                cat["domains"][d] = f"(cannot be loaded: {e.message})"
    if "tokenizers" in sections:
        from memgen.render.text.tokenizers import NAMES

        cat["tokenizers"] = {**{n: f"OpenAI's {n}_base BPE (tiktoken), offline" for n in NAMES},
                             "PATH": "a local Hugging Face tokenizer.json, or a folder holding one"}
    if "models" in sections:
        from memgen.evaluation.zoo import available_models
        from memgen.models.registry import MODELS

        cat["models"] = {n: {"description": described(n, MODELS[n]), "knobs": _knobs(dataclasses.fields(MODELS[n]))}
                         for n in available_models()}
    if "selectors" in sections:
        try:
            import memgen.selection  # noqa: F401  (registers the selectors)
            from memgen.selection.registry import SELECTORS
        except ImportError:
            return cat
        cat["selectors"] = {n: {"description": described(n, c), "renderings": list(c.renderings),
                                "knobs": _knobs(dataclasses.fields(c))} for n, c in SELECTORS.items()}
    return cat


def _spec(knobs: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in knobs.items()) or "-"


def _print_catalogue(cat: dict, sections: list[str]) -> None:
    if "families" in sections:
        t = Table(title=f"families (knob defaults at --length {cat['length']:,}; counts scale with length)",
                  title_justify="left")
        t.add_column("family")
        t.add_column("what it is", ratio=1)
        t.add_column("knob defaults (0: no such events)", ratio=1)
        common = ("distractor_kinds", "query_position", "max_version")
        for name, f in cat["families"].items():
            t.add_row(_cell(name), _cell(f["description"]),
                      _cell(_spec({k: f["knobs"][k] for k in KNOB_ORDER if k not in common and k in f["knobs"]})))
        out.print(t)
        first = next(iter(cat["families"].values()), None)
        if first:
            out.print(_cell("every family: " + _spec({k: first["knobs"][k] for k in common})))
    simple = {"renderings": "rendering", "domains": "domain (--domain)", "tokenizers": "tokenizer (--tokenizer)"}
    for section, head in simple.items():
        if section in sections:
            t = Table(title=section, title_justify="left")
            t.add_column(head)
            t.add_column("what it is")
            for name, what in cat[section].items():
                t.add_row(_cell(name), _cell(what))
            out.print(t)
    for section, head in (("models", "model (--model NAME:knob=value)"),
                          ("selectors", "selector (--select NAME:k=K)")):
        if section in sections and section in cat:
            t = Table(title=section, title_justify="left")
            t.add_column(head)
            if section == "selectors":
                t.add_column("renderings")
            t.add_column("knobs (defaults)")
            t.add_column("what it is", ratio=1)
            for name, m in cat[section].items():
                extra = [_cell(", ".join(m["renderings"]))] if section == "selectors" else []
                t.add_row(_cell(name), *extra, _cell(_spec(m["knobs"])), _cell(m["description"]))
            out.print(t)


@click.command("list")
@click.argument("sections", nargs=-1, type=click.Choice(SECTIONS))
@click.option("--length", type=click.IntRange(1, 1 << 40), default=4096, show_default=True,
              help="Context length at which to show the families' knob defaults.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def list_command(sections: tuple[str, ...], length: int, as_json: bool) -> None:
    """List what memgen can make and run: families (with their knobs' defaults), renderings,
    domains, tokenizers, models and selectors.

    \b
    Examples:
      memgen list
      memgen list families --length 65536
      memgen list models --json
    """
    want = tuple(dict.fromkeys(sections)) or SECTIONS
    cat = catalogue(length, want)
    if as_json:
        sys.stdout.write(json.dumps(cat, indent=1) + "\n")
        return
    if "selectors" in want and "selectors" not in cat:
        out.print("selectors: memgen.selection is not installed")
    _print_catalogue(cat, list(want))


# ---------------------------------------------------------------------------------------------
# memgen info DIR


def dataset_info(root: str | Path) -> dict:
    """What ``memgen info`` prints: versions, the generation command, and per config its family,
    rendering, length, episodes, shards, bytes and the knob values it was made with (the
    family's defaults filled in where the request left a knob unset)."""
    from memgen.generators.knobs import Knobs
    from memgen.generators.registry import get_family
    from memgen.io.dataset import Dataset
    from memgen.io.shards import read_shard
    from memgen.pipeline.request import family_knobs, resolved_knobs

    ds = Dataset.open(root)
    m = ds.manifest
    request = m.get("config") if isinstance(m.get("config"), dict) else {}
    asked = request.get("knobs") if isinstance(request.get("knobs"), dict) else {}
    configs = {}
    for name in ds.configs:
        c = ds.config(name)
        knobs = c.get("knobs")
        if not isinstance(knobs, dict):  # a manifest from before resolved knobs were stored
            try:
                kinds = tuple(asked.get("distractor_kinds", Knobs().distractor_kinds))
                k = Knobs(**{**asked, "distractor_kinds": kinds})
                fam = family_knobs(k, c["family"], int(c["length"]))
                knobs = resolved_knobs(get_family(c["family"])(fam, int(c["length"])), fam.query_position)
            except (TypeError, ValueError, KeyError) as e:
                raise DataError(f"{root}/manifest.json: config {name}: its knobs cannot be resolved ({e})") from None
        configs[name] = {"family": c["family"], "rendering": c["rendering"], "length": c["length"],
                         "episodes": c["rows"], "shards": len(c["shards"]),
                         "bytes": sum(s["bytes"] for s in c["shards"]), "knobs": knobs}
        if c["rendering"] == "text":  # --domain unset rotates domains by episode: say which were used
            configs[name]["domains"] = sorted({d for p in ds.shard_paths(name)
                                               for d in read_shard(p, columns=["domain"]).column("domain").to_pylist()})
    render = request.get("render") if isinstance(request.get("render"), dict) else {}
    return {"path": str(ds.root), "status": m.get("status"), "memgen_version": m.get("memgen_version"),
            "generator_version": m.get("generator_version"), "schema_version": m.get("schema_version"),
            "command": m.get("command"), "seed": request.get("seed"), "split": request.get("split"),
            "format": request.get("format"), "render": render, "configs": configs}


def _print_info(info: dict) -> None:
    out.print(Text.assemble((info["path"], "bold"), f"   {info['status']}   memgen {info['memgen_version']}   "
                            f"generator v{info['generator_version']}   schema v{info['schema_version']}   "
                            f"{info['format'] or 'arrow'} shards"))
    out.print(_cell(f"command: {info['command']}"))
    t = Table(title=f"configs ({len(info['configs'])}) and the knobs each was made with", title_justify="left")
    for col in ("config", "episodes", "shards", "MB"):
        t.add_column(col, justify="left" if col == "config" else "right")
    t.add_column("knobs", ratio=1)
    common = ("distractor_kinds", "query_position", "max_version")
    for name, c in info["configs"].items():
        knobs = {k: c["knobs"][k] for k in KNOB_ORDER if k not in common and k in c["knobs"]}
        if c.get("domains"):
            knobs["domains"] = ",".join(c["domains"])
        t.add_row(_cell(name), f"{c['episodes']:,}", str(c["shards"]), f"{c['bytes'] / 1e6:.2f}", _cell(_spec(knobs)))
    out.print(t)
    shared = {k: v for k, v in next(iter(info["configs"].values()))["knobs"].items() if k in common} \
        if info["configs"] else {}
    out.print(_cell("every config: " + _spec(shared)))
    if info["render"]:
        out.print(_cell("rendering options: " + _spec({k: v for k, v in info["render"].items() if k != "vocab"})))


@click.command("info")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def info_command(dataset: Path, as_json: bool) -> None:
    """Describe a dataset folder: versions, the command that made it, its configs (episodes,
    shards, size) and the knob values each config was made with.

    \b
    Examples:
      memgen info ds
      memgen info ds --json
    """
    info = dataset_info(dataset)
    if as_json:
        sys.stdout.write(json.dumps(info, indent=1) + "\n")
    else:
        _print_info(info)
