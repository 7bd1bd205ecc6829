"""``render_text``: one episode as natural language, exactly as long as asked.

The prompt is ``head + context + tail``: the head holds the instructions and the answer format
and ends with ``<log>``; the context is filler prose with the events (and any interleaved
questions) in order; the tail closes the log, lists the questions asked at the end and
repeats the answer format.

Length without re-tokenising in a loop:

1. Every piece is counted once: head, tail, each event and inline question (as it will appear),
   and each filler sentence as the sum of its grammar pieces' counts (:mod:`.filler`); line
   breaks are counted by the character before them.  The sum is the *estimate*.
2. Filler is cut into the gaps between events, then sentences (and, last, short sentences of a
   few tokens) are added or removed at the end of the last gap until the estimate is within
   2 tokens below ``aim = target - tol // 4``, inside the allowed band ``[target - tol, target]``,
   ``tol = max(0.5% of target, 16)``.
3. The assembled prompt is counted once for real.  For tokenizers whose counts add up over
   pieces (cl100k, o200k and whitespace-split Hugging Face tokenizers) this single count is
   all; otherwise the difference is corrected at the end of the last gap and counted again
   (a handful of times at most).  The stored ``length`` is always the real count.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from itertools import accumulate

import numpy as np

from memgen.format.codes import ABSENT_TEXT
from memgen.format.errors import DataError, UsageError
from memgen.ir.episode import Episode
from memgen.ir.rng import derive_seed
from memgen.render.text.domain import Domain, load_domain
from memgen.render.text.filler import Others
from memgen.render.text.ordinals import ordinal
from memgen.render.text.passages import cut_passages
from memgen.render.text.tokenizers import LengthCounter, load_tokenizer

FILLER, EVENT, SILENT_WRITE, QUESTION, DECOY = range(5)  # DECOY: an explicit event about another entity


_SEP = ("", " ", "\n\n")  # before a unit: nothing (first), a space, a paragraph break
_PARAGRAPH = (3, 8)  # filler sentences per paragraph, uniform in [lo, hi)
#: share of filler sentences that are events about other entities (Domain.decoys): hard negatives
DECOY_SHARE = 0.75
_MAX_ADJUST = 48
_SLACK = 2  # the estimate settles within this many tokens below the aim
_MAX_RECOUNT = 6

#: how an interleaved question reads inside the context (n is its 1-based number)
INLINE_QUESTION = "Question {n}: {text}"


def tolerance(target_length: int) -> int:
    """How far below the target a prompt may end: max(0.5% of the target, 16) tokens."""
    return max(int(target_length * 0.005), 16)


@dataclass(frozen=True)
class TextRow:
    """One rendered episode.  Spans are ``(start, end)`` offsets into ``context`` (Python string
    indices; the text is ASCII, so they are byte offsets too), end exclusive.  A question asked
    after the context has span ``(-1, -1)``."""

    context: str
    prompt: str
    questions: tuple[str, ...]
    answer_texts: tuple[str, ...]
    event_spans: tuple[tuple[int, int], ...]
    query_spans: tuple[tuple[int, int], ...]
    length: int  # real token count of the prompt
    target_length: int
    tokenizer: str
    domain: str
    source: Episode  # the episode as given
    passages: tuple[int, ...] = ()  # passage offsets into context (P + 1; render/text/passages.py), or none

    @cached_property
    def episode(self) -> Episode:
        """The input episode with spans, answer texts, rendering and lengths filled in."""
        ep = self.source
        return replace(
            ep,
            events=tuple(replace(e, start=s, end=t) for e, (s, t) in zip(ep.events, self.event_spans, strict=True)),
            queries=tuple(replace(q, start=s, end=t, answer_text=a) for q, (s, t), a
                          in zip(ep.queries, self.query_spans, self.answer_texts, strict=True)),
            rendering="text", target_length=self.target_length, length=self.length)


@lru_cache(maxsize=256)
def _break_cost(counter: LengthCounter, c: str) -> int:
    """Tokens a paragraph break adds after character ``c``."""
    return counter.count(c + "\n\n") - counter.count(c)


class _Units:
    """The context as units (filler sentences, events, inline questions) in reading order."""

    def __init__(self, counter: LengthCounter, sizes: np.ndarray):
        self.counter = counter
        self.kind: list[int] = []
        self.text: list[str] = []
        self.mid: list[int] = []  # tokens after a space
        self.init: list[int] = []  # tokens at the start of a paragraph (-1: not counted yet)
        self.ref: list[int] = []  # event or query index (-1 for filler)
        self.sizes = sizes

    def add(self, kind: int, text: str, mid: int, init: int, ref: int = -1) -> None:
        self.kind.append(kind)
        self.text.append(text)
        self.mid.append(int(mid))
        self.init.append(int(init))
        self.ref.append(ref)

    def pop(self, i: int) -> None:
        for lst in (self.kind, self.text, self.mid, self.init, self.ref):
            lst.pop(i)

    def seps(self) -> np.ndarray:
        """Separator code before each unit: events and questions are paragraphs of their own;
        filler sentences and silent writes run on in paragraphs of a few sentences."""
        out = np.empty(len(self.kind), dtype=np.int8)
        run, limit, p, block = 0, 0, 0, True
        sizes = self.sizes
        for i, k in enumerate(self.kind):
            if k == EVENT or k == QUESTION or k == DECOY:
                out[i] = 2
                block = True
            elif block or run >= limit:
                out[i] = 2
                run, block = 1, False
                limit = int(sizes[p % sizes.size])
                p += 1
            else:
                out[i] = 1
                run += 1
        if out.size:
            out[0] = 0
        return out

    def estimate(self, seps: np.ndarray) -> int:
        """Tokens of the context (as :meth:`assemble` joins it), by the pieces' counts."""
        if not self.kind:
            return 0
        mid, init = np.asarray(self.mid), np.asarray(self.init)
        lazy = np.flatnonzero((seps != 1) & (init < 0))  # counted only when first needed
        if lazy.size:
            for i, n in zip(lazy.tolist(), self.counter.count_many([self.text[i] for i in lazy.tolist()]),
                            strict=True):
                self.init[i] = init[i] = n
        total = int(np.where(seps == 1, mid, init).sum())
        brk = np.flatnonzero(seps == 2)
        if brk.size:
            total += sum(_break_cost(self.counter, self.text[i - 1][-1]) for i in brk.tolist())
        return total

    def assemble(self, seps: np.ndarray) -> tuple[str, list[tuple[int, int]]]:
        """The context string and the span of every unit."""
        pieces: list[str] = []
        for s, t in zip(seps.tolist(), self.text, strict=True):
            pieces.append(_SEP[s])
            pieces.append(t)
        ends = list(accumulate(map(len, pieces)))
        spans = [(ends[2 * i], ends[2 * i + 1]) for i in range(len(self.text))]
        return "".join(pieces), spans

    def last_filler(self) -> int:
        for i in range(len(self.kind) - 1, -1, -1):
            if self.kind[i] == FILLER:
                return i
        return -1


