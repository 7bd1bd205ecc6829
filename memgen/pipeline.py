"""``generate``: configs -> shard tasks -> shards, manifest and card (the library API behind
``memgen generate``; a notebook calls :func:`generate` the same way).

Each config is one family x rendering x length.  Its episodes are cut into shards of
``shard_size`` rows; a shard is a pure function of (request, config, shard index), so shards
can be made in any order, by any number of workers, and skipped when they already exist.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from . import GENERATOR_VERSION, SCHEMA_VERSION, __version__
from .errors import DataError, UsageError
from .generators import Knobs, build_program, get_family
from .io.card import render_card
from .io.dataset import CARD, MANIFEST, TMP_MARK, atomic_write_text, sha256_file, shard_name, write_shard
from .ir import DISTRACTOR_KINDS
from .render import MIN_LENGTH, Batch, RenderOptions, available, get_rendering
from .render.vocab import Vocab
from .rng import Streams, derive_seed, episode_seeds

#: tokens per shard when --shard-size is not given: bounds a worker's memory at any length
SHARD_TOKENS = 1 << 24


@dataclass(frozen=True)
class Request:
    """Everything that decides the output bytes of ``memgen generate``."""

    families: tuple[str, ...]
    renderings: tuple[str, ...] = ("token",)
    lengths: tuple[int, ...] = (4096,)
    episodes: int = 100
    seed: int = 0
    split: str = "test"
    shard_size: int | None = None
    knobs: Knobs = field(default_factory=Knobs)
    render: RenderOptions = field(default_factory=RenderOptions)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["render"]["depth"] = list(self.render.depth)
        d["knobs"]["distractor_kinds"] = list(self.knobs.distractor_kinds)
        for k in ("families", "renderings", "lengths"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Request:
        knobs = Knobs(**{**d["knobs"], "distractor_kinds": tuple(d["knobs"]["distractor_kinds"])})
        r = dict(d["render"])
        r["vocab"] = Vocab(**r["vocab"])
        r["depth"] = tuple(r["depth"])
        return cls(families=tuple(d["families"]), renderings=tuple(d["renderings"]),
                   lengths=tuple(d["lengths"]), episodes=d["episodes"], seed=d["seed"],
                   split=d["split"], shard_size=d["shard_size"], knobs=knobs,
                   render=RenderOptions(**r))

    def shard_rows(self, length: int) -> int:
        return self.shard_size or max(1, min(10_000, SHARD_TOKENS // length))

    def command(self) -> str:
        """The canonical command line that reproduces this request."""
        parts = ["memgen generate"]
        parts += [f"--family {f}" for f in self.families]
        parts += [f"--rendering {r}" for r in self.renderings]
        parts += [f"--length {n}" for n in self.lengths]
        parts += [f"--episodes {self.episodes}", f"--seed {self.seed}", f"--split {self.split}"]
        if self.shard_size:
            parts.append(f"--shard-size {self.shard_size}")
        default_k, default_r = Knobs(), RenderOptions()
        for f in fields(Knobs):
            v = getattr(self.knobs, f.name)
            if v != getattr(default_k, f.name):
                v = ",".join(v) if isinstance(v, tuple) else v
                parts.append(f"--{f.name.replace('_', '-')} {v}")
        for f in fields(RenderOptions):
            v = getattr(self.render, f.name)
            if f.name == "vocab":
                for g in fields(Vocab):
                    if getattr(v, g.name) != getattr(default_r.vocab, g.name):
                        parts.append(f"--{g.name.replace('_', '-')} {getattr(v, g.name)}")
            elif v != getattr(default_r, f.name):
                v = f"{v[0]},{v[1]}" if isinstance(v, tuple) else v
                parts.append(f"--{f.name.replace('_', '-')} {v}")
        return " ".join(parts) + " --out DIR"


@dataclass(frozen=True)
class ShardTask:
    config: str
    family: str
    rendering: str
    length: int
    index: int
    count: int  # shards in the config
    start: int  # first episode
    rows: int
    split: str

    @property
    def path(self) -> str:
        return f"data/{self.config}/{shard_name(self.split, self.index, self.count)}"


def config_name(family: str, rendering: str, length: int) -> str:
    return f"{family}-{rendering}-{length}"


def validate(req: Request) -> None:
    """Raise UsageError for anything that cannot be generated, before any file is written."""
    for f in req.families:
        get_family(f)
    for r in req.renderings:
        get_rendering(r)
    if req.episodes < 1:
        raise UsageError("--episodes must be at least 1")
    if req.shard_size is not None and req.shard_size < 1:
        raise UsageError("--shard-size must be at least 1")
    if not req.split.replace("_", "").isalnum():
        raise UsageError(f"--split {req.split!r}: use letters, digits and underscores")
    if req.knobs.query_position not in ("end", "interleaved"):
        raise UsageError("--query-position must be end or interleaved")
    d0, d1 = req.render.depth
    if not 0.0 <= d0 < d1 <= 1.0:
        raise UsageError("--depth must be two fractions 0 <= lo < hi <= 1")
    if req.knobs.max_version > req.render.vocab.max_version:
        raise UsageError("--max-version exceeds the vocabulary's ask-version markers")
    bad = [k for k in req.knobs.distractor_kinds if k not in DISTRACTOR_KINDS]
    if bad:
        raise UsageError(f"unknown distractor kind(s) {', '.join(bad)}; choose from {', '.join(DISTRACTOR_KINDS)}")
    vocab = req.render.vocab
    for family in req.families:
        for length in req.lengths:
            if length < 64:
                raise UsageError(f"--length {length} is too short: use at least 64 tokens")
            plan = get_family(family)(req.knobs, length)
            plan.check(vocab.key_space, vocab.values)
            n_items = plan.events + plan.queries
            tail = 0 if plan.interleaved else plan.queries
            for r in req.renderings:
                need = MIN_LENGTH.get(r, lambda *a: 0)(n_items, tail, req.render)
                if need > length:
                    raise UsageError(
                        f"--length {length} is too short for {family} ({plan.events} events, "
                        f"{plan.queries} queries) in the {r} rendering: it needs at least {need} tokens; "
                        f"raise --length or lower --keys/--queries")


def tasks(req: Request) -> list[ShardTask]:
    out = []
    for family in req.families:
        for rendering in req.renderings:
            for length in req.lengths:
                name = config_name(family, rendering, length)
                per = req.shard_rows(length)
                n = -(-req.episodes // per)
                for i in range(n):
                    start = i * per
                    out.append(ShardTask(name, family, rendering, length, i, n, start,
                                         min(per, req.episodes - start), req.split))
    return out


def build_shard(req: Request, task: ShardTask):
    """The Arrow table of one shard (pure: same request and task, same table)."""
    plan = get_family(task.family)(req.knobs, task.length)
    base = derive_seed("episode", req.seed, task.family)
    seeds = episode_seeds(base, task.start, task.rows)
    vocab = req.render.vocab
    program = build_program(plan, Streams(seeds), vocab.key_space, vocab.key_tokens, vocab.values)
    ids = [f"{task.config}-{i:07d}" for i in range(task.start, task.start + task.rows)]
    batch = Batch(program=program, seeds=seeds, ids=ids, family=task.family, target_length=task.length)
    return get_rendering(task.rendering)(batch, req.render)


def run_task(req: Request, task: ShardTask, root: Path) -> dict:
    """Make one shard unless it is already there; returns its manifest entry."""
    path = root / task.path
    if path.is_file():
        return {"path": task.path, "rows": task.rows, "sha256": sha256_file(path), "bytes": path.stat().st_size}
    table = build_shard(req, task)
    digest, size = write_shard(path, table)
    return {"path": task.path, "rows": task.rows, "sha256": digest, "bytes": size}


def _manifest(req: Request, entries: dict[str, dict], status: str) -> dict:
    configs: dict[str, dict] = {}
    for t in tasks(req):
        c = configs.setdefault(t.config, {
            "family": t.family, "rendering": t.rendering, "length": t.length, "rows": 0,
            "seed": derive_seed("episode", req.seed, t.family), "shards": []})
        c["rows"] += t.rows
        if t.path in entries:
            c["shards"].append(entries[t.path])
    out = {
        "memgen_version": __version__,
        "generator_version": GENERATOR_VERSION,
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "command": req.command(),
        "config": req.to_dict(),
        "vocab": req.render.vocab.to_dict() if set(req.renderings) - {"text"} else None,
        "configs": configs,
    }
    return out


def prepare_output(req: Request, root: Path) -> None:
    """Create ``root`` or check that it holds this same request (then we resume)."""
    if root.exists() and not root.is_dir():
        raise UsageError(f"--out {root}: exists and is not a folder")
    if root.is_dir() and any(root.iterdir()):
        mpath = root / MANIFEST
        if not mpath.is_file():
            raise UsageError(f"--out {root}: folder is not empty and holds no memgen dataset; "
                             "choose an empty or new folder")
        try:
            old = json.loads(mpath.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise DataError(f"{mpath}: malformed JSON; remove the folder or choose another --out") from None
        same = (old.get("config") == json.loads(json.dumps(req.to_dict()))
                and old.get("generator_version") == GENERATOR_VERSION)
        if not same:
            raise UsageError(f"--out {root}: holds another dataset (different command or memgen "
                             "version); choose another folder")
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test{TMP_MARK}{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"--out {root}: cannot write there ({e.strerror or e})") from None


def generate(req: Request, out: str | Path, workers: int = 1,
             on_shard: Callable[[ShardTask, dict], None] | None = None) -> dict:
    """Generate (or resume) the dataset of ``req`` under ``out``; returns the manifest."""
    validate(req)
    root = Path(out)
    prepare_output(req, root)
    _clean_tmp(root)
    atomic_write_text(root / MANIFEST, json.dumps(_manifest(req, {}, "incomplete"), indent=1))
    entries: dict[str, dict] = {}
    for task, entry in _run_all(req, tasks(req), root, workers):
        entries[task.path] = entry
        if on_shard:
            on_shard(task, entry)
    manifest = _manifest(req, entries, "complete")
    atomic_write_text(root / CARD, render_card(manifest))
    atomic_write_text(root / MANIFEST, json.dumps(manifest, indent=1))
    return manifest


def _run_all(req: Request, todo: list[ShardTask], root: Path, workers: int) -> Iterable[tuple[ShardTask, dict]]:
    if workers <= 1 or len(todo) <= 1:
        for t in todo:
            yield t, run_task(req, t, root)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_task, req, t, root) for t in todo]
        for t, f in zip(todo, futures, strict=True):
            yield t, f.result()


def _clean_tmp(root: Path) -> None:
    """Remove temporary files an interrupted run left behind."""
    for p in root.rglob(f"*{TMP_MARK}*"):
        if p.is_file():
            p.unlink(missing_ok=True)


def load_request(root: str | Path) -> Request:
    m = json.loads((Path(root) / MANIFEST).read_text())
    return Request.from_dict(m["config"])


def stats(table) -> dict:
    """Summary numbers of one config's table (for the CLI's summary)."""
    q = table.column("queries").combine_chunks().flatten()
    probes = q.field("probe").to_numpy(zero_copy_only=False)
    answers = q.field("answer").to_numpy()
    uniq, counts = np.unique(probes, return_counts=True)
    return {"episodes": table.num_rows, "queries": len(probes),
            "absent": int((answers < 0).sum()), "probes": dict(zip(uniq.tolist(), counts.tolist(), strict=True)),
            "events": int(table.column("events").combine_chunks().flatten().__len__())}


__all__ = ["Request", "ShardTask", "available", "build_shard", "generate", "tasks", "validate"]
