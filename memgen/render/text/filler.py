"""Filler prose: a small compositional grammar per domain, sampled in bulk.

A grammar is a list of sentence templates whose ``{field}`` fields are filled from word lists
(``domain.yaml``, section ``filler``, merged with ``templates/_shared/filler.yaml``).  With a
few dozen templates and a few dozen options per field it has millions of sentences, so a
128K-token context hardly repeats one.

Three fields are *entities* (:data:`ENTITY_FIELDS`): ``{other_key}``, ``{other_value}`` and
``{other_value2}`` (never the same as ``{other_value}`` in one sentence) take
surfaces of the domain's own keys and values (ids at the top of its spaces, which episodes do
not use), so that filler names hosts, samples, travellers and codes of the very shapes the
events use: hard negatives.  :meth:`Grammar.sample` draws them only among the options that do
not clash with the episode's own surfaces (:meth:`Others.allowed`); the grammar's own words
cannot spell a surface (checked when a domain loads).

Token counts are never measured sentence by sentence.  Every literal piece and every field
option is counted once per tokenizer (with the space that precedes it in running text), and a
sentence's count is the sum of its pieces.  For tokenizers that pre-split on spaces and
punctuation (GPT-style byte BPEs, WordLevel/BPE with a whitespace pre-tokenizer) that sum is
exact; the renderer checks the final prompt with one real count either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from memgen.format.errors import UsageError
from memgen.render.text.surfaces import Space
from memgen.render.text.tokenizers import LengthCounter

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_AFTER_FIELD_OK = set(" ,.;:!?)")
#: fields filled with surfaces of the domain's keys and values (exempt from the no-digit checks)
ENTITY_FIELDS = ("other_key", "other_value", "other_value2")
#: how many surfaces of each space the entity fields hold
ENTITY_POOL = 512


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


@dataclass(frozen=True)
class _Template:
    fmt: str  # python format string, positional fields
    fields: tuple[str, ...]  # field names in order of appearance
    lits: tuple[str, ...]  # literal pieces of " " + template (the first keeps its leading space)
    first_is_field: bool
    same_as: tuple[int, ...]  # per field: an earlier field of this template with the same options, or -1


@dataclass(frozen=True)
class GrammarCounts:
    """Token counts of a grammar's pieces under one tokenizer."""

    field_mid: dict[str, np.ndarray]  # count(" " + option)
    field_cap_mid: dict[str, np.ndarray]  # count(" " + Option), sentence-initial fields
    field_cap_init: dict[str, np.ndarray]  # count("Option"), paragraph-initial fields
    lit_const: np.ndarray  # (T,) sum of the literal pieces, in running text
    lit_init_delta: np.ndarray  # (T,) count(first literal, no space) - count(" " + it)
    mean: float  # expected tokens of a sentence in running text


