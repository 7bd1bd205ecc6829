"""Filler prose: a small compositional grammar per domain, sampled in bulk.

A grammar is a list of sentence templates whose ``{slot}`` fields are filled from word lists
(``domain.yaml``, section ``filler``, merged with ``templates/_shared/filler.yaml``).  With a
few dozen templates and a few dozen options per slot it has millions of sentences, so a
128K-token context hardly repeats one.

Token counts are never measured sentence by sentence.  Every literal piece and every slot
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
from memgen.render.text.tokenizers import LengthCounter

_SLOT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_AFTER_SLOT_OK = set(" ,.;:!?)")


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


@dataclass(frozen=True)
class _Template:
    fmt: str  # python format string, positional fields
    slots: tuple[str, ...]  # slot names in order of appearance
    lits: tuple[str, ...]  # literal pieces of " " + template (the first keeps its leading space)
    first_is_slot: bool


@dataclass(frozen=True)
class GrammarCounts:
    """Token counts of a grammar's pieces under one tokenizer."""

    slot_mid: dict[str, np.ndarray]  # count(" " + option)
    slot_cap_mid: dict[str, np.ndarray]  # count(" " + Option), sentence-initial slots
    slot_cap_init: dict[str, np.ndarray]  # count("Option"), paragraph-initial slots
    lit_const: np.ndarray  # (T,) sum of the literal pieces, in running text
    lit_init_delta: np.ndarray  # (T,) count(first literal, no space) - count(" " + it)
    mean: float  # expected tokens of a sentence in running text


