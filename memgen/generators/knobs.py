"""Knobs and plans: what a user asks for, and what a family makes of it.

A family is a small function that turns a :class:`Knobs` (what the user asked, with ``None``
for "the family's default at this length") into a :class:`Plan` (resolved counts and a query
policy), usually through :func:`plan`; :func:`memgen.generators.build.build_program` turns a
plan into a batch of episodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from memgen.format.codes import DISTRACTOR_KINDS
from memgen.format.errors import UsageError


@dataclass(frozen=True)
class Knobs:
    """What a user can set for any family; ``None`` takes the family's default.

    Counts are per episode.  ``overwrites``, ``distractors`` and ``deletes`` are totals spread
    over the keys at random, so the number of updates per key varies within an episode.
    """

    keys: int | None = None
    overwrites: int | None = None
    distractors: int | None = None
    distractor_kinds: tuple[str, ...] = DISTRACTOR_KINDS
    silent_share: float | None = None
    deletes: int | None = None
    rewrite_share: float | None = None
    absent_keys: int | None = None
    queries: int | None = None
    query_position: str = "end"  # end | interleaved
    max_version: int = 32


@dataclass(frozen=True)
class KeyFacts:
    """Per-key facts after all events, (B, keys + absent) each, for query policies."""

    written: np.ndarray  # bool: has ever had a value
    values: np.ndarray  # int: number of values the key has had
    distracted: np.ndarray  # bool: some distractor is about the key
    deleted: np.ndarray  # bool: deleted at least once
    holds: np.ndarray  # bool: has a value at the end
    silent_write: np.ndarray  # bool: its last value was set by a silent write (no write signal)


Priority = Callable[[KeyFacts], np.ndarray]


@dataclass(frozen=True)
class Plan:
    keys: int
    absent: int = 0
    overwrites: int = 0
    distractors: int = 0
    kinds: tuple[str, ...] = DISTRACTOR_KINDS
    distract_absent: bool = False  # distractors may be about never-written keys
    silent_share: float = 0.0
    silent_write_per_key: bool = False  # all sets of a key are silent writes, or none (else each set on its own)
    deletes: int = 0
    rewrite_share: float = 0.0
    queries: int = 1
    interleaved: bool = False
    ask_weights: tuple[float, float, float] = (1.0, 0.0, 0.0)  # latest, version, previous
    priority: Priority = field(default=lambda f: np.where(f.written, 1, 0))
    max_version: int = 32

    @property
    def sets(self) -> int:
        return self.keys + self.overwrites + self.rewrites

    @property
    def rewrites(self) -> int:
        return int(round(self.deletes * self.rewrite_share))

    @property
    def events(self) -> int:
        return self.sets + self.deletes + self.distractors

    @property
    def valued(self) -> int:
        """Events that state a value: sets and distractors (each gets a distinct value)."""
        return self.sets + self.distractors

    def check(self, key_space: int, values: int) -> None:
        if self.keys < 1:
            raise UsageError("--keys must be at least 1")
        if self.queries < 1:
            raise UsageError("--queries must be at least 1")
        for name in ("absent", "overwrites", "distractors", "deletes"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('absent', 'absent-keys')} must be >= 0")
        if not 0.0 <= self.silent_share <= 1.0 or not 0.0 <= self.rewrite_share <= 1.0:
            raise UsageError("--silent-share and --rewrite-share must be within [0, 1]")
        if self.deletes > self.keys:
            raise UsageError(f"--deletes {self.deletes} exceeds --keys {self.keys}")
        if self.distractors and not self.kinds:
            raise UsageError("distractors asked for but --distractor-kinds is empty")
        if self.keys + self.absent > key_space // 2:
            raise UsageError(f"{self.keys + self.absent} keys need a key space of at least "
                             f"{2 * (self.keys + self.absent)}: raise --key-tokens or --key-length")
        if self.valued > values:
            raise UsageError(f"{self.valued} value-bearing events need at least that many distinct "
                             f"values: raise --values to {self.valued} or more")


def scale(length: int) -> int:
    """Default number of keys at a context length: 4 at 1K tokens, 16 at 4K, 256 from 64K."""
    return max(4, min(256, length // 256))


def pick(value, default):
    return default if value is None else value


def plan(k: Knobs, n: int, *, absent: int = 0, overwrites: int = 0, distractors: int = 0,
         silent_share: float = 0.0, deletes: int = 0, rewrite_share: float = 0.0, queries: int | None = None,
         **policy) -> Plan:
    """A family's :class:`Plan`: ``n`` keys, the family's defaults for every count the user left
    unset (``None``) in ``k``, and its query policy (``priority``, ``ask_weights``, ...)."""
    return Plan(
        keys=n, absent=pick(k.absent_keys, absent), overwrites=pick(k.overwrites, overwrites),
        distractors=pick(k.distractors, distractors), kinds=k.distractor_kinds,
        silent_share=pick(k.silent_share, silent_share), deletes=pick(k.deletes, deletes),
        rewrite_share=pick(k.rewrite_share, rewrite_share), queries=pick(k.queries, pick(queries, min(n, 64))),
        interleaved=k.query_position == "interleaved", max_version=k.max_version, **policy)
