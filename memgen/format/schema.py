"""The Arrow schema of a memgen dataset (DESIGN.md section 6).

Common columns for every rendering, then each rendering's own.  Integer fields are int32
(positions, keys, values, versions); ``seed`` is the episode's uint64 seed; ``input_ids`` are
uint16 for vocabularies of up to 65,536 ids and int32 beyond (:func:`ids_type`), and so are
the token renderings' trap lists (value ids, never -1, below the vocabulary size; text: int32).
Fields that a rendering does not use hold -1 (``chunk``, ``segment``) or an empty list
(``evidence``).
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

INT32 = pa.int32()


def traps_struct(value_type: pa.DataType = INT32) -> pa.DataType:
    """The ``traps`` struct with lists of ``value_type`` value ids."""
    return pa.struct([(name, pa.list_(value_type)) for name in ("stale", "distractor", "other_keys", "deleted")])


TRAPS = traps_struct()

EVENT = pa.struct([
    ("op", pa.string()),
    ("key", pa.int32()),
    ("value", pa.int32()),
    ("version", pa.int32()),
    ("signal", pa.bool_()),
    ("kind", pa.string()),
    ("alias", pa.int32()),
    ("start", pa.int32()),
    ("end", pa.int32()),
    ("chunk", pa.int32()),
    ("segment", pa.int32()),
])


def query_struct(value_type: pa.DataType = INT32) -> pa.DataType:
    """The ``queries`` struct, its traps holding ``value_type`` value ids."""
    return pa.struct([
        ("qid", pa.int32()),
        ("key", pa.int32()),
        ("ask", pa.string()),
        ("version", pa.int32()),
        ("answer", pa.int32()),
        ("answer_text", pa.string()),
        ("probe", pa.string()),
        ("traps", traps_struct(value_type)),
        ("start", pa.int32()),
        ("end", pa.int32()),
        ("evidence", pa.list_(pa.int32())),
    ])


QUERY = query_struct()


def common_fields(value_type: pa.DataType = INT32) -> list[pa.Field]:
    return [
        pa.field("id", pa.string()),
        pa.field("family", pa.string()),
        pa.field("rendering", pa.string()),
        pa.field("seed", pa.uint64()),
        pa.field("target_length", pa.int32()),
        pa.field("length", pa.int32()),
        pa.field("events", pa.list_(EVENT)),
        pa.field("queries", pa.list_(query_struct(value_type))),
    ]


COMMON = common_fields()

#: the vocabulary size that schemas assume when none is given (the token renderings' default)
DEFAULT_VOCAB_SIZE = 4096


def ids_type(vocab_size: int | None = DEFAULT_VOCAB_SIZE) -> pa.DataType:
    """The type of ``input_ids``: uint16 while every id fits in 16 bits (vocabularies of up to
    65,536 ids, the default 4,096 included), int32 beyond.  uint16 halves the bytes, and zstd
    stores it about three times faster than int32, whose two zero bytes per id it would match."""
    return pa.uint16() if (vocab_size or DEFAULT_VOCAB_SIZE) <= 1 << 16 else pa.int32()


def _ids(vocab_size: int | None) -> pa.Field:
    return pa.field("input_ids", pa.list_(ids_type(vocab_size)))


RENDERING_COLUMNS: dict[str, Callable[[int | None], list[pa.Field]]] = {
    "token": lambda v: [_ids(v)],
    "chunk": lambda v: [_ids(v), pa.field("chunk_size", pa.int32())],
    # segment boundaries: offsets into input_ids, segments + 1 of them (0 ... length)
    "bridge": lambda v: [_ids(v), pa.field("segments", pa.list_(pa.int32()))],
    # the prompt is prompt_head + context + prompt_tail, rebuilt on read (the context is stored once)
    "text": lambda v: [
        pa.field("answers", pa.list_(pa.string())),
        pa.field("context", pa.string()),
        pa.field("questions", pa.list_(pa.string())),
        pa.field("prompt_head", pa.string()),
        pa.field("prompt_tail", pa.string()),
        pa.field("tokenizer", pa.string()),
        pa.field("domain", pa.string()),
        # passage boundaries: offsets into context (P + 1, 0 ... len), empty without --chunk-size
        pa.field("passages", pa.list_(pa.int32())),
    ],
}


def trap_type(rendering: str, vocab_size: int | None = DEFAULT_VOCAB_SIZE) -> pa.DataType:
    """The type of the trap lists' value ids: the token renderings' value ids are tokens of the
    vocabulary offset back, so they fit wherever ``input_ids`` fit (:func:`ids_type`); text
    keeps int32.  The ``other_keys`` lists are most of a shard's bytes: 16 bits halve them."""
    return pa.int32() if rendering == "text" else ids_type(vocab_size)


def schema_for(rendering: str, vocab_size: int | None = DEFAULT_VOCAB_SIZE) -> pa.Schema:
    """The schema of a shard of ``rendering`` (token renderings: for a vocabulary of
    ``vocab_size`` ids, which decides the type of ``input_ids`` and of the trap lists)."""
    return pa.schema(common_fields(trap_type(rendering, vocab_size)) + RENDERING_COLUMNS[rendering](vocab_size))


def manifest_vocab_size(manifest: dict) -> int | None:
    """The vocabulary size a dataset's manifest records (None for text-only datasets)."""
    vocab = manifest.get("vocab")
    return vocab.get("vocab_size") if isinstance(vocab, dict) else None