class _Pool:
    """Filler sentences not yet used, with their counts, drawn in order; ``refill()`` draws
    more when they run out."""

    def __init__(self, texts: list[str], mid: np.ndarray, init: np.ndarray, refill):
        self.texts, self.mid, self.init, self.next, self.refill = list(texts), mid, init, 0, refill

    def peek_mid(self) -> int:
        if self.next >= len(self.texts):
            texts, mid, init = self.refill()
            self.texts, self.mid, self.init, self.next = list(texts), mid, init, 0
        return int(self.mid[self.next])

    def take(self) -> tuple[str, int, int]:
        self.peek_mid()
        i = self.next
        self.next += 1
        return self.texts[i], int(self.mid[i]), int(self.init[i])


def _gap_weights(rng: np.random.Generator, n_events: int, depth: tuple[float, float], spacing: str,
                 alpha: float) -> np.ndarray:
    """Share of the filler before event 0, between consecutive events, and after the last."""
    if n_events == 0:
        return np.ones(1)
    if spacing == "powerlaw":
        g = (1.0 - rng.random(n_events + 1)) ** (-1.0 / alpha)
    elif spacing == "uniform":
        g = rng.exponential(size=n_events + 1)
    else:
        raise UsageError(f"unknown spacing {spacing!r}; choose uniform or powerlaw")
    d0, d1 = depth
    if not 0.0 <= d0 <= d1 <= 1.0:
        raise UsageError(f"depth {d0},{d1}: use two fractions 0 <= lo <= hi <= 1")
    cum = np.cumsum(g)
    x = d0 + (d1 - d0) * (cum[:n_events] / cum[n_events])
    return np.diff(np.concatenate([[0.0], x, [1.0]]))


