"""The token vocabulary of the token, chunk and bridge renderings.

Layout (defaults in brackets; every range is a knob and the whole table is written into the
manifest under ``vocab``)::

    0 pad, 1 bos, 2 write marker, 3 query marker, 4 delete marker, 5 answer slot,
    6 absent answer ("unknown"), 7 ask latest, 8 ask previous,
    9..13 distractor markers: negated, hypothetical, unconfirmed, rejected, lookalike,
    14, 15 reserved,
    16 .. 16+max_version-1      ask-version markers, one per k = 1..max_version  [32]
    key_offset ..               key tokens (a key is key_length of them)          [256 x 2]
    value_offset ..             one token per value id                            [1024]
    filler_offset .. vocab_size filler                                            [4096]

Event and query layouts (key = key_length tokens, most significant digit first, so keys that
share a prefix look alike)::

    write / overwrite   WRITE key value
    silent_write        key value                (no marker: no write signal)
    delete              DELETE key
    distractor          MARKER(kind) key value   (a lookalike names its own look-alike key)
    query               QUERY ASK key ANSWER_SLOT  (ASK = latest | previous | version-k marker)

The answer is read from a model's output at the ANSWER_SLOT position; the slot always holds the
placeholder id, so no gold answer is ever in ``input_ids``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from memgen.format.codes import DISTRACTOR_KINDS
from memgen.format.errors import UsageError
from memgen.format.schema import ids_type

PAD, BOS, WRITE, QUERY, DELETE, ANSWER_SLOT, ABSENT_TOKEN, ASK_LATEST_TOKEN, ASK_PREVIOUS_TOKEN = range(9)


DISTRACTOR_MARKER = {kind: 9 + i for i, kind in enumerate(DISTRACTOR_KINDS)}
VERSION_OFFSET = 16
#: the marker of each distractor kind by its code in ``memgen.ir.KINDS`` (code 0: not a distractor)
KIND_MARKERS = np.array([0] + [DISTRACTOR_MARKER[k] for k in DISTRACTOR_KINDS], dtype=np.int32)


@dataclass(frozen=True)
class Vocab:
    vocab_size: int = 4096
    key_tokens: int = 256
    key_length: int = 2
    values: int = 1024
    max_version: int = 32

    def __post_init__(self) -> None:
        if self.key_length < 1 or self.key_tokens < 2:
            raise UsageError("--key-length must be >= 1 and --key-tokens >= 2")
        if self.values < 2 or self.max_version < 1:
            raise UsageError("--values must be >= 2 and --max-version >= 1")
        if self.vocab_size - self.filler_offset < 16:
            need = self.filler_offset + 16
            raise UsageError(f"--vocab-size {self.vocab_size} leaves no room for filler: "
                             f"the other ranges need {self.filler_offset} ids, use at least {need}")

    @property
    def key_offset(self) -> int:
        return VERSION_OFFSET + self.max_version

    @property
    def value_offset(self) -> int:
        return self.key_offset + self.key_tokens

    @property
    def filler_offset(self) -> int:
        return self.value_offset + self.values

    @property
    def ids_dtype(self) -> type[np.integer]:
        """The numpy type of ``input_ids`` (see :func:`memgen.format.schema.ids_type`)."""
        return ids_type(self.vocab_size).to_pandas_dtype()

    @property
    def key_space(self) -> int:
        """Number of distinct keys: key_tokens ** key_length."""
        return self.key_tokens ** self.key_length

    @property
    def event_length(self) -> int:
        """Tokens of the longest event or query (the query)."""
        return self.key_length + 3

    def version_marker(self, k: int) -> int:
        return VERSION_OFFSET + k - 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            pad=PAD, bos=BOS, write=WRITE, query=QUERY, delete=DELETE, answer_slot=ANSWER_SLOT,
            absent=ABSENT_TOKEN, ask_latest=ASK_LATEST_TOKEN, ask_previous=ASK_PREVIOUS_TOKEN,
            ask_version_offset=VERSION_OFFSET, distractor_markers=dict(DISTRACTOR_MARKER),
            key_offset=self.key_offset, value_offset=self.value_offset,
            filler_offset=self.filler_offset, key_space=self.key_space,
        )
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Vocab:
        return cls(**{k: d[k] for k in ("vocab_size", "key_tokens", "key_length", "values", "max_version")})
