"""The Arrow schema of a memgen dataset (DESIGN.md section 6).

Common columns for every rendering, then each rendering's own.  Integer fields are int32
(positions, keys, values, versions); ``seed`` is the episode's uint64 seed.  Fields that a
rendering does not use hold -1 (``chunk``, ``segment``) or an empty list (``evidence``).
"""

from __future__ import annotations

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

RENDERING_COLUMNS: dict[str, list[pa.Field]] = {
    "token": [pa.field("input_ids", pa.list_(pa.int32()))],
    "chunk": [pa.field("input_ids", pa.list_(pa.int32())), pa.field("chunk_size", pa.int32())],
    # segment boundaries: offsets into input_ids, segments + 1 of them (0 ... length)
    "bridge": [pa.field("input_ids", pa.list_(pa.int32())), pa.field("segments", pa.list_(pa.int32()))],
    "text": [
        pa.field("context", pa.string()),
        pa.field("questions", pa.list_(pa.string())),
        pa.field("prompt", pa.string()),
        pa.field("tokenizer", pa.string()),
        pa.field("domain", pa.string()),
    ],
}


def schema_for(rendering: str) -> pa.Schema:
    return pa.schema(COMMON + RENDERING_COLUMNS[rendering])