def render_text(episode: Episode, *, target_length: int, tokenizer: LengthCounter | str, domain: str,
                seed: int, depth: tuple[float, float] = (0.0, 1.0), spacing: str = "uniform",
                alpha: float = 1.2, passage_size: int | None = None) -> TextRow:
    """Render ``episode`` (already replayed) as text in ``domain``; with ``passage_size``, also
    cut its context into passages of at most that many tokens (:mod:`.passages`).

    Promises: ``target_length - tolerance(target_length) <= length <= target_length`` where
    ``length`` is the real token count of ``prompt`` under ``tokenizer``; events appear in
    order, each inside its span, naming its key (a lookalike names its look-alike key) and its
    value; distractor values appear nowhere else; filler never names a key or value of the
    episode; the same arguments give the same text.  Every random choice (phrasings, filler,
    where filler goes) comes from a numpy Generator seeded by (``domain``, ``seed``).

    Raises UsageError when the episode does not fit in ``target_length`` tokens (saying how
    many it needs), or for an unknown domain or tokenizer.
    """
    counter = load_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
    dom = load_domain(domain)
    target = int(target_length)
    tol = tolerance(target)
    aim = target - tol // 4  # room above for tokenizers whose counts do not quite add up
    # "memgen.text" is a seed tag (the module's old name): changing it would change every text
    rng = np.random.default_rng(derive_seed("memgen.text", domain, int(seed)))
    queries = episode.queries

    ksurf, vsurf = _surfaces(dom, episode)
    looks = _lookalikes(dom, episode)
    others = Others(dom.keys, dom.values, rng, [*ksurf.values(), *looks.values()], vsurf.values())
    ev_text = _event_texts(dom, episode, ksurf, vsurf, looks, others, rng)
    q_text = _question_texts(dom, episode, ksurf, rng)
    answer_texts = tuple(vsurf[q.answer] if q.answer >= 0 else ABSENT_TEXT for q in queries)
    inline = [0 <= q.after + 1 < len(episode.events) for q in queries]  # asked before the last event
    # 1. every piece counted once; filler for what the budget leaves, cut into the gaps
    frame = _Frame(counter, *_head_tail(dom, rng, q_text, inline))
    fixed = _Fixed.count(counter, episode, ev_text, q_text, inline)
    units, pool, shorts = _lay_out(dom, counter, rng, fixed, max(0, aim - frame.fixed_cost(fixed)),
                                   depth, spacing, alpha, others)
    # 2. the estimate settled just below the aim; 3. the real count, corrected if it must be
    seps = _settle(units, pool, shorts, frame, aim)
    context, prompt, length, spans = _fit(units, pool, shorts, frame, seps, target, tol, aim, episode, domain)
    ev_spans, q_spans = _spans(units, spans, len(episode.events), len(queries))
    passages = cut_passages(counter, context, spans, passage_size) if passage_size else ()
    return TextRow(context=context, prompt=prompt, questions=tuple(q_text), answer_texts=answer_texts,
                   event_spans=ev_spans, query_spans=q_spans, length=length,
                   target_length=target, tokenizer=counter.name, domain=domain, source=episode,
                   passages=passages)


def _head_tail(dom: Domain, rng: np.random.Generator, q_text: list[str], inline: list[bool]) -> tuple[str, str]:
    """The prompt's head (instructions, answer format, ``<log>``) and tail (the questions asked
    at the end, the answer format again), with the domain's intro and absent phrasings."""
    pick = lambda c: dom.phrasings[c][int(rng.integers(len(dom.phrasings[c])))]  # noqa: E731
    head = dom.head.render(intro=pick("intro").render(), absent=pick("absent").render(),
                           inline=any(inline), thing_key=dom.thing_key, thing_value=dom.thing_value,
                           total=len(q_text)).rstrip() + "\n"
    tail = "\n" + dom.tail.render(
        questions=[(i + 1, t) for i, t in enumerate(q_text) if not inline[i]], total=len(q_text),
        inline=any(inline), thing_key=dom.thing_key, thing_value=dom.thing_value).strip("\n") + "\n"
    return head, tail


