"""Normalisation of text answers (the rules are listed in docs/scoring.md).

:func:`normalise` is the comparison form of any text; :func:`answer_tokens` splits it into the
tokens that surfaces are matched by (a letter run and a digit run are two tokens, so "BA3792"
is "BA 3792"); :func:`strict_form` also drops the domain's own type words ("flight", "bin").
Strict scoring: two answers are the same iff their strict forms are equal.  Lenient scoring
looks for value surfaces as token sequences inside an answer (:func:`find_sequences`,
:func:`outermost`).  An
answer means "unknown" iff :func:`is_absent` says so (strict) or it holds an absent phrase
(:func:`says_absent`, lenient).  All are pure functions of the string, so the scorer caches them
per distinct string.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Sequence

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


# ---------------------------------------------------------------------------------------------
# tokens, strict forms, lenient search

#: a letter followed by a digit or a digit followed by a letter: a token boundary inside a code
_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")


def answer_tokens(normalised: str) -> tuple[str, ...]:
    """The tokens of a :func:`normalise` form: its words, each split where letters meet digits
    ("ba3792" -> "ba", "3792"; "vs 348" stays two tokens; a decimal "629.002" stays one)."""
    return tuple(_LETTER_DIGIT.sub(" ", normalised).split())


def type_word_tokens(thing: str) -> tuple[str, ...]:
    """The tokens of a domain's type word (its ``thing_value``: "flight", "assay score")."""
    return answer_tokens(normalise(thing))


def strict_form(text: str, type_words: Iterable[Sequence[str]] = ()) -> str:
    """The strict comparison form of ``text``: :func:`answer_tokens` of its normalised form, with
    every occurrence of each of ``type_words`` (token tuples, :func:`type_word_tokens`) removed
    unless nothing would be left, joined by spaces.  "flight BA3792" and "BA 3792" are both
    "ba 3792" when "flight" is the domain's type word."""
    return strict_form_of(normalise(text), type_words)


def strict_form_of(normalised: str, type_words: Iterable[Sequence[str]] = ()) -> str:
    """:func:`strict_form` of a text already :func:`normalise`-d."""
    tokens = answer_tokens(normalised)
    for tw in type_words:
        tokens = _without(tokens, tuple(tw)) or tokens
    return " ".join(tokens)


def _without(tokens: tuple[str, ...], seq: tuple[str, ...]) -> tuple[str, ...]:
    n = len(seq)
    if not n or seq[0] not in tokens:
        return tokens
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i:i + n] == seq:
            i += n
        else:
            out.append(tokens[i])
            i += 1
    return tuple(out)


def find_sequences(tokens: Sequence[str], table: dict[tuple[str, ...], int],
                   lengths: Iterable[int]) -> list[tuple[int, int, int]]:
    """Every (start, end, id) where ``tokens[start:end]`` is a key of ``table`` (token tuples of
    the sizes in ``lengths``)."""
    found = []
    for n in lengths:
        for i in range(len(tokens) - n + 1):
            v = table.get(tuple(tokens[i:i + n]))
            if v is not None:
                found.append((i, i + n, v))
    return found


def other_value_shaped(tokens: Sequence[str], spans: Iterable[tuple[int, int, int]]) -> bool:
    """True iff a token outside ``spans`` (the value matches kept) holds a digit, apart from a
    leading question number ("1: ..."): another value-shaped string (a code, a number), which
    may be a value the text mentioned that is not among the episode's events (the filler's
    hard negatives), so the answer names more than one value."""
    covered = set()
    for start, end, _ in spans:
        covered.update(range(start, end))
    for i, tok in enumerate(tokens):
        if i in covered or (i == 0 and tok.isdigit() and len(tok) <= 3):
            continue
        if any(c.isdigit() for c in tok):
            return True
    return False


def outermost(matches: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """``matches`` without those that lie inside a longer one: "blue" is not found inside
    "blue whale" when both are surfaces."""
    if len(matches) < 2:
        return matches
    return [m for m in matches if not any(o[0] <= m[0] and m[1] <= o[1] and o[1] - o[0] > m[1] - m[0]
                                          for o in matches)]


#: absent phrases that are no evidence inside a longer answer: "na" is also a code's letters
_NOT_LENIENT = frozenset({"na", "n a"})
#: the absent phrases searched for inside an answer, as token tuples, by first token
_ABSENT_BY_FIRST: dict[str, list[tuple[str, ...]]] = {}
for _seq in sorted((answer_tokens(p) for p in ABSENT_PHRASES if p not in _NOT_LENIENT), key=len, reverse=True):
    _ABSENT_BY_FIRST.setdefault(_seq[0], []).append(_seq)


def says_absent(tokens: Sequence[str]) -> bool:
    """True iff the answer's tokens hold an absent phrase (:data:`ABSENT_PHRASES` but "na" and
    "n/a") anywhere: "I'm afraid that is unknown", "The trip was deleted from the log"."""
    t = tuple(tokens)
    return any(t[i:i + len(seq)] == seq for i, w in enumerate(t) for seq in _ABSENT_BY_FIRST.get(w, ()))
