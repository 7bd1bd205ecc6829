"""The token stream as the models read it: the parse recovers every event the IR placed, and
a stream that breaks the vocabulary's layout is refused."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pytest
from model_helpers import generated_table

from memgen.format.errors import DataError
from memgen.format.vocab import ANSWER_SLOT, QUERY, WRITE, Vocab
from memgen.generators.registry import FAMILIES
from memgen.models.stream import NO_MARKER, TokenBatch

VOCAB = Vocab()


@pytest.mark.parametrize("rendering", ["chunk", "token"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_parse_finds_every_event_where_the_ir_put_it(family, rendering):
    table = generated_table(family, 4096, 6, seed=2, rendering=rendering, query_position="interleaved")
    batch = TokenBatch.from_table(table, VOCAB)
    s = batch.stream
    events = table.column("events").combine_chunks()
    e = events.flatten()
    row = pc.list_parent_indices(events).to_numpy()
    alias = e.field("alias").to_numpy()
    named = np.where(alias >= 0, alias, e.field("key").to_numpy())  # a lookalike names its alias
    not_query = s.marker != QUERY
    assert np.array_equal(s.pos[not_query], e.field("start").to_numpy() + batch.row_start[row])
    assert np.array_equal(s.key[not_query], named)
    assert np.array_equal(s.value[not_query] >= 0, e.field("op").to_numpy(zero_copy_only=False) != "delete")
    assert np.array_equal(s.marker[not_query] == NO_MARKER, ~e.field("signal").to_numpy(zero_copy_only=False))
    q = table.column("queries").combine_chunks().flatten()
    assert np.array_equal(batch.queries.key, q.field("key").to_numpy())
    asks = np.array(["latest", "version", "previous"])[batch.queries.ask]
    assert asks.tolist() == q.field("ask").to_pylist()
    assert np.array_equal(batch.queries.k, q.field("version").to_numpy())


def test_chunk_numbers_follow_the_rendering():
    table = generated_table("mixed", 4096, 3, seed=1)
    batch = TokenBatch.from_table(table, VOCAB)
    s = batch.stream
    events = table.column("events").combine_chunks()
    row = pc.list_parent_indices(events).to_numpy()
    chunks_per_row = 4096 // 128
    not_query = s.marker != QUERY
    assert np.array_equal(s.chunk[not_query], events.flatten().field("chunk").to_numpy() + row * chunks_per_row)


def _batch(ids: list[int], query_at: int) -> TokenBatch:
    L = VOCAB.key_length
    return TokenBatch(np.array(ids, dtype=np.int32), np.array([0, len(ids)]), np.array([16]),
                      np.array([0]), np.array([query_at]), np.array([query_at + L + 3]), VOCAB)


def test_a_marker_without_its_key_is_refused():
    k, v, f = VOCAB.key_offset, VOCAB.value_offset, VOCAB.filler_offset
    ids = [1, WRITE, f, v, f, QUERY, 7, k, k, ANSWER_SLOT]
    with pytest.raises(DataError, match="marker 2 at position 1"):
        _ = _batch(ids, 5).stream


def test_loose_key_tokens_are_refused():
    k, f = VOCAB.key_offset, VOCAB.filler_offset
    ids = [1, k, f, f, f, QUERY, 7, k, k, ANSWER_SLOT]
    with pytest.raises(DataError, match="key tokens outside any event"):
        _ = _batch(ids, 5).stream


def test_a_query_span_must_hold_query_and_slot():
    k, f = VOCAB.key_offset, VOCAB.filler_offset
    with pytest.raises(DataError, match="does not hold QUERY ASK key ANSWER_SLOT"):
        _batch([1, f, f, f, f, QUERY, 7, k, k, ANSWER_SLOT], 4).check_queries()


def test_a_silent_write_next_to_a_delete_is_two_events():
    """DELETE k1 k2 followed at once by k1' k2' v: the marker's layout ends the delete."""
    k, v, f = VOCAB.key_offset, VOCAB.value_offset, VOCAB.filler_offset
    ids = [1, 4, k + 1, k + 2, k + 3, k + 4, v + 9, f, QUERY, 7, k + 3, k + 4, ANSWER_SLOT]
    s = _batch(ids, 8).stream
    assert s.marker.tolist() == [4, NO_MARKER, QUERY]
    assert s.key.tolist()[:2] == [1 * 256 + 2, 3 * 256 + 4]
    assert s.value.tolist() == [-1, 9, -1]
