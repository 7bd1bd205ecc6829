"""``generate``: configs -> shard tasks -> shards, manifest and card (the library API behind
``memgen generate``; a notebook calls :func:`generate` the same way).

Each config is one family x rendering x length.  Its episodes are cut into shards of
``shard_size`` rows; a shard is a pure function of (request, config, shard index), so shards
can be made in any order, by any number of workers, and skipped when they already exist.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import pyarrow as pa

from . import GENERATOR_VERSION, SCHEMA_VERSION, __version__
from .errors import DataError, UsageError
from .generators import Knobs, build_program, get_family
from .io.card import render_card
from .io.dataset import CARD, MANIFEST, TMP_MARK, shard_name
from .io.store import Store, open_store
from .ir import DISTRACTOR_KINDS
from .render import MIN_LENGTH, Batch, RenderOptions, available, get_rendering
from .render.vocab import Vocab
from .rng import Streams, derive_seed, episode_seeds

#: longest episode: Arrow's list offsets are int32, so one row holds fewer than 2**31 tokens
MAX_LENGTH = (1 << 31) - 1
#: tokens per shard when --shard-size is not given: bounds a worker's memory at any length
SHARD_TOKENS = 1 << 22
#: items (events and queries) built at once inside a shard: small enough for the CPU cache.
#: Each block is one record batch of its shard, so changing this changes the shard bytes.
BLOCK_ITEMS = 1 << 16


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
    for what, names in (("--family", req.families), ("--rendering", req.renderings), ("--length", req.lengths)):
        if not names:
            raise UsageError(f"{what}: give at least one")
    for f in req.families:
        get_family(f)
    for r in req.renderings:
        get_rendering(r)
    if req.episodes < 1:
        raise UsageError("--episodes must be at least 1")
    if req.shard_size is not None and req.shard_size < 1:
        raise UsageError("--shard-size must be at least 1")
    if not re.fullmatch(r"[A-Za-z0-9_]+", req.split):  # the shard names' pattern (io.dataset.SHARD_RE)
        raise UsageError(f"--split {req.split!r}: use letters, digits and underscores")
    if req.knobs.query_position not in ("end", "interleaved"):
        raise UsageError("--query-position must be end or interleaved")
    d0, d1 = req.render.depth
    if not 0.0 <= d0 < d1 <= 1.0:
        raise UsageError("--depth must be two fractions 0 <= lo < hi <= 1")
    o = req.render
    if min(o.chunk_size, o.layout_chunk, o.segments) < 1:
        raise UsageError("--chunk-size, --layout-chunk and --segments must be at least 1")
    if not o.alpha > 0:
        raise UsageError(f"--alpha {o.alpha}: the power-law exponent must be > 0")
    if req.knobs.max_version < 1:
        raise UsageError("--max-version must be at least 1")
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
            if length > MAX_LENGTH:
                raise UsageError(f"--length {length} is too long: at most {MAX_LENGTH:,} tokens per episode")
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


def build_shard(req: Request, task: ShardTask, block_items: int | None = None):
    """The Arrow table of one shard (pure: same request and task, same table): the blocks of
    :func:`build_blocks`, one chunk each."""
    tables = list(build_blocks(req, task, block_items))
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def build_blocks(req: Request, task: ShardTask, block_items: int | None = None):
    """The shard's episodes as tables of about ``block_items`` items (events and queries;
    ``BLOCK_ITEMS`` by default), in order.

    Blocks keep the numpy arrays of a build in the CPU cache, and each becomes one record
    batch of the shard: joining them would copy the whole shard into fresh memory.  The blocks
    are fixed by the config (``BLOCK_ITEMS`` and the items per episode), so the bytes are the
    same on every run; each episode depends only on its own seed, so its rows do not depend on
    the block size."""
    plan = get_family(task.family)(req.knobs, task.length)
    base = derive_seed("episode", req.seed, task.family)
    per = max(1, (block_items or BLOCK_ITEMS) // (plan.events + plan.queries))
    for start in range(task.start, task.start + task.rows, per):
        yield _build_block(req, task, plan, base, start, min(per, task.start + task.rows - start))


def warm_kernels() -> None:
    """Load every compiled twin now (numba's import and its disk cache, about half a second; the
    first time on a machine, compiling): build one small block of each token rendering with
    every batch compiled.  A no-op where the twins are off."""
    from . import jit

    if not jit.available():
        return
    req = Request(families=("mixed",), renderings=("token", "chunk", "bridge"), lengths=(2048,), episodes=2)
    with jit.everywhere():
        for task in tasks(req):
            build_shard(req, task)


def _build_block(req: Request, task: ShardTask, plan, base: int, start: int, rows: int):
    seeds = episode_seeds(base, start, rows)
    vocab = req.render.vocab
    program = build_program(plan, Streams(seeds), vocab.key_space, vocab.key_tokens, vocab.values)
    ids = [f"{task.config}-{i:07d}" for i in range(start, start + rows)]
    batch = Batch(program=program, seeds=seeds, ids=ids, family=task.family, target_length=task.length)
    return get_rendering(task.rendering)(batch, req.render)


def run_task(req: Request, task: ShardTask, root: str | Path | Store, recorded: dict | None = None) -> dict:
    """Make one shard under ``root`` (a folder, URL or Store); returns its manifest entry
    ``{path, rows, sha256, bytes}``.

    A file already at the shard's path is kept only when its size and sha256 match ``recorded``
    (the entry an interrupted run put in its manifest); anything else there (a shard renamed into
    place just before a crash, a file changed by hand) is rebuilt.  Both give the same bytes,
    because a shard is a pure function of (request, task)."""
    store = open_store(root)
    kept = _kept(task, store, recorded)
    if kept is not None:
        return kept
    return _entry(task, *store.write_shard(task.path, build_blocks(req, task)))


def _kept(task: ShardTask, store: Store, recorded: dict | None) -> dict | None:
    """The manifest entry of the shard already at ``task.path`` if it is the one ``recorded``."""
    if (recorded is not None and recorded.get("rows") == task.rows
            and store.size(task.path) == recorded.get("bytes")
            and store.sha256(task.path) == recorded.get("sha256")):
        return _entry(task, recorded["sha256"], recorded["bytes"])
    return None


def _entry(task: ShardTask, sha256: str, size: int) -> dict:
    """A shard's manifest entry."""
    return {"path": task.path, "rows": task.rows, "sha256": sha256, "bytes": size}


