"""A memgen dataset folder on disk: shards, manifest, card; atomic writes; verification.

Layout (a Hugging Face dataset repo as it stands)::

    DIR/README.md                                   dataset card, YAML ``configs:``
    DIR/manifest.json                               versions, full config, vocab, sha256s
    DIR/data/<config>/<split>-NNNNN-of-NNNNN.parquet  shards (Parquet, or .arrow: Arrow IPC files)

Every file is written under a temporary name in the same folder and renamed into place, so an
interrupted run leaves complete files only; re-running the same command skips the shards that
exist and produces the same bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from memgen.format.errors import DataError, UsageError
from memgen.format.names import CONFIG_NAME, MAX_SHARDS, SHARD_RE, printable
from memgen.format.schema import RENDERING_COLUMNS, manifest_vocab_size, schema_for
from memgen.format.vocab import Vocab
from memgen.io.atomic import sha256_file
from memgen.io.shards import read_shard, shard_info

MANIFEST = "manifest.json"
CARD = "README.md"


_SHA256 = re.compile(r"[0-9a-f]{64}")
#: a manifest larger than this is refused before it is parsed
MAX_MANIFEST_BYTES = 64 << 20
#: the vocabulary's knobs: integers, each at most this (ids are at most int32)
_VOCAB_MAX = (1 << 31) - 1


def _count(x: object, limit: int = 1 << 62) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= limit


def check_manifest(manifest: dict, where: str) -> None:
    """Raise DataError naming the first entry of a parsed manifest whose type, form or range is
    wrong, so that no reader trips over it later and nothing read from it reaches a path
    unchecked: ``configs`` a table of configs named ``<family>-<rendering>-<length>``
    (:data:`~memgen.format.names.CONFIG_NAME`), each with its ``rendering`` (one with a schema),
    a ``rows`` count equal to its shards' rows, and a ``shards`` list of ``{path, rows, sha256,
    bytes}`` whose paths are distinct ``data/<config>/<split>-NNNNN-of-NNNNN.<parquet|arrow>``; ``vocab``
    null, or the full table of a valid vocabulary (its offsets derived from its knobs, so that
    no id range can be shifted by hand)."""
    def bad(what: str) -> DataError:
        return DataError(f"{where}: {what} (the manifest is damaged; regenerate the dataset)")

    configs = manifest.get("configs")
    if not isinstance(configs, dict):
        raise bad("'configs' is not a table")
    _check_vocab(manifest.get("vocab"), bad)
    for name, cfg in configs.items():
        m = CONFIG_NAME.fullmatch(name) if isinstance(name, str) else None
        if m is None:
            raise bad(f"config name {printable(name)} is not <family>-<rendering>-<length>")
        if not isinstance(cfg, dict) or not isinstance(cfg.get("shards"), list):
            raise bad(f"config {name!r} has no 'shards' list")
        rendering = cfg.get("rendering")
        if not isinstance(rendering, str) or rendering not in RENDERING_COLUMNS or rendering != m["rendering"]:
            raise bad(f"config {name!r}: rendering {printable(cfg.get('rendering'))} is not one of "
                      f"{', '.join(RENDERING_COLUMNS)} (or differs from its name)")
        if not _count(cfg.get("rows")):
            raise bad(f"config {name!r} needs a 'rows' count")
        if len(cfg["shards"]) > MAX_SHARDS:
            raise bad(f"config {name!r} lists more than {MAX_SHARDS:,} shards")
        paths: set[str] = set()
        for i, shard in enumerate(cfg["shards"]):
            path = shard.get("path") if isinstance(shard, dict) else None
            parts = path.split("/") if isinstance(path, str) else []
            if len(parts) != 3 or parts[:2] != ["data", name] or not SHARD_RE.match(parts[2]):
                raise bad(f"config {name!r}, shard {i}: path {printable(path)} is not "
                          f"data/{name}/<split>-NNNNN-of-NNNNN.<parquet|arrow>")
            if path in paths:
                raise bad(f"config {name!r}: shard {path} is listed twice")
            paths.add(path)
            if not (_count(shard.get("rows")) and _count(shard.get("bytes"))
                    and isinstance(shard.get("sha256"), str) and _SHA256.fullmatch(shard["sha256"])):
                raise bad(f"{path}: needs 'rows' and 'bytes' counts and a hex 'sha256'")
        if sum(s["rows"] for s in cfg["shards"]) != cfg["rows"]:
            raise bad(f"config {name!r}: 'rows' {cfg['rows']} is not the sum of its shards' rows")


def parse_manifest(data: bytes, where: str) -> object:
    """The JSON of a manifest file's bytes; DataError (one line) for anything that does not
    parse: malformed, not UTF-8, nested too deep, an integer too long to convert."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise DataError(f"{where}: larger than {MAX_MANIFEST_BYTES >> 20} MiB; not a memgen manifest")
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise DataError(f"{where}: nested too deeply; not a memgen manifest") from None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DataError(f"{where}: malformed JSON ({str(e)[:120]})") from None


