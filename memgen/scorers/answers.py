"""Answers as value codes: token ids map to value ids by the vocabulary's arithmetic
(:class:`TokenVocab`); text answers are normalised once per distinct string and looked up among
the surfaces of the query's gold and trap values, strictly and leniently (:func:`text_codes`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from memgen.format.errors import DataError, MemgenError
from memgen.scorers.frame import QueryFrame
from memgen.scorers.normalise import (
    answer_tokens,
    find_sequences,
    is_absent,
    normalise,
    other_value_shaped,
    outermost,
    says_absent,
    strict_form,
    strict_form_of,
    type_word_tokens,
)
from memgen.scorers.outcomes import PRED_ABSENT, PRED_OTHER, PRED_UNPARSED, Ragged
from memgen.scorers.predictions import NOT_INT

#: (domain, value id) -> the value's surface text in that domain
ValueSurface = Callable[[str, int], str]


@dataclass(frozen=True)
class TokenVocab:
    """How token ids map to answers: value id ``v`` is token ``value_offset + v``; "unknown"
    is token ``absent_id``.  ``values`` (number of value ids) and ``vocab_size`` bound the
    ranges where known; without them every id from ``value_offset`` up reads as a value."""

    value_offset: int
    absent_id: int
    values: int | None = None
    vocab_size: int | None = None

    @classmethod
    def from_manifest(cls, manifest: Mapping, source: str = "manifest.json") -> TokenVocab:
        """From the manifest's ``vocab`` table (memgen.format.vocab.Vocab.to_dict())."""
        v = manifest.get("vocab")
        if not isinstance(v, Mapping) or "value_offset" not in v or "absent" not in v:
            raise DataError(f"{source}: no 'vocab' with 'value_offset' and 'absent'; "
                            "cannot read token predictions")
        return cls(int(v["value_offset"]), int(v["absent"]),
                   int(v["values"]) if "values" in v else None,
                   int(v["vocab_size"]) if "vocab_size" in v else None)

    def codes(self, tokens: np.ndarray) -> np.ndarray:
        """Value code of each token id (outcomes.PRED_*): a value id, absent, other (a
        special, key or filler id) or unparsed (negative, beyond the vocabulary, not an int)."""
        t = np.asarray(tokens, dtype=np.int64)
        hi = np.iinfo(np.int64).max if self.values is None else self.value_offset + self.values
        if self.vocab_size is not None:
            hi = min(hi, self.vocab_size)
        is_value = (t >= self.value_offset) & (t < hi)
        out = np.where(is_value, t - self.value_offset, PRED_OTHER)
        out[t == self.absent_id] = PRED_ABSENT
        bad = (t < 0) | (t == NOT_INT)
        if self.vocab_size is not None:
            bad |= t >= self.vocab_size
        out[bad] = PRED_UNPARSED
        return out