class _Frame:
    """The prompt around the context: head and tail, with their token counts (the tail's
    depends on the character before it, so it is counted per last character, once each)."""

    def __init__(self, counter: LengthCounter, head: str, tail: str):
        self.counter, self.head, self.tail = counter, head, tail
        self.head_n = counter.count(head)
        self._tail_cost: dict[str, int] = {}

    def tail_n(self, last: str) -> int:
        if last not in self._tail_cost:
            self._tail_cost[last] = self.counter.count(last + self.tail) - self.counter.count(last)
        return self._tail_cost[last]

    def fixed_cost(self, fixed: _Fixed) -> int:
        """Tokens of everything but the filler: head, tail, events, inline questions and the
        paragraph breaks around them (counted after a full stop)."""
        return (self.head_n + self.tail_n(".") + sum(m for m, _ in fixed.ev_counts) + sum(fixed.q_counts.values())
                + 2 * (fixed.n_blocks + 1) * _break_cost(self.counter, "."))

    def total(self, units: _Units, seps: np.ndarray) -> int:
        """The estimated tokens of the prompt with ``units`` joined by ``seps``."""
        last = units.text[-1][-1] if units.text else self.head[-1]
        return self.head_n + units.estimate(seps) + self.tail_n(last)


@dataclass(frozen=True)
class _Fixed:
    """The units that filler moves around: explicit events and inline questions as paragraphs
    of their own, silent writes in prose; with their token counts."""

    ev_text: list[str]
    silent_write: list[bool]
    ev_counts: list[tuple[int, int]]  # (after a space, at a paragraph start; -1 = counted lazily)
    inline_text: dict[int, str]  # question index -> how it reads inside the context
    q_counts: dict[int, int]
    after: dict[int, list[int]]  # event index (-1: before the first) -> inline questions asked after it
    n_blocks: int  # units that are paragraphs of their own

    @classmethod
    def count(cls, counter: LengthCounter, episode: Episode, ev_text: list[str], q_text: list[str],
              inline: list[bool]) -> _Fixed:
        inline_text = {i: INLINE_QUESTION.format(n=i + 1, text=q_text[i]) for i in range(len(q_text)) if inline[i]}
        silent_write = [e.op == "silent_write" for e in episode.events]
        block_strings = [t for t, s in zip(ev_text, silent_write, strict=True) if not s] + list(inline_text.values())
        silent_write_strings = [t for t, s in zip(ev_text, silent_write, strict=True) if s]
        counts = counter.count_many(block_strings + [" " + t for t in silent_write_strings])
        nb = len(block_strings)
        block_n = iter(counts[:nb])
        silent_write_mid = iter(counts[nb:])
        ev_counts: list[tuple[int, int]] = []
        for s in silent_write:
            if s:  # a silent write runs on in a paragraph; its paragraph-initial count is lazy
                ev_counts.append((next(silent_write_mid), -1))
            else:
                n = next(block_n)
                ev_counts.append((n, n))
        q_counts = {i: next(block_n) for i in inline_text}
        after: dict[int, list[int]] = {}
        for i in inline_text:
            after.setdefault(episode.queries[i].after, []).append(i)
        return cls(ev_text, silent_write, ev_counts, inline_text, q_counts, after, nb)


_Shorts = tuple[list[str], np.ndarray, np.ndarray]


def _lay_out(dom: Domain, counter: LengthCounter, rng: np.random.Generator, fixed: _Fixed, budget: int,
             depth: tuple[float, float], spacing: str, alpha: float,
             others: Others) -> tuple[_Units, _Pool, _Shorts]:
    """1. The context's units: enough filler sentences for ``budget`` tokens (a share of them
    events about ``others``), cut into the gaps between events (by depth and spacing), around
    the fixed units; the filler left over, to draw from when the estimate is adjusted; and short
    sentences for the last few tokens."""
    E = len(fixed.ev_text)
    gcounts = dom.filler.counts(counter)
    n_sent = int(budget / max(gcounts.mean, 1.0) * 1.1) + 16 if budget > 0 else 0
    allowed = others.allowed(dom.filler)
    texts, mid, init = dom.filler.sample(rng, n_sent, gcounts, allowed)
    kinds = _with_decoys(dom, counter, rng, others, texts, mid, init)
    short_texts, short_mid, short_init = dom.short.sample(rng, 64, dom.short.counts(counter))
    weights = _gap_weights(rng, E, depth, spacing, alpha)
    cut = np.searchsorted(np.cumsum(mid), budget * np.cumsum(weights), side="right")
    cut[-1] = min(cut[-1], n_sent)
    bounds = np.concatenate([[0], np.maximum.accumulate(cut)])

    units = _Units(counter, rng.integers(*_PARAGRAPH, size=1024))
    for i in fixed.after.get(-1, []):
        units.add(QUESTION, fixed.inline_text[i], fixed.q_counts[i], fixed.q_counts[i], i)
    for j in range(E + 1):
        for s in range(int(bounds[j]), int(bounds[j + 1])):
            units.add(int(kinds[s]), texts[s], mid[s], init[s])
        if j < E:
            units.add(SILENT_WRITE if fixed.silent_write[j] else EVENT, fixed.ev_text[j], *fixed.ev_counts[j], ref=j)
            for i in fixed.after.get(j, []):
                units.add(QUESTION, fixed.inline_text[i], fixed.q_counts[i], fixed.q_counts[i], i)
    pool = _Pool(texts[int(bounds[-1]):], mid[int(bounds[-1]):], init[int(bounds[-1]):],
                 lambda: dom.filler.sample(rng, 64, gcounts, allowed))
    return units, pool, (short_texts, np.asarray(short_mid), np.asarray(short_init))


