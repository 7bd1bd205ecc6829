"""Counter-based random streams, one per episode, drawn for many episodes at once.

Why not one ``numpy.random.Generator`` per episode: episode *i* must draw from its own seed
(so its bytes do not depend on batching, shard size or worker count), and generation must be
vectorised across episodes.  A counter-based generator gives both: every draw is a pure
function ``mix64(episode_seed, stream, counter)``, evaluated for a whole ``(B, n)`` block in a
few numpy operations.  No global state is read or written.

``mix64`` is SplitMix64's finaliser (Steele, Lea & Flood 2014), which passes BigCrush when
driven by a counter; the stream tag is hashed from a name so that streams never overlap.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from memgen.ir import jit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_2_53 = 1.0 / (1 << 53)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, elementwise on uint64 (returns a new array)."""
    x = np.asarray(x, dtype=np.uint64)
    if x.ndim == 0:  # numpy warns on scalar overflow only (arrays wrap silently): the wrap is intended
        with np.errstate(over="ignore"):
            return mix64(x.reshape(1))[0]
    z = x ^ (x >> np.uint64(30))
    z = z * _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from any printable parts (stable across Python versions and platforms)."""
    h = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little")


def episode_seeds(base_seed: int, start: int, count: int) -> np.ndarray:
    """Seeds of episodes ``start .. start+count-1`` of a run whose base seed is ``base_seed``."""
    i = np.arange(start, start + count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return mix64(np.uint64(base_seed) ^ (i * _GOLDEN + _GOLDEN))


class Streams:
    """Random draws for a batch of episodes; row b depends only on ``seeds[b]``.

    Every method takes a ``stream`` name: two calls with different names are independent,
    two calls with the same name and shape return the same numbers.
    """

    def __init__(self, seeds: np.ndarray):
        self.seeds = np.asarray(seeds, dtype=np.uint64)

    @property
    def batch(self) -> int:
        return self.seeds.size

    @staticmethod
    @functools.lru_cache(maxsize=1024)
    def _tag(stream: str) -> np.uint64:
        return np.uint64(derive_seed("stream", stream))

    def bits(self, stream: str, n: int) -> np.ndarray:
        """(B, n) uint64 random bits."""
        base = mix64(self.seeds ^ self._tag(stream))[:, None]
        c = np.arange(1, n + 1, dtype=np.uint64)[None, :]
        with np.errstate(over="ignore"):
            return mix64(base + c * _GOLDEN)

    def uniform(self, stream: str, n: int) -> np.ndarray:
        """(B, n) float64 uniform on [0, 1)."""
        if jit.pays(self.batch * n):
            out = np.empty((self.batch, n))
            _uniform_kernel(mix64(self.seeds ^ self._tag(stream)), out)
            return out
        return (self.bits(stream, n) >> np.uint64(11)).astype(np.float64) * _2_53

    def integers(self, stream: str, n: int, high) -> np.ndarray:
        """(B, n) int64 uniform on [0, high); ``high`` broadcasts against (B, n), must be > 0."""
        return np.minimum((self.uniform(stream, n) * high).astype(np.int64), np.asarray(high) - 1)

    def exponential(self, stream: str, n: int) -> np.ndarray:
        return -np.log1p(-self.uniform(stream, n))

    def pareto(self, stream: str, n: int, alpha: float) -> np.ndarray:
        """(B, n) Pareto(alpha) draws, >= 1: heavy-tailed gaps for power-law spacing."""
        return (1.0 - self.uniform(stream, n)) ** (-1.0 / alpha)

    def permutation_index(self, stream: str, n: int, space: int) -> np.ndarray:
        """(B, n) distinct integers in [0, space) per row, pseudo-random: a keyed Feistel
        permutation of [0, space) evaluated at 0..n-1 (cycle-walking for non powers of 2)."""
        if n > space:
            raise ValueError(f"cannot draw {n} distinct values from {space}")
        bits = max(2, int(np.ceil(np.log2(max(space, 2)))))
        bits += bits % 2
        half = bits // 2
        mask = np.uint64((1 << half) - 1)
        keys = mix64(self.seeds ^ self._tag(stream))  # (B,)
        with np.errstate(over="ignore"):
            round_keys = [mix64(keys + np.uint64(r + 1) * _GOLDEN)[:, None] for r in range(4)]

        def feistel(x: np.ndarray) -> np.ndarray:
            left, right = x >> np.uint64(half), x & mask
            for rk in round_keys:
                with np.errstate(over="ignore"):
                    f = mix64(right ^ rk) & mask
                left, right = right, left ^ f
            return (left << np.uint64(half)) | right

        if jit.pays(self.batch * n):
            out = np.empty((self.batch, n), dtype=np.int64)
            _feistel_kernel(np.concatenate(round_keys, axis=1).T.copy(), np.uint64(half), mask, np.uint64(space), out)
            return out
        x = np.broadcast_to(np.arange(n, dtype=np.uint64)[None, :], (self.batch, n)).copy()
        out = feistel(x)
        bad = out >= np.uint64(space)
        while bad.any():  # cycle walking keeps it a permutation of [0, space)
            out = np.where(bad, feistel(out), out)
            bad = out >= np.uint64(space)
        return out.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# compiled twins of uniform() and permutation_index() (memgen.ir.jit): the same numbers, one pass


@jit.kernel(inline=True)
def _mix_one(z):  # pragma: no cover - compiled
    """:func:`mix64` of one uint64."""
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


@jit.kernel
def _uniform_kernel(base, out):  # pragma: no cover - compiled
    """:meth:`Streams.uniform` for the mixed stream seeds ``base`` (B,), into ``out`` (B, n)."""
    for b in range(out.shape[0]):
        for i in range(out.shape[1]):
            z = _mix_one(base[b] + np.uint64(i + 1) * _GOLDEN)
            out[b, i] = np.float64(z >> np.uint64(11)) * _2_53


@jit.kernel
def _feistel_kernel(round_keys, half, mask, space, out):  # pragma: no cover - compiled
    """:meth:`Streams.permutation_index` at 0 ... n - 1 for the (rounds, B) ``round_keys``, into
    ``out`` (B, n)."""
    for b in range(out.shape[0]):
        for i in range(out.shape[1]):
            x = np.uint64(i)
            while True:  # cycle walking, as in permutation_index
                left = x >> half
                right = x & mask
                for r in range(round_keys.shape[0]):
                    left, right = right, left ^ (_mix_one(right ^ round_keys[r, b]) & mask)
                x = (left << half) | right
                if x < space:
                    break
            out[b, i] = np.int64(x)