class _TextIndex:
    """What the text path needs of a frame, built once per (frame, surface function).

    Every strict form the scorer meets (gold texts, value surfaces, answers) gets an integer id,
    so that per-query work is array work: the gold's id per query, each row's domain code, and a
    sorted table (domain code, strict form id) -> value id over the gold and trap values of
    every text query.  The lenient search's table (per domain, the token tuple of every value
    any event of a text row states -> value id) is built on first use."""

    def __init__(self, frame: QueryFrame, value_surface: ValueSurface | None):
        self.frame, self.value_surface = frame, value_surface
        self._unloadable: set[int] = set()
        self.notes: list[str] = []
        self.ids: dict[str, int] = {}
        self._norms: dict[str, str] = {}
        self._forms: dict[tuple[int, str], int] = {}
        domain = pc.dictionary_encode(pa.array(frame.domain.tolist(), pa.string()))
        self.names = domain.dictionary.to_pylist()
        self.row_domain = _indices(domain)  # (R,) -1 outside the text rendering
        # the last entry is for code -1: rows without a domain have no type words
        self.type_words = [domain_type_words(n) for n in self.names] + [()]
        q_dom = self.row_domain[frame.row]
        gold = pc.dictionary_encode(pa.array(frame.answer_text, pa.string()))
        self.gold_id = self.form_ids(q_dom, _indices(gold), [normalise(t) for t in gold.dictionary.to_pylist()])

        text_q = frame.is_text()
        tr = frame.traps
        gold_q = np.flatnonzero(text_q & (frame.answer >= 0))
        qs, vals = [gold_q], [frame.answer[gold_q]]
        for rag in (tr.stale, tr.distractor, tr.other_keys, tr.deleted):
            sel = text_q[rag.owner]
            qs.append(rag.owner[sel])
            vals.append(rag.values[sel].astype(np.int64))
        q_all, v_all = np.concatenate(qs), np.concatenate(vals)
        self.vmax = int(max(v_all.max(initial=0), _max(frame.event_values))) + 1
        pairs = np.unique(q_dom[q_all] * self.vmax + v_all)
        # the dataset's own gold texts come first: they are what gold answers are compared to
        g_pairs, g_first = np.unique(q_dom[gold_q] * self.vmax + frame.answer[gold_q], return_index=True)
        self.known = dict(zip(g_pairs.tolist(), (frame.answer_text[i] for i in gold_q[g_first].tolist()),
                              strict=True))
        keys, values, without = [], [], 0
        pair_d, pair_v = np.divmod(pairs, self.vmax)
        for d in np.unique(pair_d).tolist():
            vs = pair_v[pair_d == d].tolist()
            for v, surface in zip(vs, self.surfaces(d, vs), strict=True):
                if not surface:
                    without += 1
                    continue
                keys.append((d << 32) | self.form_id(strict_form(surface, self.type_words[d])))
                values.append(v)
        k, v = np.asarray(keys, dtype=np.int64), np.asarray(values, dtype=np.int64)
        order = np.lexsort((v, k))
        k, v = k[order], v[order]
        first = np.ones(k.size, dtype=bool)
        first[1:] = k[1:] != k[:-1]
        collisions = int((~first).sum())
        self.keys, self.values = k[first], v[first]  # the smaller value id where surfaces collide
        if without:
            self.notes.append(f"{without} of {pairs.size} gold/trap values have no known surface text "
                              "(text answers naming them count as hallucinated or missed_absent)")
        if collisions:
            self.notes.append(f"{collisions} values share a normalised surface with another value "
                              "(the smaller value id is assumed)")
        self._sequences: dict[int, tuple[dict[tuple[str, ...], int], list[int]]] = {}
        self._episode_values: dict[int, frozenset[int]] = {}

    def surfaces(self, d: int, vs: list[int]) -> list[str | None]:
        """The text of each value of ``vs`` in domain code ``d``: a gold text of the dataset, else
        the surface function's (None where it has none).  The shipped domains' surfaces are
        made in one vectorised call per domain."""
        out = [self.known.get(d * self.vmax + v) for v in vs]
        todo = [i for i, x in enumerate(out) if x is None]
        if not todo or self.value_surface is None or d < 0 or d in self._unloadable:
            return [x or None for x in out]
        from memgen.render.text.domain import load_domain, value_surface

        made = None
        if self.value_surface is value_surface:
            try:
                made = load_domain(self.names[d]).values.surfaces([vs[i] for i in todo])
            except MemgenError:  # a domain that does not load, an id it cannot write: one by one
                made = None
        if made is None:
            made = [self._one(d, vs[i]) for i in todo]
        for i, x in zip(todo, made, strict=True):
            out[i] = x
        return [x or None for x in out]

    def _one(self, d: int, v: int) -> str | None:
        if d in self._unloadable:
            return None
        try:
            return self.value_surface(self.names[d], v)
        except MemgenError:  # the domain does not load: none of its surfaces can be had
            self._unloadable.add(d)
        except Exception:  # a surface the text rendering cannot give is counted as missing
            pass
        return None

    def form_id(self, form: str) -> int:
        return self.ids.setdefault(form, len(self.ids))

    def form_ids(self, dom: np.ndarray, idx: np.ndarray, norms: list[str]) -> np.ndarray:
        """The strict form id of the normalised text ``norms[idx[i]]`` in domain ``dom[i]``, each
        distinct pair once."""
        n = max(len(norms), 1)
        pairs, inv = np.unique((dom + 1) * n + np.maximum(idx, 0), return_inverse=True)
        forms = []
        for p in pairs.tolist():
            d, norm = p // n - 1, norms[p % n]
            fid = self._forms.get((d, norm))
            if fid is None:
                fid = self._forms[d, norm] = self.form_id(strict_form_of(norm, self.type_words[d]))
            forms.append(fid)
        return np.asarray(forms, dtype=np.int64)[inv.reshape(-1)]

    def normalised(self, texts: list[str]) -> list[str]:
        """:func:`normalise` of each text, each distinct text once for every model scored on
        the frame (models share most answers: the gold texts)."""
        cache = self._norms
        out = []
        for t in texts:
            norm = cache.get(t)
            if norm is None:
                norm = cache[t] = normalise(t)
            out.append(norm)
        return out

    def lookup(self, domain: np.ndarray, fid: np.ndarray) -> np.ndarray:
        """Value id whose strict form is ``fid`` in ``domain`` (PRED_OTHER where none is)."""
        if self.keys.size == 0:
            return np.full(fid.size, PRED_OTHER, dtype=np.int64)
        comp = (domain << 32) | fid
        pos = np.minimum(np.searchsorted(self.keys, comp), self.keys.size - 1)
        return np.where(self.keys[pos] == comp, self.values[pos], PRED_OTHER)

    def sequences(self, d: int) -> tuple[dict[tuple[str, ...], int], list[int]]:
        """Domain ``d``'s lenient table: the tokens of each value that an event of a text row (or
        a gold or trap) states -> its value id, and the token counts that occur, largest first."""
        if d not in self._sequences:
            ev = self.frame.event_values
            vals = [self.values[(self.keys >> 32) == d]]
            if ev is not None and ev.values.size:
                vals.append(ev.values[self.row_domain[ev.owner] == d])
            table: dict[tuple[str, ...], int] = {}
            vs = np.unique(np.concatenate(vals).astype(np.int64)).tolist()
            for v, surface in zip(vs, self.surfaces(d, vs), strict=True):
                if surface:
                    table.setdefault(tuple(strict_form(surface, self.type_words[d]).split()), v)
            table.pop((), None)
            self._sequences[d] = (table, sorted({len(t) for t in table}, reverse=True))
        return self._sequences[d]

    def episode_values(self, row: int) -> frozenset[int]:
        """Every value id that an event of row ``row`` states."""
        if row not in self._episode_values:
            ev = self.frame.event_values
            vals = ev.row(row).tolist() if ev is not None else []
            self._episode_values[row] = frozenset(vals)
        return self._episode_values[row]