def _with_decoys(dom: Domain, counter: LengthCounter, rng: np.random.Generator, others: Others, texts: list[str],
                 mid: np.ndarray, init: np.ndarray) -> np.ndarray:
    """Replace :data:`DECOY_SHARE` of the filler sentences, in place, by events about other
    entities, with their counts; the unit kind of every sentence (``DECOY`` for explicit ones)."""
    at = np.flatnonzero(rng.random(len(texts)) < DECOY_SHARE)
    kinds = np.full(len(texts), FILLER, dtype=np.int8)
    if at.size:
        decoys = dom.decoys(rng, int(at.size), others)
        # a paragraph of its own needs only its count at a paragraph start, a sentence in running
        # text its count after a space (its count at a paragraph start is taken when needed)
        counts = counter.count_many([t if explicit else " " + t for t, explicit in decoys])
        for n, (i, (text, explicit)) in enumerate(zip(at.tolist(), decoys, strict=True)):
            texts[i], mid[i], init[i] = text, counts[n], counts[n] if explicit else -1
            kinds[i] = DECOY if explicit else FILLER
    return kinds


def _settle(units: _Units, pool: _Pool, shorts: _Shorts, frame: _Frame, aim: int) -> np.ndarray:
    """2. Add or remove filler at the end until the estimate is within ``_SLACK`` tokens below
    ``aim``; the separators of the units as they then stand."""
    seps = units.seps()
    est = frame.total(units, seps)
    for _ in range(_MAX_ADJUST):
        if 0 <= aim - est <= _SLACK or not _adjust(units, pool, shorts, aim - est, _SLACK):
            break
        seps = units.seps()
        est = frame.total(units, seps)
    return seps


def _fit(units: _Units, pool: _Pool, shorts: _Shorts, frame: _Frame, seps: np.ndarray, target: int, tol: int,
         aim: int, episode: Episode, domain: str) -> tuple[str, str, int, list[tuple[int, int]]]:
    """3. Assemble the prompt and count it for real, correcting at the end of the last gap
    until ``target - tol <= length <= target``: ``(context, prompt, length, unit spans)``.
    ``episode`` and ``domain`` are named in the error raised when even the fixed units do not fit."""
    counter = frame.counter
    for attempt in range(_MAX_RECOUNT + 1):
        context, spans = units.assemble(seps)
        prompt = frame.head + context + frame.tail
        length = counter.count(prompt)
        if target - tol <= length <= target:
            break
        if length > target and units.last_filler() < 0:
            raise UsageError(
                f"--length {target} is too short for episode {episode.id or '?'} in the text rendering "
                f"({domain}, {counter.name}): its instructions, {len(episode.events)} events and "
                f"{len(episode.queries)} questions alone take {length} tokens; raise --length to at least {length} "
                f"or use fewer keys/queries")
        if attempt == _MAX_RECOUNT or not _adjust(units, pool, shorts, aim - length, _SLACK):
            raise DataError(f"could not bring the prompt within {tol} tokens below {target} with "
                            f"tokenizer {counter.name} (last count {length}); its counts do not add up "
                            f"over sentences")
        seps = units.seps()
    return context, prompt, length, spans