class Grammar:
    """Sentence templates over word-list slots; see the module docstring."""

    def __init__(self, sentences: list[str], slots: dict[str, list[str]], where: str):
        if not sentences:
            raise UsageError(f"{where}: the grammar needs at least one sentence template")
        self.slots = {k: np.array([str(x) for x in v], dtype=object) for k, v in slots.items()}
        self.cap_slots = {}
        self.templates: list[_Template] = []
        for t in sentences:
            t = str(t)
            names = _SLOT.findall(t)
            for m in _SLOT.finditer(t):
                if m.start() > 0 and t[m.start() - 1] != " ":
                    raise UsageError(f"{where}: in {t!r}, {{{m.group(1)}}} must follow a space")
                if m.end() < len(t) and t[m.end()] not in _AFTER_SLOT_OK:
                    raise UsageError(f"{where}: in {t!r}, {{{m.group(1)}}} must be followed by a space "
                                     "or punctuation")
            for n in names:
                if n not in self.slots or not len(self.slots[n]):
                    raise UsageError(f"{where}: sentence {t!r} uses undefined or empty slot {{{n}}}")
            first_is_slot = t.startswith("{")
            if first_is_slot:
                self.cap_slots[names[0]] = np.array([_cap(s) for s in self.slots[names[0]]], dtype=object)
            # literal pieces of " " + t, each slot taking the space before it
            pieces = _SLOT.split(" " + t)  # lit, name, lit, name, ..., lit
            raw = pieces[::2]
            lits = [p[:-1] if i < len(raw) - 1 else p for i, p in enumerate(raw)]
            lits = [p for p in lits if p]
            fmt = _SLOT.sub("{}", t)  # the fields, in order, positionally
            self.templates.append(_Template(fmt, tuple(names), tuple(lits), first_is_slot))
        # a template is drawn with probability ~ sqrt(sentences it can make): large templates
        # rarely repeat a sentence and small ones still show up
        sizes = np.array([float(np.prod([len(self.slots[s]) for s in t.slots])) for t in self.templates])
        self.weights = np.sqrt(sizes) / np.sqrt(sizes).sum()

    def vocabulary(self) -> set[str]:
        """Every word (lower case, letters and digits) the grammar can produce."""
        out: set[str] = set()
        for t in self.templates:
            out.update(w.lower() for w in re.findall(r"[A-Za-z0-9]+", re.sub(r"\{\d*\}", " ", t.fmt)))
        for opts in self.slots.values():
            for o in opts:
                out.update(w.lower() for w in re.findall(r"[A-Za-z0-9]+", o))
        return out

    def texts(self) -> list[str]:
        """All literal text and all options (for checks)."""
        out = [re.sub(r"\{\d*\}", " ", t.fmt) for t in self.templates]
        for opts in self.slots.values():
            out.extend(opts.tolist())
        return out

    def combinations(self) -> int:
        """Number of distinct sentences the grammar can write (upper bound)."""
        total = 0
        for t in self.templates:
            n = 1
            for s in t.slots:
                n *= len(self.slots[s])
            total += n
        return total

    @lru_cache(maxsize=16)  # noqa: B019  (grammars live as long as their domain: the process)
    def counts(self, counter: LengthCounter) -> GrammarCounts:
        used = sorted({s for t in self.templates for s in t.slots})
        strings: list[str] = []
        spans: dict[tuple[str, str], tuple[int, int]] = {}

        def add(tag: str, name: str, items) -> None:
            spans[(tag, name)] = (len(strings), len(strings) + len(items))
            strings.extend(items)

        for s in used:
            add("mid", s, [" " + o for o in self.slots[s]])
        for s, caps in self.cap_slots.items():
            add("cap_mid", s, [" " + o for o in caps])
            add("cap_init", s, list(caps))
        lit_all = sorted({p for t in self.templates for p in t.lits} |
                         {t.lits[0].lstrip() for t in self.templates if not t.first_is_slot and t.lits})
        add("lit", "", lit_all)
        c = np.array(counter.count_many(strings), dtype=np.int64)

        def get(tag: str, name: str) -> np.ndarray:
            a, b = spans[(tag, name)]
            return c[a:b]

        lit_count = dict(zip(lit_all, get("lit", "").tolist(), strict=True))
        slot_mid = {s: get("mid", s) for s in used}
        T = len(self.templates)
        const = np.zeros(T, dtype=np.int64)
        init_delta = np.zeros(T, dtype=np.int64)
        mean = 0.0
        for i, t in enumerate(self.templates):
            w = float(self.weights[i])
            const[i] = sum(lit_count[p] for p in t.lits)
            if not t.first_is_slot and t.lits:
                init_delta[i] = lit_count[t.lits[0].lstrip()] - lit_count[t.lits[0]]
            m = float(const[i])
            for j, s in enumerate(t.slots):
                m += float(get("cap_mid", s).mean() if (j == 0 and t.first_is_slot) else slot_mid[s].mean())
            mean += m * w
        return GrammarCounts(
            slot_mid=slot_mid,
            slot_cap_mid={s: get("cap_mid", s) for s in self.cap_slots},
            slot_cap_init={s: get("cap_init", s) for s in self.cap_slots},
            lit_const=const, lit_init_delta=init_delta, mean=mean)

    def sample(self, rng: np.random.Generator, n: int, counts: GrammarCounts
               ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """``n`` sentences drawn from ``rng``, with their token counts in running text (after a
        space) and at the start of a paragraph (after a line break): (texts, mid, init)."""
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
            for j, s in enumerate(t.slots):
                idx = rng.integers(0, len(self.slots[s]), size=m)
                if j == 0 and t.first_is_slot:
                    cols.append(self.cap_slots[s][idx])
                    est += counts.slot_cap_mid[s][idx]
                    est_init += counts.slot_cap_init[s][idx]
                else:
                    cols.append(self.slots[s][idx])
                    add = counts.slot_mid[s][idx]
                    est += add
                    est_init += add
            fmt = t.fmt.format
            texts[rows] = [fmt(*r) for r in zip(*cols, strict=True)] if cols else [t.fmt] * m
            mid[rows] = est
            init[rows] = est_init
        return texts.tolist(), mid, init
