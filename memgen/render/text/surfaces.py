"""Surface forms: the words a key id or a value id is written as in one domain.

A *space* (keys or values of a domain) is a format string over named parts, e.g.
``"{finish} {material} {item}"``; each part is a word list, a set of single letters, or a
zero-padded integer range.  Id ``i`` is written as the parts of ``perm(i)`` in mixed radix,
where ``perm`` is a keyed Feistel permutation of ``[0, capacity)`` (keyed by the domain's name
and the space), so:

* the surface of an id depends on (domain, id) only: the scorer can map a value id back to its
  text with :func:`memgen.render.text.domain.value_surface` without the episode;
* distinct ids always have distinct surfaces (a permutation, and parts are unambiguous);
* neighbouring ids look unrelated.

A *lookalike* of a key alters one part of the key's surface to name another plausible entity,
in a form that no key surface of the domain can have (a word outside the part's list, a letter
outside its alphabet, one digit more than the range's width): it can never equal a key surface.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memgen.format.errors import UsageError
from memgen.ir.rng import derive_seed, mix64

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SLOT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Part:
    """One part of a surface: ``options`` are its possible strings, in a fixed order."""

    name: str
    options: tuple[str, ...]
    kind: str  # words | letters | range
    width: int = 0  # range: digits per option

    @property
    def size(self) -> int:
        return len(self.options)


def parse_part(name: str, spec, where: str) -> Part:
    """A part from its YAML: a list of words, ``{letters: "ABC"}`` or ``{range: [lo, hi]}``."""
    if isinstance(spec, list):
        opts = tuple(str(w) for w in spec)
        if len(set(opts)) != len(opts) or not opts:
            raise UsageError(f"{where}: part {name!r} must be a non-empty list of distinct words")
        if any(not w or w != w.strip() or "{" in w for w in opts):
            raise UsageError(f"{where}: part {name!r} has an empty or padded word")
        return Part(name, opts, "words")
    if isinstance(spec, dict) and "letters" in spec:
        letters = str(spec["letters"])
        if len(set(letters)) != len(letters) or not letters:
            raise UsageError(f"{where}: part {name!r}: letters must be distinct characters")
        return Part(name, tuple(letters), "letters")
    if isinstance(spec, dict) and "range" in spec:
        lo, hi = (int(x) for x in spec["range"])
        width = len(str(hi))
        if not 0 <= lo <= hi:
            raise UsageError(f"{where}: part {name!r}: range must be [lo, hi] with 0 <= lo <= hi")
        return Part(name, tuple(str(i).zfill(width) for i in range(lo, hi + 1)), "range", width)
    raise UsageError(f"{where}: part {name!r} must be a list of words, {{letters: ...}} or {{range: [lo, hi]}}")


@dataclass(frozen=True)
class Lookalike:
    """How one part of a key is altered: ``mode`` is words | letters | digit."""

    part: str
    mode: str
    alternatives: tuple[str, ...] = ()  # words or letters never used by the part


class Space:
    """The surfaces of the keys (or values) of one domain."""

    def __init__(self, domain: str, which: str, fmt: str, parts: dict[str, Part],
                 lookalikes: Sequence[Lookalike] = (), salt: str = ""):
        self.domain, self.which, self.format = domain, which, fmt
        names = _SLOT.findall(fmt)
        where = f"domain {domain!r} {which}"
        if not names or len(set(names)) != len(names):
            raise UsageError(f"{where}: format {fmt!r} must name each part once, as {{part}}")
        missing = [n for n in names if n not in parts]
        if missing:
            raise UsageError(f"{where}: format names undefined part(s) {', '.join(missing)}")
        self.parts = [parts[n] for n in names]
        self._pyfmt = _SLOT.sub(lambda m: "{" + str(names.index(m.group(1))) + "}", fmt)
        self.capacity = int(np.prod([p.size for p in self.parts], dtype=object))
        if self.capacity >= 1 << 62:
            raise UsageError(f"{where}: too many combinations")
        self._arrays = [np.array(p.options, dtype=object) for p in self.parts]
        bits = max(2, (self.capacity - 1).bit_length())
        bits += bits % 2
        self._half = bits // 2
        key = derive_seed("memgen.text.surface", domain, which, salt)
        with np.errstate(over="ignore"):
            self._round_keys = [mix64(np.uint64(key) + np.uint64(r + 1) * _GOLDEN) for r in range(4)]
        self.lookalikes = tuple(lookalikes)
        for la in self.lookalikes:
            self._check_lookalike(la, where)

    # -- ids to surfaces

    def _feistel(self, x: np.ndarray) -> np.ndarray:
        half = np.uint64(self._half)
        mask = np.uint64((1 << self._half) - 1)
        left, right = x >> half, x & mask
        with np.errstate(over="ignore"):
            for rk in self._round_keys:
                left, right = right, left ^ (mix64(right ^ rk) & mask)
        return (left << half) | right

    def index(self, ids: np.ndarray) -> np.ndarray:
        """perm(ids): the combination index of each id, int64."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.capacity):
            bad = int(ids[(ids < 0) | (ids >= self.capacity)][0])
            raise UsageError(f"{self.which} id {bad} is outside the {self.capacity:,} {self.which}s that "
                             f"domain {self.domain!r} can write; use fewer {self.which}s")
        x = self._feistel(ids.astype(np.uint64))
        cap = np.uint64(self.capacity)
        bad = x >= cap
        while bad.any():  # cycle walking keeps it a permutation of [0, capacity)
            x = np.where(bad, self._feistel(x), x)
            bad = x >= cap
        return x.astype(np.int64)

    def digits(self, ids: np.ndarray) -> list[np.ndarray]:
        """The option index of every part, one array per part (last part varies fastest)."""
        rest = self.index(ids)
        out = []
        for p in reversed(self.parts):
            out.append(rest % p.size)
            rest = rest // p.size
        return out[::-1]

    def surfaces(self, ids: Sequence[int] | np.ndarray) -> list[str]:
        """The surface of every id, in order."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        cols = [a[d] for a, d in zip(self._arrays, self.digits(ids), strict=True)]
        fmt = self._pyfmt.format
        return [fmt(*row) for row in zip(*cols, strict=True)]

    def surface(self, i: int) -> str:
        return self.surfaces([i])[0]

    # -- lookalikes

    def _check_lookalike(self, la: Lookalike, where: str) -> None:
        part = next((p for p in self.parts if p.name == la.part), None)
        if part is None:
            raise UsageError(f"{where}: lookalike names unknown part {la.part!r}")
        if la.mode == "edit":
            raise UsageError(f"{where}: lookalike mode 'edit' ({la.part}) makes one-letter misspellings; name "
                             f"another real entity instead (mode words with other {la.part} words, or letters/digit)")
        mode_ok = {"words": "words", "letters": "letters", "digit": "range"}
        if la.mode not in mode_ok or part.kind != mode_ok[la.mode]:
            raise UsageError(f"{where}: lookalike mode {la.mode!r} does not fit part {la.part!r} "
                             f"({part.kind}); use words for word lists, letters, or digit for ranges")
        if la.mode in ("words", "letters"):
            clash = set(la.alternatives) & set(part.options)
            if not la.alternatives or clash:
                raise UsageError(f"{where}: lookalike alternatives for {la.part!r} must be non-empty "
                                 f"and outside the part's own options (clash: {sorted(clash)[:3]})")

    def lookalike(self, key_id: int, alias_id: int) -> str:
        """The lookalike of key ``key_id`` chosen by ``alias_id`` (any int): the key's surface
        with one part altered (another word, letter or number); never a key surface."""
        return self.lookalike_many([key_id], [alias_id])[0]

    def lookalike_many(self, key_ids: Sequence[int], alias_ids: Sequence[int]) -> list[str]:
        """:meth:`lookalike` of each (key, alias) pair."""
        if not self.lookalikes:
            raise UsageError(f"domain {self.domain!r} defines no key lookalike")
        if len(key_ids) == 0:
            return []
        digits = self.digits(np.asarray(key_ids, dtype=np.int64))
        with np.errstate(over="ignore"):
            mixed = mix64(np.abs(np.asarray(alias_ids, dtype=np.int64)).astype(np.uint64)) >> np.uint64(1)
        out = []
        for n, a in enumerate(mixed.tolist()):
            words = [p.options[int(d[n])] for p, d in zip(self.parts, digits, strict=True)]
            la = self.lookalikes[a % len(self.lookalikes)]
            j = next(i for i, p in enumerate(self.parts) if p.name == la.part)
            word = words[j]
            if la.mode in ("words", "letters"):
                cands = [w for w in la.alternatives if w != word]
            else:  # digit: one digit more than any option of the range has, put in front so
                # that the key's surface is not a prefix of its lookalike ("41" -> "141", not "412")
                cands = [d + word for d in string.digits[1:]]
            words[j] = cands[(a // len(self.lookalikes)) % len(cands)]
            out.append(self._pyfmt.format(*words))
        return out

    def pattern(self, lookalikes: bool = False) -> re.Pattern:
        """A regex matching every surface of the space (with ``lookalikes``, also every look-alike
        made by a ``words``, ``letters`` or ``digit`` rule), not inside a longer word or number:
        what "a string of this shape" means to the audit."""
        extra: dict[str, list[str]] = {}
        if lookalikes:
            for la in self.lookalikes:
                extra.setdefault(la.part, []).extend(la.alternatives if la.mode != "digit" else ["digit"])
        fields = {}
        for p in self.parts:
            more = extra.get(p.name, [])
            if p.kind == "range":
                width = f"{p.width},{p.width + 1}" if "digit" in more else str(p.width)
                fields[p.name] = rf"\d{{{width}}}"
            else:
                opts = sorted({*p.options, *more}, key=len, reverse=True)
                fields[p.name] = "(?:" + "|".join(re.escape(o) for o in opts) + ")"
        pieces = re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", self.format)
        body = "".join(fields[x[1:-1]] if _SLOT.fullmatch(x) else re.escape(x) for x in pieces)
        return re.compile(rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])")

    def words(self) -> set[str]:
        """Every word of every word part and every lookalike alternative (lower case); the
        format's own literal words are not included."""
        out: set[str] = set()
        for p in self.parts:
            if p.kind == "words":
                out.update(w.lower() for opt in p.options for w in _words(opt))
        for la in self.lookalikes:
            if la.mode == "words":
                out.update(w.lower() for opt in la.alternatives for w in _words(opt))
        return out

    def has_digits(self) -> bool:
        """True if every surface contains a digit (a range part), so no digit-free text can hold it."""
        return any(p.kind == "range" for p in self.parts)


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9]+", text)
