"""The compiled twins (memgen.ir.replay_kernel, generators.build's assembly, memgen.render.token_kernel,
render.layout's placement, memgen.ir.rng's draws) against their plain numpy forms: the same arrays,
field by field, on generated batches of every family and on random hand-made episodes; and the
same shard bytes with and without them."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_replay import episodes

from memgen.format.codes import ASK_PREVIOUS, ASK_VERSION, ITEM_QUERY
from memgen.format.vocab import Vocab
from memgen.generators.build import build_program
from memgen.generators.knobs import Knobs
from memgen.generators.registry import get_family
from memgen.io.shards import shard_bytes
from memgen.ir import jit, replay_kernel
from memgen.ir.episode import Episode, Event, Query
from memgen.ir.program import INPUT_FIELDS, Program
from memgen.ir.replay import other_keys_dtype, replay_program
from memgen.ir.rng import Streams, episode_seeds
from memgen.pipeline.build import build_shard
from memgen.pipeline.request import Request, tasks
from memgen.render.registry import RenderOptions

pytestmark = pytest.mark.skipif(not jit.available(), reason="compiled twins off (no numba, or MEMGEN_KERNELS=0)")



def _inputs(p: Program) -> Program:
    """A fresh program with only what generators fill (replay's outputs unset)."""
    return Program(**{f: getattr(p, f).copy() for f in INPUT_FIELDS})


def _assert_same(a: Program, b: Program) -> None:
    for f in ("op", "version", "answer", "probe"):
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and np.array_equal(x, y), f
    assert list(a.traps) == list(b.traps)
    for name in a.traps:
        for x, y in zip(a.traps[name], b.traps[name], strict=True):
            assert x.dtype == y.dtype and np.array_equal(x, y), name
    for x, y in zip(a.evidence_items, b.evidence_items, strict=True):
        assert x.dtype == y.dtype and np.array_equal(x, y), "evidence"


def _both(p: Program) -> tuple[Program, Program]:
    return replay_program(_inputs(p), kernel=False), replay_program(_inputs(p), kernel=True)


@pytest.mark.parametrize("family", ["write", "overwrite", "version", "distractor", "no_write_signal", "discard",
                                    "mixed"])
@pytest.mark.parametrize("position", ["end", "interleaved"])
def test_kernel_replays_generated_batches_like_numpy(family, position):
    vocab = Vocab()
    plan = get_family(family)(Knobs(query_position=position), 2048)
    p = build_program(plan, Streams(episode_seeds(7, 0, 64)), vocab.key_space, vocab.key_tokens, vocab.values)
    a, b = _both(p)
    _assert_same(a, b)
    assert (a.answer[a.item == ITEM_QUERY] >= 0).any()  # the batch asks something answerable


@pytest.mark.parametrize("family", ["write", "overwrite", "version", "distractor", "no_write_signal", "discard",
                                    "mixed"])
@pytest.mark.parametrize("position", ["end", "interleaved"])
def test_compiled_assembly_builds_the_numpy_program(family, position, monkeypatch):
    """build_program's items in reading order, and the asks of end queries, from the compiled
    assembly are the numpy ones, field by field (then replayed alike)."""
    vocab = Vocab()
    plan = get_family(family)(Knobs(query_position=position), 2048)
    progs = []
    for threshold in (0, 1 << 60):  # every batch compiled; none
        monkeypatch.setattr(jit, "MIN_ITEMS", threshold)
        progs.append(build_program(plan, Streams(episode_seeds(9, 0, 48)), vocab.key_space, vocab.key_tokens,
                                   vocab.values))
    a, b = progs
    for f in INPUT_FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and np.array_equal(x, y), f
    _assert_same(a, b)
    if family in ("version", "mixed"):  # version and previous asks were resolved, not only latest
        assert {ASK_VERSION, ASK_PREVIOUS} <= set(a.ask[a.item == ITEM_QUERY].tolist())


def test_kernel_and_numpy_agree_on_wide_value_ids():
    """Value ids past 16 bits: other_keys lists are int32 on both paths (uint16 below)."""
    vocab = Vocab()
    plan = get_family("mixed")(Knobs(query_position="interleaved"), 2048)
    p = _inputs(build_program(plan, Streams(episode_seeds(3, 0, 32)), vocab.key_space, vocab.key_tokens,
                              vocab.values))
    assert other_keys_dtype(p) == np.uint16
    p.value = np.where(p.value >= 0, p.value + 70_000, p.value)
    assert other_keys_dtype(p) == np.int32
    a, b = _both(p)
    _assert_same(a, b)
    assert a.traps["other_keys"][1].dtype == np.int32 and a.traps["other_keys"][1].max() >= 70_000


def test_kernel_handles_the_bench_shape_many_short_items():
    vocab = Vocab()
    plan = get_family("overwrite")(Knobs(keys=64, overwrites=16, queries=64), 1024)
    p = build_program(plan, Streams(episode_seeds(0, 0, 40)), vocab.key_space, vocab.key_tokens, vocab.values)
    _assert_same(*_both(p))


@settings(max_examples=60, deadline=None)
@given(st.lists(episodes(), min_size=1, max_size=6))
def test_kernel_replays_random_episodes_like_numpy(eps):
    p = Program.from_episodes(eps)
    rows = [[v for v in row if v >= 0] for row in p.value]
    a = replay_program(_inputs(p), kernel=False)
    if any(len(r) != len(set(r)) for r in rows):  # a value repeats in an episode: the kernel declines
        assert replay_kernel.replay(p.item, p.key, p.value, p.silent_write, p.ask, p.k) is None
        _assert_same(a, replay_program(_inputs(p), kernel=True))
        return
    _assert_same(a, replay_program(_inputs(p), kernel=True))


def test_kernel_declines_repeated_values():
    ep = Episode(id="x", family="t", events=(Event(op="write", key=1, value=5),
                                               Event(op="write", key=2, value=5)),
                    queries=(Query(qid=0, key=1, after=1),))
    p = Program.from_episode(ep)
    assert replay_kernel.replay(p.item, p.key, p.value, p.silent_write, p.ask, p.k) is None


@pytest.mark.parametrize("family,rendering,length,knobs", [
    ("overwrite", "token", 1024, dict(keys=64, overwrites=16, queries=64)),
    ("mixed", "token", 4096, {}),
    ("mixed", "chunk", 4096, dict(query_position="interleaved")),
    ("discard", "bridge", 8192, {}),
    ("distractor", "token", 2048, {}),
])
def test_shards_are_the_same_bytes_with_or_without_kernels(family, rendering, length, knobs, monkeypatch):
    req = Request(families=(family,), renderings=(rendering,), lengths=(length,), episodes=120, seed=5,
                  knobs=Knobs(**knobs), render=RenderOptions(spacing="powerlaw" if family == "discard" else "uniform"))
    task = tasks(req)[0]
    digests = []
    for threshold in (0, 1 << 60):  # every batch compiled; none
        monkeypatch.setattr(jit, "MIN_ITEMS", threshold)
        digests.append(shard_bytes(build_shard(req, task, block_items=1000))[1])
    assert digests[0] == digests[1]


@pytest.mark.parametrize("n,space", [(64, 65536), (80, 1024), (7, 7), (300, 1000), (5, 3)])
def test_compiled_draws_are_the_numpy_draws(n, space, monkeypatch):
    from memgen.ir.rng import Streams

    s = Streams(episode_seeds(11, 0, 200))
    got = {}
    for threshold in (0, 1 << 60):
        monkeypatch.setattr(jit, "MIN_ITEMS", threshold)
        try:
            perm = s.permutation_index("p", n, space)
        except ValueError:
            perm = None
        got[threshold] = (s.uniform("u", n), s.integers("i", n, 10), s.exponential("e", n), perm)
    a, b = got.values()
    for x, y in zip(a, b, strict=True):
        if x is None:
            assert y is None
        else:
            assert x.dtype == y.dtype and np.array_equal(x, y)
    if a[3] is not None:
        assert all(len(set(row)) == n and max(row) < space for row in a[3].tolist())


@pytest.mark.parametrize("spacing", ["uniform", "powerlaw"])
@pytest.mark.parametrize("position", ["end", "interleaved"])
def test_compiled_placement_is_the_numpy_placement(spacing, position, monkeypatch):
    """render.layout.place: the compiled twin gives the numpy starts, on a grid with a reserved
    first token in some chunks and an offset."""
    from memgen.render.layout import Grid, needed_length, place
    from memgen.render.token import _trailing_queries, item_lengths

    vocab = Vocab()
    plan = get_family("mixed")(Knobs(query_position=position), 4096)
    p = build_program(plan, Streams(episode_seeds(13, 0, 64)), vocab.key_space, vocab.key_tokens, vocab.values)
    lens, tail = item_lengths(p, vocab), _trailing_queries(p)
    C, offset = 64, 5
    T = offset + 2 * needed_length(p.shape[1], int(tail.sum(axis=1).max()), vocab.event_length, C)
    grid = Grid(T, C, offset, np.arange((T - offset) // C) % 3 == 0)
    starts = []
    for threshold in (0, 1 << 60):  # compiled; numpy
        monkeypatch.setattr(jit, "MIN_ITEMS", threshold)
        starts.append(place(Streams(episode_seeds(5, 0, 64)), lens, tail, grid, vocab.event_length,
                            (0.1, 0.9), spacing))
    assert starts[0].dtype == starts[1].dtype and np.array_equal(starts[0], starts[1])
    assert (np.diff(starts[0], axis=1) >= lens[:, :-1]).all()  # items in reading order, never overlapping


def test_compiled_token_writer_writes_the_numpy_tokens():
    """render.token_kernel.write_items writes the ids of render.token.item_tokens, scattered at
    each item's start, and nothing else."""
    from memgen.render import token_kernel
    from memgen.render.token import item_tokens

    vocab = Vocab()
    plan = get_family("mixed")(Knobs(query_position="interleaved"), 2048)
    p = replay_program(build_program(plan, Streams(episode_seeds(17, 0, 32)), vocab.key_space, vocab.key_tokens,
                                     vocab.values))
    tok, lens = item_tokens(p, vocab)
    B, N, M = tok.shape
    start = np.cumsum(lens + 1, axis=1) - lens - 1  # one token between items
    T = int((start + lens).max()) + 3
    want = np.full((B, T), 7, dtype=vocab.ids_dtype)
    keep = np.arange(M)[None, None, :] < lens[:, :, None]
    pos = (start + (np.arange(B) * T)[:, None])[:, :, None] + np.arange(M)[None, None, :]
    want.reshape(-1)[pos[keep]] = tok[keep]
    got = np.full((B, T), 7, dtype=vocab.ids_dtype)
    token_kernel.write_items(got, start, p, vocab)
    assert np.array_equal(got, want)


@jit.kernel(inline=True)
def _twice(x):  # pragma: no cover - compiled
    return 2 * x


@jit.kernel
def _sum_twice(a):  # pragma: no cover - compiled
    total = 0
    for v in a:
        total += _twice(v)
    return total


def test_a_kernel_calls_its_helper_kernels_and_leaves_them_declared():
    """jit.kernel: a kernel that names another compiles against it; the module's name still
    holds the declared kernel, callable on its own."""
    assert _sum_twice(np.arange(4)) == 12
    assert isinstance(_twice, jit.Kernel) and _twice(3) == 6