class Grammar:
    """Sentence templates over word-list fields; see the module docstring."""

    def __init__(self, sentences: list[str], fields: dict[str, list[str]], where: str):
        if not sentences:
            raise UsageError(f"{where}: the grammar needs at least one sentence template")
        self.fields = {k: np.array([str(x) for x in v], dtype=object) for k, v in fields.items()}
        self.cap_fields = {}
        self.templates: list[_Template] = []
        for t in sentences:
            t = str(t)
            names = _FIELD.findall(t)
            for m in _FIELD.finditer(t):
                if m.start() > 0 and t[m.start() - 1] != " ":
                    raise UsageError(f"{where}: in {t!r}, {{{m.group(1)}}} must follow a space")
                if m.end() < len(t) and t[m.end()] not in _AFTER_FIELD_OK:
                    raise UsageError(f"{where}: in {t!r}, {{{m.group(1)}}} must be followed by a space "
                                     "or punctuation")
            for n in names:
                if n not in self.fields or not len(self.fields[n]):
                    raise UsageError(f"{where}: sentence {t!r} uses undefined or empty field {{{n}}}")
            first_is_field = t.startswith("{")
            if first_is_field and names[0] in ENTITY_FIELDS:
                raise UsageError(f"{where}: {t!r} must not start with {{{names[0]}}} (surfaces are case-sensitive)")
            if first_is_field:
                self.cap_fields[names[0]] = np.array([_cap(s) for s in self.fields[names[0]]], dtype=object)
            # literal pieces of " " + t, each field taking the space before it
            pieces = _FIELD.split(" " + t)  # lit, name, lit, name, ..., lit
            raw = pieces[::2]
            lits = [p[:-1] if i < len(raw) - 1 else p for i, p in enumerate(raw)]
            lits = [p for p in lits if p]
            fmt = _FIELD.sub("{}", t)  # the fields, in order, positionally
            opts = [tuple(self.fields[n].tolist()) for n in names]
            same_as = tuple(next((i for i in range(j) if opts[i] == opts[j]), -1) for j in range(len(names)))
            self.templates.append(_Template(fmt, tuple(names), tuple(lits), first_is_field, same_as))
        # a template is drawn with probability ~ sqrt(sentences it can make): large templates
        # rarely repeat a sentence and small ones still show up
        sizes = np.array([float(np.prod([len(self.fields[s]) for s in t.fields])) for t in self.templates])
        self.weights = np.sqrt(sizes) / np.sqrt(sizes).sum()

    def vocabulary(self) -> set[str]:
        """Every word (lower case, letters and digits) the grammar can produce."""
        out: set[str] = set()
        for t in self.templates:
            out.update(w.lower() for w in re.findall(r"[A-Za-z0-9]+", re.sub(r"\{\d*\}", " ", t.fmt)))
        for name, opts in self.fields.items():
            if name not in ENTITY_FIELDS:
                for o in opts:
                    out.update(w.lower() for w in re.findall(r"[A-Za-z0-9]+", o))
        return out

    def texts(self) -> list[str]:
        """All literal text and all options but the entities' (for checks)."""
        out = [re.sub(r"\{\d*\}", " ", t.fmt) for t in self.templates]
        for name, opts in self.fields.items():
            if name not in ENTITY_FIELDS:
                out.extend(opts.tolist())
        return out

    def combinations(self) -> int:
        """Number of distinct sentences the grammar can write (upper bound)."""
        total = 0
        for t in self.templates:
            n = 1
            for s in t.fields:
                n *= len(self.fields[s])
            total += n
        return total

    @lru_cache(maxsize=16)  # noqa: B019  (grammars live as long as their domain: the process)
    def counts(self, counter: LengthCounter) -> GrammarCounts:
        used = sorted({s for t in self.templates for s in t.fields})
        strings: list[str] = []
        spans: dict[tuple[str, str], tuple[int, int]] = {}

        def add(tag: str, name: str, items) -> None:
            spans[(tag, name)] = (len(strings), len(strings) + len(items))
            strings.extend(items)

        for s in used:
            add("mid", s, [" " + o for o in self.fields[s]])
        for s, caps in self.cap_fields.items():
            add("cap_mid", s, [" " + o for o in caps])
            add("cap_init", s, list(caps))
        lit_all = sorted({p for t in self.templates for p in t.lits} |
                         {t.lits[0].lstrip() for t in self.templates if not t.first_is_field and t.lits})
        add("lit", "", lit_all)
        c = np.array(counter.count_many(strings), dtype=np.int64)

        def get(tag: str, name: str) -> np.ndarray:
            a, b = spans[(tag, name)]
            return c[a:b]

        lit_count = dict(zip(lit_all, get("lit", "").tolist(), strict=True))
        field_mid = {s: get("mid", s) for s in used}
        T = len(self.templates)
        const = np.zeros(T, dtype=np.int64)
        init_delta = np.zeros(T, dtype=np.int64)
        mean = 0.0
        for i, t in enumerate(self.templates):
            w = float(self.weights[i])
            const[i] = sum(lit_count[p] for p in t.lits)
            if not t.first_is_field and t.lits:
                init_delta[i] = lit_count[t.lits[0].lstrip()] - lit_count[t.lits[0]]
            m = float(const[i])
            for j, s in enumerate(t.fields):
                m += float(get("cap_mid", s).mean() if (j == 0 and t.first_is_field) else field_mid[s].mean())
            mean += m * w
        return GrammarCounts(
            field_mid=field_mid,
            field_cap_mid={s: get("cap_mid", s) for s in self.cap_fields},
            field_cap_init={s: get("cap_init", s) for s in self.cap_fields},
            lit_const=const, lit_init_delta=init_delta, mean=mean)

    def sample(self, rng: np.random.Generator, n: int, counts: GrammarCounts,
               allowed: dict[str, np.ndarray] | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
        """``n`` sentences drawn from ``rng``, with their token counts in running text (after a
        space) and at the start of a paragraph (after a line break): (texts, mid, init).
        ``allowed`` restricts a field to some of its options (indices): the entity fields to the
        surfaces that do not clash with an episode's own (:meth:`Others.allowed`)."""
        allowed = allowed or {}
        T = len(self.templates)
        which = rng.choice(T, size=n, p=self.weights)
        texts = np.empty(n, dtype=object)
        mid = np.zeros(n, dtype=np.int64)
        init = np.zeros(n, dtype=np.int64)
        for ti in range(T):
            rows = np.flatnonzero(which == ti)
            m = rows.size
            if m == 0:
                continue
            t = self.templates[ti]
            cols = []
            est = np.full(m, counts.lit_const[ti], dtype=np.int64)
            est_init = est + counts.lit_init_delta[ti]
            drawn = []  # positions into each field's choices
            for j, s in enumerate(t.fields):
                choices = allowed.get(s)
                n_opts = len(self.fields[s]) if choices is None else len(choices)
                if t.same_as[j] >= 0 and n_opts > 1:  # never the same person (or act) twice in a sentence
                    pos = (drawn[t.same_as[j]] + 1 + rng.integers(0, n_opts - 1, size=m)) % n_opts
                else:
                    pos = rng.integers(0, n_opts, size=m)
                drawn.append(pos)
                idx = pos if choices is None else choices[pos]
                if j == 0 and t.first_is_field:
                    cols.append(self.cap_fields[s][idx])
                    est += counts.field_cap_mid[s][idx]
                    est_init += counts.field_cap_init[s][idx]
                else:
                    cols.append(self.fields[s][idx])
                    add = counts.field_mid[s][idx]
                    est += add
                    est_init += add
            fmt = t.fmt.format
            texts[rows] = [fmt(*r) for r in zip(*cols, strict=True)] if cols else [t.fmt] * m
            mid[rows] = est
            init[rows] = est_init
        return texts.tolist(), mid, init


class Others:
    """Keys and values of other entities, for hard negatives: surfaces of ids the episode does not
    use, each handed out once, none equal to, inside or containing (ignoring case) a surface of
    the episode (``taken_keys``: its keys and look-alikes; ``taken_values``: its values).  Drawn
    from ``rng`` in batches."""

    _BATCH = 512

    def __init__(self, keys: Space, values: Space, rng: np.random.Generator, taken_keys=(), taken_values=()):
        self._spaces = {"key": keys, "value": values}
        self._rng = rng
        self._taken = {"key": {t.lower() for t in taken_keys}, "value": {t.lower() for t in taken_values}}
        self._joined = "\n".join(sorted(self._taken["key"] | self._taken["value"]))
        self._lengths = {w: sorted({len(t) for t in ts}) for w, ts in self._taken.items()}
        self._seen: set[str] = set()
        self._pool: dict[str, list[str]] = {"key": [], "value": []}

    def clashes(self, s: str, which: str) -> bool:
        """True if ``s`` (a ``which`` surface) lies inside any surface of the episode, or holds one
        of its ``which`` surfaces (surfaces of one space have one format, so a key never holds a
        value)."""
        low = s.lower()
        taken = self._taken[which]
        return low in self._joined or any(low[i:i + n] in taken for n in self._lengths[which] if n < len(low)
                                          for i in range(len(low) - n + 1))

    def allowed(self, grammar: Grammar) -> dict[str, np.ndarray]:
        """For each entity field of ``grammar``, the indices of its options that do not clash."""
        which = {"other_key": "key", "other_value": "value", "other_value2": "value"}
        return {f: np.flatnonzero([not self.clashes(o, which[f]) for o in grammar.fields[f].tolist()])
                for f in ENTITY_FIELDS if f in grammar.fields}

    def _next(self, which: str) -> str:
        pool = self._pool[which]
        while not pool:
            space = self._spaces[which]
            ids = self._rng.integers(0, space.capacity, size=self._BATCH)
            pool.extend(reversed([s for s in space.surfaces(ids) if not self.clashes(s, which)]))
        s = pool.pop()
        if s.lower() in self._seen:  # drawn before
            return self._next(which)
        self._seen.add(s.lower())
        return s

    def key(self) -> str:
        return self._next("key")

    def value(self) -> str:
        return self._next("value")
