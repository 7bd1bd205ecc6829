"""Answers as value codes: token ids map to value ids by the vocabulary's arithmetic
(:class:`TokenVocab`); text answers are normalised once per distinct string and looked up among
the surfaces of the query's gold and trap values (:func:`text_codes`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from memgen.format.errors import DataError
from memgen.scorers.frame import QueryFrame
from memgen.scorers.normalise import is_absent, normalise
from memgen.scorers.outcomes import PRED_ABSENT, PRED_OTHER, PRED_UNPARSED
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

    Every normalised string the scorer meets (gold texts, value surfaces, answers) gets an
    integer id, so that per-query work is array work: the gold's id per query, each row's
    domain code, and a sorted table (domain code, normalised surface id) -> value id over the
    gold and trap values of every text query."""

    def __init__(self, frame: QueryFrame, value_surface: ValueSurface | None):
        self.notes: list[str] = []
        self.ids: dict[str, int] = {}
        gold = pc.dictionary_encode(pa.array(frame.answer_text, pa.string()))
        self.gold_id = self.norm_ids(gold.dictionary.to_pylist())[_indices(gold)]

        domain = pc.dictionary_encode(pa.array(frame.domain.tolist(), pa.string()))
        names = domain.dictionary.to_pylist()
        self.row_domain = _indices(domain)  # (R,) -1 outside the text rendering

        text_q = frame.is_text()
        q_dom = self.row_domain[frame.row]
        tr = frame.traps
        gold_q = np.flatnonzero(text_q & (frame.answer >= 0))
        qs, vals = [gold_q], [frame.answer[gold_q]]
        for rag in (tr.stale, tr.distractor, tr.other_keys, tr.deleted):
            sel = text_q[rag.owner]
            qs.append(rag.owner[sel])
            vals.append(rag.values[sel].astype(np.int64))
        q_all, v_all = np.concatenate(qs), np.concatenate(vals)
        vmax = int(v_all.max(initial=0)) + 1
        pairs = np.unique(q_dom[q_all] * vmax + v_all)
        # the dataset's own gold texts come first: they are what gold answers are compared to
        g_pairs, g_first = np.unique(q_dom[gold_q] * vmax + frame.answer[gold_q], return_index=True)
        known = dict(zip(g_pairs.tolist(), (frame.answer_text[i] for i in gold_q[g_first].tolist()),
                         strict=True))
        keys, values, without = [], [], 0
        for pair in pairs.tolist():
            d, v = pair // vmax, pair % vmax
            surface = known.get(pair)
            if surface is None and value_surface is not None:
                try:
                    surface = value_surface(names[d], v)
                except Exception:  # a surface the text rendering cannot give is counted below
                    surface = None
            if not surface:
                without += 1
                continue
            keys.append((d << 32) | self.norm_id(normalise(surface)))
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

    def norm_id(self, normalised: str) -> int:
        return self.ids.setdefault(normalised, len(self.ids))

    def norm_ids(self, texts: list[str | None]) -> np.ndarray:
        return np.fromiter((self.norm_id(normalise(t or "")) for t in texts), dtype=np.int64, count=len(texts))

    def lookup(self, domain: np.ndarray, nid: np.ndarray) -> np.ndarray:
        """Value id whose surface is ``nid`` in ``domain`` (PRED_OTHER where none is)."""
        if self.keys.size == 0:
            return np.full(nid.size, PRED_OTHER, dtype=np.int64)
        comp = (domain << 32) | nid
        pos = np.minimum(np.searchsorted(self.keys, comp), self.keys.size - 1)
        return np.where(self.keys[pos] == comp, self.values[pos], PRED_OTHER)


def _indices(encoded: pa.DictionaryArray) -> np.ndarray:
    """Dictionary indices as int64, -1 for nulls."""
    return pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _default_value_surface() -> ValueSurface:
    """How value ids read in each shipped domain (imported here: only text scoring needs it)."""
    from memgen.render.text.domain import value_surface

    return value_surface


def text_codes(frame: QueryFrame, queries: np.ndarray, texts: pa.Array | Sequence[str | None],
               value_surface: ValueSurface | None = None, notes: list[str] | None = None) -> np.ndarray:
    """Value code (outcomes.PRED_*) of each text answer ``texts[j]`` to query ``queries[j]``:
    the gold value id when it normalises to the gold text, ``PRED_ABSENT`` when it says the
    key has no value, the value id whose surface it names (gold or trap values of the
    episode's domain), ``PRED_OTHER`` otherwise, ``PRED_UNPARSED`` when empty or null.

    Each distinct answer string is normalised once; the rest is array work."""
    key = ("text_index", id(value_surface))
    if key not in frame._cache:
        frame._cache[key] = _TextIndex(frame, value_surface)
    index: _TextIndex = frame._cache[key]
    if notes is not None:
        notes.extend(index.notes)
    arr = texts if isinstance(texts, pa.Array) else pa.array(list(texts), pa.string())
    enc = pc.dictionary_encode(arr)
    uniq = enc.dictionary.to_pylist()
    norms = [normalise(t) for t in uniq]
    nid_u = np.fromiter((index.norm_id(n) for n in norms), dtype=np.int64, count=len(norms))
    absent_u = np.fromiter((is_absent(n) for n in norms), dtype=bool, count=len(norms))
    empty_u = np.fromiter((not n for n in norms), dtype=bool, count=len(norms))
    u = _indices(enc)
    null = u < 0
    u = np.maximum(u, 0)
    if not norms:  # every answer is null
        return np.full(queries.size, PRED_UNPARSED, dtype=np.int64)
    nid = nid_u[u]
    found = index.lookup(index.row_domain[frame.row[queries]], nid)
    return np.select(
        [null | empty_u[u], nid == index.gold_id[queries], absent_u[u]],
        [PRED_UNPARSED, frame.answer[queries], PRED_ABSENT], default=found)
