"""Building one shard: its episodes in blocks of about ``BLOCK_ITEMS`` items (a family's plan,
each episode's own random streams, the replayed program, the rendering, in its stored form),
each block one row group (Parquet) or record batch (Arrow) of the shard."""

from __future__ import annotations

import pyarrow as pa

from memgen.generators.build import build_program
from memgen.ir.rng import Streams, derive_seed, episode_seeds
from memgen.pipeline.request import Request, ShardTask, family_plan, tasks
from memgen.render.columns import stored_prompt
from memgen.render.registry import Batch, get_rendering

#: items (events and queries) built at once inside a shard: small enough for the CPU cache.
#: Each block is one row group (record batch) of its shard, so changing this changes the shard bytes.
BLOCK_ITEMS = 1 << 16


def build_shard(req: Request, task: ShardTask, block_items: int | None = None):
    """The Arrow table of one shard (pure: same request and task, same table): the blocks of
    :func:`build_blocks`, one chunk each."""
    tables = list(build_blocks(req, task, block_items))
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def build_blocks(req: Request, task: ShardTask, block_items: int | None = None):
    """The shard's episodes as tables of about ``block_items`` items (events and queries;
    ``BLOCK_ITEMS`` by default), in order.

    Blocks keep the numpy arrays of a build in the CPU cache, and each becomes one row group (or
    record batch) of the shard: joining them would copy the whole shard into fresh memory.  The blocks
    are fixed by the config (``BLOCK_ITEMS`` and the items per episode), so the bytes are the
    same on every run; each episode depends only on its own seed, so its rows do not depend on
    the block size."""
    plan = family_plan(req, task.family, task.length)
    base = derive_seed("episode", req.seed, task.family)
    per = max(1, (block_items or BLOCK_ITEMS) // (plan.events + plan.queries))
    for start in range(task.start, task.start + task.rows, per):
        yield _build_block(req, task, plan, base, start, min(per, task.start + task.rows - start))


def warm_kernels() -> None:
    """Load every compiled twin now (numba's import and its disk cache, about half a second; the
    first time on a machine, compiling): build one small block of each token rendering with
    every batch compiled.  A no-op where the twins are off."""
    from memgen.ir import jit

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
    return stored_prompt(get_rendering(task.rendering)(batch, req.render))
