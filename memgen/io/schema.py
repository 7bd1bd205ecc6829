"""The Arrow schema of a memgen dataset (DESIGN.md section 6).

Common columns for every rendering, then each rendering's own.  Integer fields are int32
(positions, keys, values, versions); ``seed`` is the episode's uint64 seed; ``input_ids`` are
uint16 for vocabularies of up to 65,536 ids and int32 beyond (:func:`ids_type`).  Fields that a
rendering does not use hold -1 (``chunk``, ``segment``) or an empty list (``evidence``).
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

TRAPS = pa.struct([
    ("stale", pa.list_(pa.int32())),
    ("distractor", pa.list_(pa.int32())),
    ("other_keys", pa.list_(pa.int32())),
    ("deleted", pa.list_(pa.int32())),
])

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

QUERY = pa.struct([
    ("qid", pa.int32()),
    ("key", pa.int32()),
    ("ask", pa.string()),
    ("version", pa.int32()),
    ("answer", pa.int32()),
    ("answer_text", pa.string()),
    ("probe", pa.string()),
    ("traps", TRAPS),
    ("start", pa.int32()),
    ("end", pa.int32()),
    ("evidence", pa.list_(pa.int32())),
])

COMMON = [
    pa.field("id", pa.string()),
    pa.field("family", pa.string()),
    pa.field("rendering", pa.string()),
    pa.field("seed", pa.uint64()),
    pa.field("target_length", pa.int32()),
    pa.field("length", pa.int32()),
    pa.field("events", pa.list_(EVENT)),
    pa.field("queries", pa.list_(QUERY)),
]

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
    "text": lambda v: [
        pa.field("context", pa.string()),
        pa.field("questions", pa.list_(pa.string())),
        pa.field("prompt", pa.string()),
        pa.field("tokenizer", pa.string()),
        pa.field("domain", pa.string()),
    ],
}


def schema_for(rendering: str, vocab_size: int | None = DEFAULT_VOCAB_SIZE) -> pa.Schema:
    """The schema of a shard of ``rendering`` (token renderings: for a vocabulary of
    ``vocab_size`` ids, which decides the type of ``input_ids``)."""
    return pa.schema(COMMON + RENDERING_COLUMNS[rendering](vocab_size))


def manifest_vocab_size(manifest: dict) -> int | None:
    """The vocabulary size a dataset's manifest records (None for text-only datasets)."""
    vocab = manifest.get("vocab")
    return vocab.get("vocab_size") if isinstance(vocab, dict) else None
