"""Ordinal words ("first", "twenty-second", "one hundred and third") for version questions."""

from __future__ import annotations

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
              "nine": "ninth", "twelve": "twelfth"}


def cardinal(n: int) -> str:
    """``n`` in words, 0 <= n < 1,000,000 ("three hundred and twelve")."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"cardinal() takes 0 <= n < 1,000,000, not {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        t, o = divmod(n, 10)
        return _TENS[t] + (f"-{_ONES[o]}" if o else "")
    if n < 1000:
        h, r = divmod(n, 100)
        return f"{_ONES[h]} hundred" + (f" and {cardinal(r)}" if r else "")
    th, r = divmod(n, 1000)
    return f"{cardinal(th)} thousand" + ((" and " if r < 100 else " ") + cardinal(r) if r else "")


def ordinal(n: int) -> str:
    """``n``-th in words, 1 <= n < 1,000,000 ("first", "twenty-second", "one hundredth")."""
    if n < 1:
        raise ValueError(f"ordinal() takes n >= 1, not {n}")
    words = cardinal(n)
    head, sep, last = max(((words.rpartition(s)) for s in (" ", "-")), key=lambda p: len(p[0]))
    if last in _IRREGULAR:
        last = _IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last