def _check_vocab(vocab: object, bad) -> None:
    if vocab is None:
        return
    if not isinstance(vocab, dict):
        raise bad("'vocab' is not a table")
    knobs = ("vocab_size", "key_tokens", "key_length", "values", "max_version")
    for k in knobs:
        if not _count(vocab.get(k), _VOCAB_MAX):
            raise bad(f"vocab {k!r} is {printable(vocab.get(k))}, not a count")
    try:
        expected = Vocab.from_dict(vocab).to_dict()
    except UsageError as e:
        raise bad(f"vocab: {e.message}") from None
    if expected["key_space"] > _VOCAB_MAX or vocab != expected:
        diff = sorted(k for k in set(expected) | set(vocab) if vocab.get(k) != expected.get(k))
        raise bad(f"vocab entries {', '.join(printable(k) for k in diff[:4])} differ from what its knobs give")


@dataclass
class Dataset:
    """An open dataset folder: its manifest, and tables per config."""

    root: Path
    manifest: dict

    @classmethod
    def open(cls, root: str | Path) -> Dataset:
        root = Path(root)
        path = root / MANIFEST
        if not path.is_file():
            raise DataError(f"{root}: not a memgen dataset (no {MANIFEST})")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise DataError(f"{path}: larger than {MAX_MANIFEST_BYTES >> 20} MiB; not a memgen manifest")
        manifest = parse_manifest(path.read_bytes(), str(path))
        if not isinstance(manifest, dict) or "configs" not in manifest:
            raise DataError(f"{path}: not a memgen manifest (no 'configs')")
        if manifest.get("status") != "complete":
            raise DataError(f"{root}: generation did not finish; re-run the same generate command to resume")
        check_manifest(manifest, str(path))
        return cls(root, manifest)

    @property
    def configs(self) -> list[str]:
        return list(self.manifest["configs"])

    @property
    def vocab(self) -> dict | None:
        return self.manifest.get("vocab")

    def config(self, name: str) -> dict:
        try:
            return self.manifest["configs"][name]
        except KeyError:
            raise UsageError(f"{self.root}: no config {name!r}; it has: {', '.join(self.configs)}") from None

    def shard_paths(self, name: str) -> list[Path]:
        return [self.root / s["path"] for s in self.config(name)["shards"]]

    def iter_tables(self, name: str) -> Iterator[pa.Table]:
        """The shards of config ``name`` in order, as readers see them (text rows with their
        ``prompt`` rebuilt, :func:`memgen.io.shards.read_shard`)."""
        for path in self.shard_paths(name):
            yield read_shard(path)

    def table(self, name: str) -> pa.Table:
        tables = list(self.iter_tables(name))
        if tables:
            return pa.concat_tables(tables)
        from memgen.render.columns import with_prompt

        return with_prompt(schema_for(self.config(name)["rendering"], manifest_vocab_size(self.manifest)).empty_table())


def verify(root: str | Path) -> list[str]:
    """Every problem found in a dataset folder, one line each (empty: the folder is sound).

    Checks that the manifest parses, every shard it lists exists with the recorded sha256,
    size, row count and the rendering's schema, that no shard or temporary file is present
    that the manifest does not list, and that the card lists the same configs."""
    root = Path(root)
    try:
        ds = Dataset.open(root)
    except DataError as e:
        return [e.message]
    problems: list[str] = []
    listed: set[Path] = set()
    for cfg in ds.manifest["configs"].values():
        expected = schema_for(cfg["rendering"], manifest_vocab_size(ds.manifest))
        for s in cfg["shards"]:
            path = root / s["path"]
            listed.add(path)
            if path.is_symlink() or path.parent.is_symlink() or (path.exists() and not path.is_file()):
                problems.append(f"{s['path']}: not a plain file (a link, a folder or a device)")
                continue
            if not path.is_file():
                problems.append(f"{s['path']}: missing")
                continue
            if path.stat().st_size != s["bytes"]:
                problems.append(f"{s['path']}: size {path.stat().st_size} != {s['bytes']} in manifest")
                continue
            if sha256_file(path) != s["sha256"]:
                problems.append(f"{s['path']}: sha256 mismatch (corrupted or modified)")
                continue
            try:
                schema, rows = shard_info(path)
            except DataError as e:
                problems.append(f"{s['path']}: unreadable ({e.message})")
                continue
            if not schema.equals(expected):
                problems.append(f"{s['path']}: schema differs from the {cfg['rendering']} rendering's")
            if rows != s["rows"]:
                problems.append(f"{s['path']}: {rows} rows, manifest says {s['rows']}")
    data = root / "data"
    if data.is_symlink():
        problems.append("data: a link; the shards must lie in the dataset folder")
    elif data.is_dir():
        for path in sorted(data.rglob("*")):
            if path.is_symlink() and path not in listed:
                problems.append(f"{path.relative_to(root)}: a link, not listed in the manifest")
            elif path.is_file() and path not in listed:
                problems.append(f"{path.relative_to(root)}: not listed in the manifest")
    problems += _card_problems(root, ds)
    return problems


