"""Normalisation of text answers (the rules are listed in docs/scoring.md).

Two answers are the same iff their :func:`normalise` forms are equal; an answer means
"unknown" iff :func:`is_absent` says so.  Both are pure functions of the string, so the scorer
caches them per distinct string.
"""

from __future__ import annotations

import re
import string
import unicodedata

# punctuation becomes a space; "." and "," between digits are handled before this
_PUNCT = {ord(c): " " for c in string.punctuation + "\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00a0"}
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_TRAILING_ZEROS = re.compile(r"(?<=\d)\.0+(?!\d)")
_TRAILING_DECIMAL_ZEROS = re.compile(r"(?<=\d)(\.\d*?[1-9])0+(?!\d)")
_DECIMAL = re.compile(r"(?<=\d)\.(?=\d)")
_LEADING_ZEROS = re.compile(r"(?<![\d.\x00])0+(?=\d)")
_DECIMAL_MARK = "\x00"  # survives the punctuation table, restored as "."

#: lead-ins that a model may put before its answer; removed from the front, longest first
LEAD_INS = (
    "the answer is", "answer is", "the answer", "answer", "final answer",
    "it is", "it s", "its", "the", "a", "an",
)

#: whole answers (after normalisation and lead-in removal) that mean "no value"
ABSENT_PHRASES = frozenset({
    "unknown", "not known", "unknown value", "value unknown",
    "no longer exists", "it no longer exists", "no longer known", "no longer available",
    "none", "n a", "na", "null", "nil", "nothing", "no value", "no answer",
    "not set", "never set", "not available", "not stated", "not mentioned", "never mentioned",
    "not specified", "not recorded", "not given",
    "deleted", "was deleted", "it was deleted", "has been deleted", "it has been deleted",
    "removed", "was removed", "it was removed", "discarded", "was discarded", "it was discarded",
    "does not exist", "doesn t exist", "it does not exist", "it doesn t exist",
    "i don t know", "i do not know", "don t know", "cannot be determined", "can t tell",
})
#: a normalised answer that starts with one of these words is absent ("unknown (deleted)")
ABSENT_FIRST_WORDS = ("unknown",)

_ARTICLES = (("a",), ("an",), ("the",))
#: lead-ins as word tuples, by first word, longest first
_LEADS_BY_FIRST: dict[str, list[tuple[str, ...]]] = {}
for _lead in sorted(LEAD_INS, key=lambda s: s.count(" "), reverse=True):
    _LEADS_BY_FIRST.setdefault(_lead.split()[0], []).append(tuple(_lead.split()))


def normalise(text: str) -> str:
    """The comparison form of ``text``: NFKC, lower case, thousands separators, trailing
    decimal zeros and leading zeros of numbers dropped ("1,200.00" -> "1200", "007" -> "7"),
    every punctuation mark a space (a "." between digits stays), whitespace collapsed, and one
    leading lead-in (:data:`LEAD_INS`: "the answer is", "the", "a", ...) removed when words
    remain after it (an article only before a word of two or more letters).
    """
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    s = text.lower()
    if "," in s:
        s = _THOUSANDS.sub("", s)
    if "." in s:
        s = _TRAILING_ZEROS.sub("", s)
        s = _TRAILING_DECIMAL_ZEROS.sub(r"\1", s)
        s = _DECIMAL.sub(_DECIMAL_MARK, s)
    if "0" in s:
        s = _LEADING_ZEROS.sub("", s)
    words = s.translate(_PUNCT).split()
    if len(words) > 1:
        words = _drop_lead_in(words)
    out = " ".join(words)
    return out.replace(_DECIMAL_MARK, ".") if _DECIMAL_MARK in out else out


def _drop_lead_in(words: list[str]) -> list[str]:
    for lead in _LEADS_BY_FIRST.get(words[0], ()):
        n = len(lead)
        if len(words) > n and tuple(words[:n]) == lead:
            nxt = words[n]
            if lead in _ARTICLES and not (nxt.isalpha() and len(nxt) > 1):
                return words  # "A-007", "a 7": a letter code, not an article
            return words[n:]
    return words


def is_absent(normalised: str) -> bool:
    """True iff a normalised answer says the key has no value ("unknown", "not known",
    "no longer exists", "none", "n/a", "deleted", ...: :data:`ABSENT_PHRASES`, or a first word
    in :data:`ABSENT_FIRST_WORDS`)."""
    if normalised in ABSENT_PHRASES:
        return True
    first = normalised.split(" ", 1)[0]
    return first in ABSENT_FIRST_WORDS