def _spans(units: _Units, spans: list[tuple[int, int]], n_events: int,
           n_queries: int) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """The span of every event and of every query in the context; ``(-1, -1)`` for a question
    asked after it."""
    ev_spans = [(-1, -1)] * n_events
    q_spans = [(-1, -1)] * n_queries
    for k, r, sp in zip(units.kind, units.ref, spans, strict=True):
        if k == EVENT or k == SILENT_WRITE:
            ev_spans[r] = sp
        elif k == QUESTION:
            q_spans[r] = sp
    return tuple(ev_spans), tuple(q_spans)


def _adjust(units: _Units, pool: _Pool, shorts: _Shorts, delta: int, slack: int) -> bool:
    """Move the context's estimate by about ``delta`` tokens (into ``[delta - slack, delta]``)
    by removing filler from the end or appending filler there.  False if nothing can move."""
    if delta < 0:
        removed = 0
        while removed < -delta:
            i = units.last_filler()
            if i < 0:
                return removed > 0
            removed += units.mid[i]
            units.pop(i)
        return True
    moved = False
    while delta > slack:
        nxt = pool.take() if pool.peek_mid() <= delta else None
        if nxt is None:
            texts, mid, init = shorts
            fits = np.flatnonzero(mid <= delta)
            if fits.size == 0:
                break
            j = int(fits[np.argmax(mid[fits])])
            nxt = (texts[j], int(mid[j]), int(init[j]))
        units.add(FILLER, *nxt)
        delta -= nxt[1]
        moved = True
    return moved


def _surfaces(dom: Domain, ep: Episode) -> tuple[dict[int, str], dict[int, str]]:
    key_ids = sorted({e.key for e in ep.events} | {q.key for q in ep.queries})
    val_ids = sorted({e.value for e in ep.events if e.op != "delete" and e.value >= 0}
                     | {q.answer for q in ep.queries if q.answer >= 0})
    return (dict(zip(key_ids, dom.keys.surfaces(key_ids), strict=True)),
            dict(zip(val_ids, dom.values.surfaces(val_ids), strict=True)))


def _lookalikes(dom: Domain, ep: Episode) -> dict[int, str]:
    """The look-alike key each lookalike distractor names, by event index."""
    at = [i for i, e in enumerate(ep.events) if e.op == "distractor" and e.kind == "lookalike"]
    return dict(zip(at, dom.keys.lookalike_many(
        [ep.events[i].key for i in at],
        [ep.events[i].alias if ep.events[i].alias >= 0 else ep.events[i].key + i for i in at]), strict=True))


def _event_texts(dom: Domain, ep: Episode, ksurf: dict[int, str], vsurf: dict[int, str], looks: dict[int, str],
                 others: Others, rng: np.random.Generator) -> list[str]:
    """Each event in words; an overwrite may name the value it replaces (``old``), and a write,
    overwrite or silent write the value of some other entity (``other``, from ``others``)."""
    keys = set(ksurf.values())
    held: dict[int, int] = {}  # key -> its current value id, in reading order
    out = []
    for i, e in enumerate(ep.events):
        cat = e.kind if e.op == "distractor" else e.op
        if cat not in dom.phrasings:
            raise DataError(f"episode {ep.id}: event {i} has op {e.op!r} / kind {e.kind!r}, "
                            "which the text rendering does not know")
        value = ""
        if cat != "delete":
            if e.value < 0:
                raise DataError(f"episode {ep.id}: event {i} ({cat}) has no value")
            value = vsurf[e.value]
        look = looks.get(i, "")
        if look in keys:
            raise DataError(f"episode {ep.id}: lookalike {look!r} equals a key of the episode")
        old = vsurf[held[e.key]] if cat == "overwrite" and e.key in held else None
        out.append(dom.render(cat, rng, others, key=ksurf[e.key], value=value, lookalike=look, old=old))
        if cat == "delete":
            held.pop(e.key, None)
        elif e.op in ("write", "overwrite", "silent_write"):
            held[e.key] = e.value
    return out


def _question_texts(dom: Domain, ep: Episode, ksurf: dict[int, str], rng: np.random.Generator) -> list[str]:
    variant = rng.integers(0, 1 << 30, size=len(ep.queries))
    out = []
    for i, q in enumerate(ep.queries):
        temps = dom.phrasings[q.ask]
        t = temps[int(variant[i]) % len(temps)]
        out.append(t.render(key=ksurf[q.key], ordinal=ordinal(max(q.version, 1)), k=q.version))
    return out