def _pipelined(req: Request, store: Store, todo: list[tuple[ShardTask, dict | None]]):
    """One worker: yield ``(item, entry)`` like :func:`memgen.engines.map_tasks`, building
    blocks in this thread while a writer thread encodes each finished block, hashes it and
    writes it to the shard's temporary file, and at the end of a shard writes the footer and
    renames the file into place.

    The two stages overlap because the heavy parts of both (numpy and the compiled kernels,
    Arrow's zstd, sha256, file I/O) release the GIL.  At most ``AHEAD`` blocks wait for the
    writer, so memory stays bounded; a write error stops the run at the next block, and a
    run that stops for any reason removes its unfinished temporary files.  Bytes and order
    are those of the plain loop."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from .io.dataset import PendingFile, ShardEncoder

    def finish(task: ShardTask, enc: ShardEncoder, out: PendingFile) -> dict:
        digest, size = enc.finish()
        out.commit()
        return _entry(task, digest, size)

    inflight: deque = deque()  # futures of the writer, oldest first
    pending = None  # (item, future of its entry): the shard being finished
    open_files: list[PendingFile] = []  # shards started and not yet committed
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="memgen-writer") as writer:
            try:
                for item in todo:
                    task, recorded = item
                    kept = _kept(task, store, recorded)
                    if kept is None:
                        open_files = [f for f in open_files if not f.done]
                        out = store.open_pending(task.path)
                        open_files.append(out)
                        enc = ShardEncoder(out)
                        for block in build_blocks(req, task):
                            inflight.append(writer.submit(enc.add, block))
                            del block
                            while len(inflight) > AHEAD or (inflight and inflight[0].done()):
                                inflight.popleft().result()  # raises a write error here
                    if pending is not None:
                        yield pending[0], pending[1].result()
                        pending = None
                    if kept is not None:
                        yield item, kept
                        continue
                    pending = (item, writer.submit(finish, task, enc, out))
                    inflight.append(pending[1])
                if pending is not None:
                    yield pending[0], pending[1].result()
                    pending = None
            finally:
                for f in inflight:  # closed early: what is queued is dropped
                    f.cancel()
    finally:  # the writer has stopped: remove what it did not finish
        for f in open_files:
            f.abort()


#: blocks built ahead of the writer (memory: a few blocks, not whole shards)
AHEAD = 2


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


def prepare_output(req: Request, root: str | Path | Store) -> dict[str, dict]:
    """Create the output folder, or check that it holds this same request (then we resume).

    Returns the shard entries that an earlier, interrupted run of the request recorded in its
    manifest (keyed by shard path; empty for a new folder).  Raises UsageError for a folder that
    holds something else, DataError for a manifest that does not parse; writes nothing then."""
    store = open_store(root)
    if store.is_empty():
        store.make_root()
        return {}
    if not store.is_file(MANIFEST):
        raise UsageError(f"--out {store}: folder is not empty and holds no memgen dataset; "
                         "choose an empty or new folder")
    try:
        old = json.loads(store.read_text(MANIFEST))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError(f"{store}/{MANIFEST}: malformed JSON; remove the folder or choose another --out") \
            from None
    if not isinstance(old, dict):
        raise DataError(f"{store}/{MANIFEST}: not a memgen manifest; remove the folder or choose another "
                        "--out")
    same = (old.get("config") == json.loads(json.dumps(req.to_dict()))
            and old.get("generator_version") == GENERATOR_VERSION)
    if not same:
        raise UsageError(f"--out {store}: holds another dataset (different command or memgen "
                         "version); choose another folder")
    try:
        return {s["path"]: s for c in old["configs"].values() for s in c["shards"]
                if isinstance(s, dict) and isinstance(s.get("path"), str)}
    except (KeyError, TypeError, AttributeError):
        return {}  # an unreadable record only costs rebuilding those shards


#: seconds between manifest checkpoints while shards are being made
CHECKPOINT_S = 1.0


def generate(req: Request, out: str | Path | Store, workers: int | None = 1,
             on_shard: Callable[[ShardTask, dict], None] | None = None,
             engine: str = "local", address: str | None = None, writer_thread: bool = True) -> dict:
    """Generate (or resume) the dataset of ``req`` under ``out``; returns the manifest.

    ``out`` is a folder, a ``file://`` URL or any fsspec/pyarrow URL.  Shards are made by
    ``engine`` (``local``: ``workers`` processes; ``ray``: the Ray cluster at ``address``, see
    :func:`memgen.engines.map_tasks`); ``on_shard`` is called in this process as each finishes.
    With one local worker, a writer thread encodes, hashes and writes each block of a shard
    while the next is built (``writer_thread=False``: build and write in turn, one core).  The output bytes (shards,
    manifest, card) are the same for every engine and worker count.
    While shards are made the manifest says ``incomplete`` and records the finished ones (at most
    :data:`CHECKPOINT_S` behind), so a re-run after a crash keeps them after checking their sha256.
    Bad arguments raise UsageError before anything is written; the few that only a shard task can
    detect (a text episode that does not fit its length) leave no trace in a folder this call
    created, so the corrected command can use the same ``out``."""
    from .engines import check_engine, engine_session

    validate(req)
    check_engine(engine, workers, address)
    store = open_store(out)
    if not store.shared and (engine != "local" or (workers or 1) > 1):
        raise UsageError(f"--out {store}: this filesystem lives in one process's memory, so workers "
                         "cannot write to it; use --workers 1 or a shared path")
    with engine_session(engine, workers, address):
        existed, fresh = store.exists(), store.is_empty()
        recorded = prepare_output(req, store)
        try:
            return _make(req, store, recorded, workers, engine, address, on_shard, writer_thread)
        except UsageError:
            if fresh:  # these arguments cannot make this dataset: leave the folder as it was
                store.remove_tree()
                if existed:
                    store.make_root()
            raise


def _make(req: Request, store: Store, recorded: dict[str, dict], workers: int | None, engine: str,
          address: str | None, on_shard: Callable[[ShardTask, dict], None] | None,
          writer_thread: bool = True) -> dict:
    """The body of :func:`generate` once the output folder is prepared."""
    from .engines import map_tasks

    _clean_tmp(store)
    entries: dict[str, dict] = {}

    def checkpoint(status: str) -> dict:
        manifest = _manifest(req, {**recorded, **entries} if status != "complete" else entries, status)
        if status == "complete":
            store.write_text(CARD, render_card(manifest))
        store.write_text(MANIFEST, json.dumps(manifest, indent=1))
        return manifest

    checkpoint("incomplete")
    last = time.monotonic()
    todo = [(t, recorded.get(t.path)) for t in tasks(req)]
    run = functools.partial(_run_item, req, store)
    if writer_thread and engine == "local" and (workers is None or workers <= 1):
        shards = _pipelined(req, store, todo)
    else:
        shards = map_tasks(run, todo, workers, engine, address)
    # closing(): on any error here the workers stop before the caller looks at the folder
    with contextlib.closing(shards) as results:
        for (task, _), entry in results:
            if engine != "local" and store.size(task.path) != entry["bytes"]:
                raise DataError(f"{store}/{task.path}: written by a {engine} worker but not visible here; "
                                "--out must be a filesystem every node shares (NFS) or an object-store URL")
            entries[task.path] = entry
            if on_shard:
                on_shard(task, entry)
            if time.monotonic() - last >= CHECKPOINT_S:
                checkpoint("incomplete")
                last = time.monotonic()
    return checkpoint("complete")


def _run_item(req: Request, store: Store, item: tuple[ShardTask, dict | None]) -> dict:
    return run_task(req, item[0], store, item[1])


def _clean_tmp(root: str | Path | Store) -> None:
    """Remove temporary files an interrupted run left behind."""
    store = open_store(root)
    for rel in store.files():
        if TMP_MARK in rel.rpartition("/")[2]:
            store.remove(rel)


def load_request(root: str | Path) -> Request:
    m = json.loads((Path(root) / MANIFEST).read_text())
    return Request.from_dict(m["config"])


__all__ = ["Request", "ShardTask", "available", "build_shard", "generate", "tasks", "validate"]