def _max(rag: Ragged | None) -> int:
    return int(rag.values.max(initial=0)) if rag is not None and rag.values.size else 0


def _indices(encoded: pa.DictionaryArray) -> np.ndarray:
    """Dictionary indices as int64, -1 for nulls."""
    return pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _default_value_surface() -> ValueSurface:
    """How value ids read in each shipped domain (imported here: only text scoring needs it)."""
    from memgen.render.text.domain import value_surface

    return value_surface



def domain_type_words(domain: str | None) -> tuple[tuple[str, ...], ...]:
    """The type words that strict forms drop in ``domain``: the tokens of its ``thing_value``
    ("flight", "bin", "username", "assay score"), none for a domain that does not load."""
    if domain is None:
        return ()
    from memgen.render.text.domain import load_domain

    try:
        words = type_word_tokens(load_domain(domain).thing_value)
    except MemgenError:
        return ()
    return (words,) if words else ()


def strict_correct(answer: str | None, gold: str, domain: str | None = None) -> bool:
    """Whether the text ``answer`` is ``correct`` for ``gold`` under strict scoring in ``domain``
    (its type words dropped), as :func:`memgen.scorers.score` counts it: the same strict form
    as the gold's, or, for an absent gold (``"unknown"``), an absent phrase.  For code that
    checks one answer at a time (lm-eval's ``process_results``)."""
    from memgen.format.codes import ABSENT_TEXT

    if not answer:
        return False
    norm = normalise(answer)
    if not norm:
        return False
    if gold == ABSENT_TEXT:
        return is_absent(norm)
    words = domain_type_words(domain)
    return strict_form_of(norm, words) == strict_form(gold, words)


