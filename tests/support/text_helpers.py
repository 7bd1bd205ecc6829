"""Shared builders and checks for the text-rendering tests."""

from __future__ import annotations

import re

from memgen.ir.episode import Episode, Event, Query
from memgen.ir.replay import replay

SETS = ("write", "overwrite", "silent_write")


def catalogue_episode(key0: int = 40_000, value0: int = 90_000) -> Episode:
    """Every op, every distractor kind, every ask and an absent answer, with large ids; one
    question interleaved after event 3, the rest at the end."""
    k1, k2, k3, k4, k5 = (key0 + i for i in range(5))
    v = lambda i: value0 + i  # noqa: E731
    events = (
        Event("write", k1, v(1)),
        Event("write", k2, v(2), signal=False),
        Event("write", k3, v(3)),
        Event("write", k1, v(4)),  # overwrite
        Event("distractor", k1, v(5), kind="negated"),
        Event("distractor", k2, v(6), kind="hypothetical"),
        Event("distractor", k3, v(7), kind="unconfirmed"),
        Event("distractor", k1, v(8), kind="rejected"),
        Event("distractor", k2, v(9), kind="lookalike", alias=key0 + 500),
        Event("delete", k3),
        Event("write", k3, v(10)),  # written again after the delete
        Event("write", k1, v(11), signal=False),  # a silent overwrite
        Event("write", k4, v(12)),
        Event("delete", k4),
    )
    end = len(events) - 1
    queries = (
        Query(0, k1, "latest", after=3),
        Query(1, k1, "latest", after=end),
        Query(2, k1, "version", version=1, after=end),
        Query(3, k1, "previous", after=end),
        Query(4, k2, "latest", after=end),
        Query(5, k5, "latest", after=end),
        Query(6, k3, "version", version=2, after=end),
        Query(7, k4, "latest", after=end),
    )
    return replay(Episode("catalogue", "mixed", events, queries, seed=7))


def deciding_event(ep: Episode, q: Query) -> int | None:
    """Index of the set whose value is the query's gold answer (None when absent)."""
    if q.answer < 0:
        return None
    sets = [i for i, e in enumerate(ep.events[:q.after + 1]) if e.key == q.key and e.op in SETS]
    if q.ask == "latest":
        i = sets[-1]
    elif q.ask == "version":
        i = sets[q.version - 1]
    else:
        i = sets[-2]
    assert ep.events[i].value == q.answer
    return i


def occurrences(text: str, surface: str) -> list[int]:
    """Start offsets of ``surface`` in ``text`` as a whole token (no letter or digit touching it)."""
    pat = r"(?<![A-Za-z0-9])" + re.escape(surface) + r"(?![A-Za-z0-9])"
    return [m.start() for m in re.finditer(pat, text)]


def filler_only(row) -> str:
    """The context with every event and inline question cut out (a NUL where each was)."""
    spans = sorted([s for s in row.event_spans if s[0] >= 0] + [s for s in row.query_spans if s[0] >= 0])
    out, pos = [], 0
    for s, e in spans:
        out.append(row.context[pos:s])
        out.append("\x00")
        pos = e
    out.append(row.context[pos:])
    return "".join(out)


def check_row(row, domain: str) -> None:
    """Every promise of render_text about one rendered episode (see its docstring)."""
    from memgen.render.text.domain import CUE_WORDS, has_cue, load_domain
    from memgen.render.text.episode import tolerance

    dom = load_domain(domain)
    ep = row.episode
    ctx = row.context
    assert row.target_length - tolerance(row.target_length) <= row.length <= row.target_length
    assert ctx.isascii() and row.prompt.isascii()
    assert ctx in row.prompt
    keys = {e.key for e in ep.events} | {q.key for q in ep.queries}
    key_s = {dom.key_surface(k) for k in keys}
    looks = {dom.lookalike_surface(e.key, e.alias) for e in ep.events if e.kind == "lookalike"}
    set_values = {e.value for e in ep.events if e.op in SETS}
    values = {e.value for e in ep.events if e.op != "delete"}
    spans = [(e.start, e.end) for e in ep.events]
    assert spans == sorted(spans) and all(0 <= s < t for s, t in spans)  # in order, disjoint
    assert all(b[0] >= a[1] for a, b in zip(spans, spans[1:], strict=False))
    for e in ep.events:
        text = ctx[e.start:e.end]
        named = dom.lookalike_surface(e.key, e.alias) if e.kind == "lookalike" else dom.key_surface(e.key)
        assert occurrences(text, named), (e, text)
        if e.op == "delete":
            assert not any(occurrences(text, dom.value_surface(v)) for v in values)
        else:
            assert occurrences(text, dom.value_surface(e.value)), (e, text)
        if e.op in ("write", "overwrite"):
            assert has_cue(text), text
        if e.op == "silent_write":
            assert not has_cue(text.replace(dom.key_surface(e.key), " ")), text
            assert not any(w in CUE_WORDS for w in re.findall(r"[a-z]+", text.lower())), text
    for e in ep.events:  # a distractor's value sits in its own span and nowhere else
        if e.op == "distractor" and e.value not in set_values:
            hits = occurrences(ctx, dom.value_surface(e.value))
            assert len(hits) == 1 and e.start <= hits[0] < e.end, e
    for q in ep.queries:
        i = deciding_event(ep, q)
        if i is None:
            assert q.answer_text == "unknown"
            continue
        e = ep.events[i]
        assert q.answer_text == dom.value_surface(q.answer)
        assert occurrences(ctx[e.start:e.end], q.answer_text)
        assert occurrences(ctx[e.start:e.end], dom.key_surface(q.key))
    filler = filler_only(row).lower()
    for s in key_s | looks | {dom.value_surface(v) for v in values}:
        assert s.lower() not in filler, s
    for i, q in enumerate(ep.queries):  # numbered questions: inline in the context, else after it
        line = f"{i + 1}. {row.questions[i]}"
        if q.start >= 0:
            assert ctx[q.start:q.end].endswith(row.questions[i])
            assert line not in row.prompt
        else:
            assert line in row.prompt