def _card_problems(root: Path, ds: Dataset) -> list[str]:
    """What is wrong with the card of ``ds``: it must list the manifest's configs, each with
    ``data_files`` patterns inside ``data/<config>/`` that match exactly the shards the manifest
    lists, the row counts the manifest records, and the manifest's content checksum."""
    from memgen.io.card import card_front, card_manifest_sha256, manifest_sha256

    card = root / CARD
    if not card.is_file() or card.is_symlink():
        return [f"{CARD}: missing (or not a plain file)"]
    try:
        text = card.read_text(encoding="utf-8")
        front = card_front(text)
    except (ValueError, OSError) as e:  # UnicodeDecodeError is a ValueError
        return [f"{CARD}: {e}"]
    names = [c.get("config_name") for c in front["configs"]]
    if sorted(map(str, names)) != sorted(ds.configs):
        return [f"{CARD}: configs {printable(names, 200)} differ from the manifest's {sorted(ds.configs)}"]
    problems = []
    # integrity, not authenticity: whoever can edit both files can recompute it; a hand-made card
    # that states none is held to the other rules
    recorded = card_manifest_sha256(text)
    if recorded is not None and recorded != manifest_sha256(ds.manifest):
        problems.append(f"{CARD}: the manifest's content checksum is different (manifest.json or the card was "
                        "changed after generation)")
    for entry in front["configs"]:
        name = entry["config_name"]
        listed = {s["path"] for s in ds.config(name)["shards"]}
        matched: set[str] = set()
        for pattern in _patterns(entry.get("data_files")):
            parts = pattern.split("/") if isinstance(pattern, str) else []
            if len(parts) != 3 or parts[:2] != ["data", name] or parts[2] in ("", ".", ".."):
                problems.append(f"{CARD}: config {name}: data_files {printable(pattern)} is not a pattern inside "
                                f"data/{name}/")
                continue
            matched |= {p.relative_to(root).as_posix() for p in (root / "data" / name).glob(parts[2])}
        if matched != listed:
            problems.append(f"{CARD}: config {name}: data_files match {len(matched)} files, not the "
                            f"{len(listed)} shards the manifest lists")
    for info in front.get("dataset_info") or []:
        name = info.get("config_name") if isinstance(info, dict) else None
        if name not in ds.configs:
            continue
        counts = [s.get("num_examples") if isinstance(s, dict) else None for s in info.get("splits") or []]
        rows = sum(counts) if all(_count(n) for n in counts) else counts
        if rows != ds.config(name)["rows"]:
            problems.append(f"{CARD}: config {name}: {printable(rows)} rows in dataset_info, the manifest has "
                            f"{ds.config(name)['rows']}")
    return problems


def _patterns(data_files: object) -> list[object]:
    """The path patterns of one config's ``data_files`` (a string, a list, or split entries)."""
    out: list[object] = []
    for entry in data_files if isinstance(data_files, list) else [data_files]:
        paths = entry.get("path") if isinstance(entry, dict) else entry
        out += paths if isinstance(paths, list) else [paths]
    return out


def open_verified(root: str | Path, check: bool = True) -> Dataset:
    """Open a dataset folder that passes :func:`verify` (skipped with ``check=False``);
    DataError naming the first problem."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such dataset folder")
    problems = verify(root) if check else []
    if problems:
        more = f" (and {len(problems) - 1} more; run memgen verify {root})" if len(problems) > 1 else ""
        raise DataError(f"{root}: fails verification: {problems[0]}{more}")
    return Dataset.open(root)