def text_codes(frame: QueryFrame, queries: np.ndarray, texts: pa.Array | Sequence[str | None],
               value_surface: ValueSurface | None = None,
               notes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(strict, lenient) value codes (outcomes.PRED_*) of each text answer ``texts[j]`` to query
    ``queries[j]`` (docs/scoring.md, "Text answers").

    Strict: the gold value id when the answer's strict form (:func:`strict_form`) is the
    gold's, ``PRED_ABSENT`` when it says the key has no value, the value id whose surface it
    is (gold or trap values of the episode's domain), ``PRED_OTHER`` otherwise,
    ``PRED_UNPARSED`` when empty or null.  Lenient: the strict code, except where that is
    ``PRED_OTHER``: the one value of the episode whose tokens the answer holds, else
    ``PRED_ABSENT`` if it names none and holds an absent phrase, else ``PRED_OTHER``.

    Each distinct (domain, answer) pair is normalised and searched once; the rest is array work."""
    key = ("text_index", id(value_surface))
    if key not in frame._cache:
        frame._cache[key] = _TextIndex(frame, value_surface)
    index: _TextIndex = frame._cache[key]
    if notes is not None:
        notes.extend(index.notes)
    arr = texts if isinstance(texts, pa.Array) else pa.array(list(texts), pa.string())
    enc = pc.dictionary_encode(arr)
    uniq = enc.dictionary.to_pylist()
    if not uniq:  # every answer is null
        none = np.full(queries.size, PRED_UNPARSED, dtype=np.int64)
        return none, none.copy()
    u = _indices(enc)
    null = u < 0
    dom = index.row_domain[frame.row[queries]]
    norms = index.normalised(uniq)
    absent_u = np.fromiter((is_absent(n) for n in norms), dtype=bool, count=len(norms))
    empty_u = np.fromiter((not n for n in norms), dtype=bool, count=len(norms))
    u = np.maximum(u, 0)
    fid = index.form_ids(dom, u, norms)
    found = index.lookup(dom, fid)
    strict = np.select(
        [null | empty_u[u], fid == index.gold_id[queries], absent_u[u]],
        [PRED_UNPARSED, frame.answer[queries], PRED_ABSENT], default=found)
    lenient = strict.copy()
    todo = np.flatnonzero(strict == PRED_OTHER)
    searched: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    tokens_of: dict[int, tuple[str, ...]] = {}
    for j in todo.tolist():
        d, a = int(dom[j]), int(u[j])
        if (d, a) not in searched:
            tokens_of[a] = tokens_of.get(a) or answer_tokens(norms[a])
            table, lengths = index.sequences(d)
            searched[d, a] = find_sequences(tokens_of[a], table, lengths)
        q = int(queries[j])
        episode = index.episode_values(int(frame.row[q]))
        gold = int(frame.answer[q])
        kept = outermost([m for m in searched[d, a] if m[2] in episode or m[2] == gold])
        values = {m[2] for m in kept}
        if len(values) == 1 and not other_value_shaped(tokens_of[a], kept):
            lenient[j] = values.pop()
        elif not values and says_absent(tokens_of[a]):
            lenient[j] = PRED_ABSENT
    return strict, lenient
