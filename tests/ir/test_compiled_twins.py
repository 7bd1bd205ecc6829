"""The compiled twins (memgen.ir.replay_kernel, memgen.render.token_kernel) against the numpy paths:
the same arrays, field by field, on generated batches of every family and on random hand-made
episodes; and the same shard bytes with and without them."""
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


def _stack(eps: list[Episode]) -> Program:
    """One padded program holding several episodes."""
    progs = [Program.from_episode(ep) for ep in eps]
    N = max(q.shape[1] for q in progs)
    out = Program.empty(len(progs), N)
    for b, q in enumerate(progs):
        for f in INPUT_FIELDS:
            getattr(out, f)[b, :q.shape[1]] = getattr(q, f)[0]
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(episodes(), min_size=1, max_size=6))
def test_kernel_replays_random_episodes_like_numpy(eps):
    p = _stack(eps)
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


@pytest.mark.parametrize("names", [("write", "overwrite", "silent_write", "delete", "distractor"),
                                   ("", "a", "exactly sixteen!", "unknown"),
                                   ("a name longer than sixteen bytes", "b")])
def test_compiled_names_spell_like_arrow_take(names, monkeypatch):
    """Names.spell: the compiled copy of padded names gives Arrow's take, buffers included (a
    shard's bytes hold them); names past 16 bytes always take Arrow's path."""
    import io as _io

    import pyarrow as pa
    import pyarrow.ipc as ipc

    from memgen.render.columns import Names

    codes = np.random.default_rng(1).integers(0, len(names), 5000).astype(np.int8)
    spelled = []
    for threshold in (0, 1 << 60):
        monkeypatch.setattr(jit, "MIN_ITEMS", threshold)
        spelled.append(Names(names).spell(codes))
    assert spelled[0].equals(spelled[1]) and spelled[0].to_pylist() == [names[c] for c in codes]

    def ipc_bytes(a):
        out = _io.BytesIO()
        table = pa.table({"s": pa.StructArray.from_arrays([a], names=["s"])})  # nested, as in a shard
        with ipc.new_file(out, table.schema) as w:
            w.write_table(table)
        return out.getvalue()

    assert ipc_bytes(spelled[0]) == ipc_bytes(spelled[1])
