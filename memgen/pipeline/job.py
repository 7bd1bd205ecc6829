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
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from memgen import __version__
from memgen.format.errors import DataError, UsageError
from memgen.format.versions import GENERATOR_VERSION, SCHEMA_VERSION
from memgen.io.atomic import TMP_MARK
from memgen.io.card import render_card
from memgen.io.dataset import CARD, MANIFEST, parse_manifest
from memgen.io.store import Store, open_store
from memgen.ir.rng import derive_seed
from memgen.pipeline.build import build_blocks, warm_kernels
from memgen.pipeline.request import Request, ShardTask, family_plan, resolved_knobs, tasks, validate


def run_task(req: Request, task: ShardTask, root: str | Path | Store, recorded: dict | None = None,
             writer_thread: bool = False) -> dict:
    """Make one shard under ``root`` (a folder, URL or Store); returns its manifest entry
    ``{path, rows, sha256, bytes}``.  With ``writer_thread``, blocks are encoded and written by a
    second thread while the next is built (:func:`_pipelined`), as one worker of several does.

    A file already at the shard's path is kept only when its size and sha256 match ``recorded``
    (the entry an interrupted run put in its manifest); anything else there (a shard renamed into
    place just before a crash, a file changed by hand) is rebuilt.  Both give the same bytes,
    because a shard is a pure function of (request, task)."""
    store = open_store(root)
    if writer_thread:
        with contextlib.closing(_pipelined(req, store, [(task, recorded)])) as results:
            return next(results)[1]
    kept = _kept(task, store, recorded)
    if kept is not None:
        return kept
    return _entry(task, *store.write_shard(task.path, build_blocks(req, task), req.format))


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
    """One worker: yield ``(item, entry)`` like :func:`memgen.pipeline.engines.map_tasks`, building
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

    from memgen.io.atomic import PendingFile
    from memgen.io.shards import ShardEncoder

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
                        enc = ShardEncoder(out, req.format)
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
        c = configs.get(t.config)
        if c is None:
            knobs = resolved_knobs(family_plan(req, t.family, t.length), req.knobs.query_position)
            c = configs[t.config] = {
                "family": t.family, "rendering": t.rendering, "length": t.length, "rows": 0,
                "seed": derive_seed("episode", req.seed, t.family), "knobs": knobs, "shards": []}
        c["rows"] += t.rows
        if t.path in entries:
            c["shards"].append(entries[t.path])
    out = {
        "memgen_version": __version__,
        "generator_version": GENERATOR_VERSION,
        "schema_version": SCHEMA_VERSION,
        # Parquet's footer names the writer's version, so the shard bytes are those of this pyarrow
        "shard_writer": f"pyarrow {pa.__version__}",
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
    old = parse_manifest(store.read_bytes(MANIFEST), f"{store}/{MANIFEST}")
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
    :func:`memgen.pipeline.engines.map_tasks`); ``on_shard`` is called in this process as each finishes.
    With one local worker, a writer thread encodes, hashes and writes each block of a shard
    while the next is built (``writer_thread=False``: build and write in turn, one core).  The output bytes (shards,
    manifest, card) are the same for every engine and worker count.
    While shards are made the manifest says ``incomplete`` and records the finished ones (at most
    :data:`CHECKPOINT_S` behind), so a re-run after a crash keeps them after checking their sha256.
    Bad arguments raise UsageError before anything is written; the few that only a shard task can
    detect (a text episode that does not fit its length) leave no trace in a folder this call
    created, so the corrected command can use the same ``out``."""
    from memgen.pipeline.engines import check_engine, engine_session

    validate(req)
    check_engine(engine, workers, address)
    store = open_store(out)
    if not store.shared and (engine != "local" or (workers or 1) > 1):
        raise UsageError(f"--out {store}: this filesystem lives in one process's memory, so workers "
                         "cannot write to it; use --workers 1 or a shared path")
    existed, fresh = store.exists(), store.is_empty()
    with engine_session(engine, workers, address), store.lock():
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
    from memgen.pipeline.engines import map_tasks, size_workers

    _clean_tmp(store)
    finished = _finished(req, store, recorded)
    if finished is not None:  # a re-run of a complete job: checked, and nothing rewritten
        return finished
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
    if engine == "local":
        plan = size_workers(workers, len(todo), writer_thread=writer_thread)
        run = functools.partial(_run_item, req, store, plan.writer_thread)
        if plan.processes == 1 and plan.writer_thread:
            shards = _pipelined(req, store, todo)
        else:
            shards = map_tasks(run, todo, plan.processes, engine, address, init=warm_kernels)
    else:
        shards = map_tasks(functools.partial(_run_item, req, store, False), todo, workers, engine, address,
                           init=warm_kernels)
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


def _finished(req: Request, store: Store, recorded: dict[str, dict]) -> dict | None:
    """The manifest already in ``store`` when it records this request as complete, with its card
    and every shard intact (size and sha256); else None.  A re-run of a finished job then never
    marks the dataset incomplete, even for a moment (killed then, it stays complete)."""
    if not recorded or not store.is_file(CARD):
        return None
    manifest = parse_manifest(store.read_bytes(MANIFEST), f"{store}/{MANIFEST}")
    if not isinstance(manifest, dict) or manifest.get("status") != "complete":
        return None
    todo = tasks(req)
    if len(todo) != len(recorded) or any(_kept(t, store, recorded.get(t.path)) is None for t in todo):
        return None
    return manifest


def _run_item(req: Request, store: Store, writer_thread: bool, item: tuple[ShardTask, dict | None]) -> dict:
    return run_task(req, item[0], store, item[1], writer_thread)


def _clean_tmp(root: str | Path | Store) -> None:
    """Remove temporary files an interrupted run left behind."""
    store = open_store(root)
    for rel in store.files():
        if TMP_MARK in rel.rpartition("/")[2]:
            store.remove(rel)
