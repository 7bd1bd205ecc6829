"""Pointer heads over frozen sentence states: per query, a distribution over the episode's
events (the one whose value answers it) and "unknown".

Two ways to tell which events are about the asked key (the *mode*):

* ``oracle``: the key ids of the IR are given (an event's id is the key its sentence names);
* ``text``: no ids; a learned name tagger marks the word pieces of each sentence that name an
  entity, and a token-level MaxSim over those name spans (cosine of the frozen token states plus
  an exact word-piece identity channel) scores each (question, event) pair.

Two ways to turn those matches into an answer (the *head*):

* ``replay``: the structured soft-replay head.  Small readers classify each event (set / delete /
  no change) and each question (ask, version ordinal k); a differentiable replay of the matched
  sets and deletes gives the latest value, the one before it, or the k-th, or unknown.  The
  replay rules are built in; only the readers and the matcher learn.
* ``transformer``: a generic two-layer transformer over [question; events], each event token
  carrying its sentence state, its match with the question and its rank from the end; it
  learns the replay itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from memgen.bridge.episodes import ASKS, EVENT_TYPES, K_MAX

MODES = ("oracle", "text")
HEADS = ("replay", "transformer")
EPS = 1e-6
#: how common a word piece is: in the episode's events, in its questions, in all the questions read with it
DF_CHANNELS = 3


@dataclass
class Block:
    """One episode's inputs (E events, Q queries, D dims) and, in training, its labels."""

    ev_vec: torch.Tensor  # (E, D) pooled
    ev_tok: torch.Tensor  # (E, Le, D) word-piece states
    ev_ids: torch.Tensor  # (E, Le) word-piece ids, -1 pad
    q_vec: torch.Tensor  # (Q, D)
    q_tok: torch.Tensor  # (Q, Lq, D)
    q_ids: torch.Tensor  # (Q, Lq)
    ev_key: torch.Tensor  # (E,) the key each sentence names (oracle mode only)
    q_key: torch.Tensor  # (Q,)
    valid: torch.Tensor  # (Q, E) bool: the event comes before the query
    ev_type: torch.Tensor | None = None  # (E,) index into EVENT_TYPES
    ask: torch.Tensor | None = None  # (Q,) index into ASKS
    k: torch.Tensor | None = None  # (Q,) version ordinal - 1, or -100
    gold: torch.Tensor | None = None  # (Q,) event index, E for unknown
    ev_name: torch.Tensor | None = None  # (E, Le) 1 on name word pieces, -1 where not known
    q_name: torch.Tensor | None = None  # (Q, Lq)
    ev_df: torch.Tensor | None = None  # (E, Le, DF_CHANNELS) how common each word piece is (make_block)
    q_df: torch.Tensor | None = None  # (Q, Lq, DF_CHANNELS)
    words: torch.Tensor | None = None  # (Q, E, WORD_FEATURES) word_features of the questions and events (text mode)
    q_word_pieces: torch.Tensor | None = None  # (Q, W, Lq) name_word_inputs (text mode): the pieces of each word
    q_word_has: torch.Tensor | None = None  # (Q, E, W) the event holds the question's word
    q_word_weight: torch.Tensor | None = None  # (Q, W) one minus the word's share of the questions read with it
    match_features: torch.Tensor | None = None  # (Q, E, F) TextMatcher.features, stored once its tagger is trained

    @property
    def ev_mask(self) -> torch.Tensor:
        return self.ev_ids >= 0

    @property
    def q_mask(self) -> torch.Tensor:
        return self.q_ids >= 0


_WORD = re.compile(r"[^\s]+")
_EDGE = "\"'.,;:?!()[]{}\u2018\u2019\u201c\u201d"
WORD_FEATURES = 5
#: the matcher's features from word pieces (then 3 of the name whole word for whole word, then WORD_FEATURES)
PIECE_FEATURES = 16
NAME_WORD_FEATURES = 3


def sentence_word_spans(text: str) -> list[tuple[str, int, int]]:
    """A sentence's words, lower-cased, with the punctuation at their edges and a possessive 's
    removed (``"BN-806,"`` -> ``"bn-806"``, ``"Lachance's"`` -> ``"lachance"``), each with its
    character span of ``text``."""
    out = []
    for m in _WORD.finditer(text):
        raw = m.group()
        core = raw.strip(_EDGE)
        if not core:
            continue
        start = m.start() + len(raw) - len(raw.lstrip(_EDGE))
        end = start + len(core)
        w = core.lower()
        if w.endswith(("'s", "\u2019s")):
            w, end = w[:-2], end - 2
        if w:
            out.append((w, start, end))
    return out


def sentence_words(text: str) -> list[str]:
    """A sentence's words as :func:`sentence_word_spans` gives them, without the spans."""
    return [w for w, _, _ in sentence_word_spans(text)]


class QuestionWords(NamedTuple):
    """:func:`question_words`: what :func:`word_features` and :func:`name_word_inputs` both read."""

    q_words: list[list[str]]  # per question, its words
    vocab: dict[str, int]  # the questions' words
    ev_words: list[list[str]]  # per event, its words
    has: torch.Tensor  # (E, V) float64: the event holds the word
    weight: torch.Tensor  # (V,) float64


def question_words(questions: Sequence[str], events: Sequence[str],
                   common: Mapping[str, float] | None = None) -> QuestionWords:
    """The questions' words, and per word of their vocabulary which events hold it (E, V) and its
    weight (V,): its rarity among the events (BM25's idf; a word in no event, or in most, weighs
    nothing) times one minus ``common[word]``, how common it is among all the questions read
    with these (a domain's question wording recurs there; a name does not)."""
    E, common = len(events), common or {}
    q_words = [sentence_words(q) for q in questions]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(w for ws in q_words for w in ws))}
    ev_words = [sentence_words(t) for t in events]
    has = torch.zeros(E, len(vocab), dtype=torch.float64)  # (E, V): the event holds the word
    for e, ws in enumerate(ev_words):
        has[e, [vocab[w] for w in set(ws) if w in vocab]] = 1.0
    held = has.sum(0)  # (V,) events holding each word
    discount = torch.tensor([1 - common.get(w, 0.0) for w in vocab], dtype=torch.float64)
    weight = torch.where(held > 0, (torch.log((E + 1) / (held + 0.5))).clamp(min=0) * discount, 0.0)  # (V,)
    return QuestionWords(q_words, vocab, ev_words, has, weight)


def word_features(questions: Sequence[str], events: Sequence[str],
                  common: Mapping[str, float] | None = None, table: QuestionWords | None = None) -> torch.Tensor:
    """(Q, E, WORD_FEATURES): how much of each question's rare wording each event holds, whole
    word for whole word, with no tagger: each question word weighted by its rarity among the
    episode's events (BM25's idf; a word in no event, or in most, weighs nothing) times one minus
    ``common[word]``, how common it is among all the questions read with these (0 to 1: a
    domain's question wording, "value" or "current", recurs there; a name does not).  Per pair: the
    share of the weight present in the event, the share of adjacent word pairs present in order,
    the weight of the heaviest word missing (over the question's heaviest), and the first two
    relative to the best event of the episode for the question.  A code (``BN-806``), an account
    name or a host stays one word here, where word pieces split it into fragments that values share.
    ``table``: :func:`question_words` of the same arguments, if the caller has it already."""
    E = len(events)
    out = torch.zeros(len(questions), E, WORD_FEATURES)
    q_words, vocab, ev_words, has, weight = table if table is not None else question_words(questions, events, common)
    pair_vocab = {p: i for i, p in enumerate(dict.fromkeys(p for ws in q_words for p in zip(ws, ws[1:], strict=False)))}
    if not E or not vocab:
        return out
    has_pair = torch.zeros(E, max(len(pair_vocab), 1), dtype=torch.float64)  # (E, P): the adjacent pair, in order
    for e, ws in enumerate(ev_words):
        has_pair[e, [pair_vocab[p] for p in set(zip(ws, ws[1:], strict=False)) if p in pair_vocab]] = 1.0
    for q, words in enumerate(q_words):
        if not words:
            continue
        idx = torch.tensor([vocab[w] for w in words])
        idf = weight[idx]  # (L,) per word of the question, repeats included
        total = idf.sum()
        if not total:
            continue
        got = has[:, idx]  # (E, L)
        out[q, :, 0] = (got @ idf / total).float()
        out[q, :, 2] = ((1 - got) * idf).amax(1).float() / float(idf.max())
        if len(words) > 1:
            pw = torch.minimum(idf[:-1], idf[1:])  # (L - 1,) a pair weighs its lighter word
            if pw.sum():
                pidx = torch.tensor([pair_vocab[p] for p in zip(words, words[1:], strict=False)])
                out[q, :, 1] = (has_pair[:, pidx] @ pw / pw.sum()).float()
    out[..., 3:5] = out[..., 0:2] - out[..., 0:2].amax(1, keepdim=True)
    return out


def name_word_inputs(questions: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], events: Sequence[str],
                     common: Mapping[str, float] | None, L: int,
                     table: QuestionWords | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What :class:`TextMatcher` needs to match the question's name *whole word for whole word*:
    per question, which of its ``L`` word pieces (their character ``spans``) make up each of its
    words (Q, W, L), which events hold each word (Q, E, W), and each word's weight (Q, W): one
    minus ``common[word]``, how common it is among all the questions read with these (no rarity
    among the events here: a key that every event names is still a name).  The matcher weighs
    each word by its tagger's name score too, so a name counts where the question's wording does
    not, and ``auth-valley-29`` is not ``auth-valley-20`` however many word pieces they share.
    ``table``: :func:`question_words` of the same arguments, if the caller has it already."""
    q_words, vocab, _, has, _ = table if table is not None else question_words(questions, events, common)
    common = common or {}
    W = max((len(ws) for ws in q_words), default=0) or 1
    pieces = torch.zeros(len(questions), W, L)
    held = torch.zeros(len(questions), len(events), W)
    weights = torch.zeros(len(questions), W)
    for q, (text, sp) in enumerate(zip(questions, spans, strict=True)):
        for j, (w, a, b) in enumerate(sentence_word_spans(text)):
            inside = [i for i, (x, y) in enumerate(sp[:L]) if x < b and y > a]
            pieces[q, j, inside] = 1.0
            held[q, :, j] = has[:, vocab[w]].float()
            weights[q, j] = 1 - common.get(w, 0.0)
    return pieces, held, weights


class AttnPool(nn.Module):
    """[pooled; learned attention pool of the word pieces]: (R, D), (R, L, D) -> (R, 2D)."""

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, vec: torch.Tensor, tok: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = self.score(tok).squeeze(-1).masked_fill(~mask, -1e4).softmax(-1)  # (R, L)
        return torch.cat([vec, torch.einsum("rl,rld->rd", w, tok)], -1)


class TextMatcher(nn.Module):
    """Key match from text alone: (Q, E) logits that question q and event e name the same key.

    The tagger marks name word pieces (trained on the name labels alone); the similarity of two
    pieces is the cosine of their frozen states plus, with ``exact``, 1 for the same word piece
    (the exact-identity channel).  Features of each (question, event) pair, :data:`FEATURES` of
    them, feed a small MLP:

    * MaxSim both ways over the name spans, as a mean and as the worst-matched piece (4);
    * with ``exact``, how much of the question's name the event holds word piece for word piece,
      with no event-side tagging (a name in a long sentence is found as surely as in a short
      one): the share of its pieces and of its adjacent piece pairs present in the event, and the
      worst-covered piece (3); the same two shares with no tagging at all, each question piece
      weighted by its rarity among the episode's events, as BM25 weighs terms (2), which is what
      carries over to a domain whose names the tagger never saw; each of the five also relative
      to the best event of the episode for that question (5), so that "the best match there is"
      reads the same for a short name and a long one;
    * the cosine MaxSim of the question's name over every piece of the event, mean and worst (2);
    * with ``exact``, the question's name *whole word for whole word* (:func:`name_word_inputs`):
      each word weighted by its most name-like piece's tag, the share of that weight the event
      holds, the heaviest word it misses, and the share relative to the best event (3);
    * the whole-word features of :func:`word_features`, which read no tagger (5).

    The question's tags are scaled so that its most name-like piece counts 1: in a domain never
    seen the tagger is less sure, but still surest of the name."""

    GAP = 2.0  # how far a piece outside the name spans is pushed down
    FEATURES = PIECE_FEATURES + NAME_WORD_FEATURES + WORD_FEATURES

    def __init__(self, dim: int, exact: bool = True, hidden: int = 32):
        super().__init__()
        self.tag = nn.Linear(dim, 1)
        # how common a piece is in its episode says "name" in any domain: names recur in a few
        # sentences, the phrasing's words in most
        self.tag_df = nn.Sequential(nn.Linear(DF_CHANNELS, 16), nn.GELU(), nn.Linear(16, 1))
        self.use_exact = exact
        self.out = nn.Sequential(nn.Linear(self.FEATURES, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def names(self, b: Block, drop_states: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Name logits of the questions' (Q, Lq) and the events' (E, Le) word pieces.  In
        training, ``drop_states`` of the sentences are tagged from the piece counts alone, so
        that path learns to stand on its own in a domain never seen."""
        out = []
        for tok, df in ((b.q_tok, b.q_df), (b.ev_tok, b.ev_df)):
            state = self.tag(tok).squeeze(-1)  # (R, L)
            if drop_states:
                state = state * (torch.rand(state.shape[0], 1) >= drop_states)
            out.append(state + self.tag_df(df).squeeze(-1))
        return out[0], out[1]

    @torch.no_grad()
    def features(self, b: Block) -> torch.Tensor:
        """(Q, E, FEATURES) match features over the tagger's name spans (constants: the states are frozen)."""
        nq, ne = self.names(b)
        wq, we = torch.sigmoid(nq) * b.q_mask, torch.sigmoid(ne) * b.ev_mask  # soft name spans
        wq = wq / wq.amax(-1, keepdim=True).clamp(min=EPS)  # the question's surest name piece counts 1
        if b.words is None or b.q_word_pieces is None:
            raise ValueError("text mode needs the block's word features (make_block computes them)")
        cos = torch.einsum("qld,emd->qelm", F.normalize(b.q_tok, dim=-1), F.normalize(b.ev_tok, dim=-1))
        same = (b.q_ids[:, None, :, None] == b.ev_ids[None, :, None, :]) & b.ev_mask[None, :, None, :]  # (Q, E, Lq, Le)
        s = cos + same.float() if self.use_exact else cos
        g, qm, em = self.GAP, b.q_mask[:, None], b.ev_mask[None]
        fwd = (s - g * (1 - we)[None, :, None, :]).masked_fill(~b.ev_mask[None, :, None, :], -1e4).amax(-1)
        bwd = (s - g * (1 - wq)[:, None, :, None]).masked_fill(~b.q_mask[:, None, :, None], -1e4).amax(-2)
        wsum = wq.sum(-1).clamp(min=EPS)[:, None]  # (Q, 1)

        def mean_q(x: torch.Tensor) -> torch.Tensor:  # (Q, E, Lq) -> (Q, E), over the question's name
            return (x * wq[:, None]).sum(-1) / wsum

        def worst_q(x: torch.Tensor) -> torch.Tensor:  # the worst-matched piece of the question's name
            return (x + g * (1 - wq)[:, None] + 1e4 * ~qm).amin(-1)

        feats = [mean_q(fwd), (bwd * we[None]).sum(-1) / we.sum(-1).clamp(min=EPS)[None], worst_q(fwd),
                 (bwd + g * (1 - we)[None] + 1e4 * ~em).amin(-1)]
        if self.use_exact:
            has = same.any(-1).float()  # (Q, E, Lq): the piece occurs in the event
            # (Q, E, Lq - 1): the piece and, right after it, its successor
            pairs = (same[:, :, :-1, :-1] & same[:, :, 1:, 1:]).any(-1).float()
            w2 = wq[:, :-1] * wq[:, 1:]
            # the same with no tagger at all: each question piece weighted by how rare it is among
            # the episode's events (a piece in no event, or in most, says nothing), as BM25 does
            held = has.sum(1, keepdim=True)  # (Q, 1, Lq) events holding the piece
            idf = (torch.log((has.shape[1] + 1) / (held + 0.5)) * (held > 0) * qm).clamp(min=0)  # (Q, 1, Lq)
            i2 = torch.minimum(idf[..., :-1], idf[..., 1:])
            exact = [mean_q(has), (pairs * w2[:, None]).sum(-1) / w2.sum(-1).clamp(min=EPS)[:, None], worst_q(has),
                     (has * idf).sum(-1) / idf.sum(-1).clamp(min=EPS), (pairs * i2).sum(-1) / i2.sum(-1).clamp(min=EPS)]
            feats += exact + [x - x.amax(1, keepdim=True) if x.shape[1] else x for x in exact]
        else:
            feats += [torch.zeros_like(feats[0])] * 10
        anywhere = cos.masked_fill(~b.ev_mask[None, :, None, :], -1e4).amax(-1)  # (Q, E, Lq)
        feats += [mean_q(anywhere), worst_q(anywhere)]
        if self.use_exact:
            # the name, whole word for whole word: each question word weighs its most name-like
            # piece's tag times one minus its share of the questions
            tagw = (b.q_word_pieces * wq[:, None, :]).amax(-1) * b.q_word_weight  # (Q, W)
            cov = torch.einsum("qew,qw->qe", b.q_word_has, tagw) / tagw.sum(-1, keepdim=True).clamp(min=EPS)
            miss = ((1 - b.q_word_has) * tagw[:, None]).amax(-1) / tagw.amax(-1, keepdim=True).clamp(min=EPS)
            feats += [cov, miss, cov - cov.amax(1, keepdim=True) if cov.shape[1] else cov]
        else:
            feats += [torch.zeros_like(feats[0])] * NAME_WORD_FEATURES
        return torch.cat([torch.stack(feats, -1), b.words if self.use_exact else torch.zeros_like(b.words)], -1)

    def forward(self, b: Block) -> torch.Tensor:
        """(Q, E) match logits; ``b.match_features`` if a trainer stored them, else computed."""
        feats = b.match_features if b.match_features is not None else self.features(b)
        return self.out(feats).squeeze(-1)


def soft_replay(p_type: torch.Tensor, match: torch.Tensor, valid: torch.Tensor, p_ask: torch.Tensor,
                p_k: torch.Tensor) -> torch.Tensor:
    """Log-probabilities (Q, E + 1) over events and unknown (last) from soft event types
    (E, 3), matches (Q, E), ask (Q, 3) and ordinal (Q, K) probabilities.

    Each event independently sets the key (``ps``), deletes it (``pd``) or leaves it.  latest:
    the last set with nothing after it; previous: the set before the last, the last still
    standing; version k: a set with k - 1 sets before it, the key still holding a value."""
    ps = (p_type[None, :, 0] * match * valid).clamp(EPS, 1 - EPS)  # (Q, E)
    pd = (p_type[None, :, 1] * match * valid).clamp(EPS, 1 - EPS)
    log_none = (1 - ps - pd).clamp(min=EPS).log()
    after = log_none.flip(-1).cumsum(-1).flip(-1) - log_none  # (Q, E): log P(no change after e)
    latest = ps * after.exp()
    held = latest.sum(-1, keepdim=True).clamp(max=1)  # P(the key holds a value at the query)
    log_keep = (1 - ps).log()
    S = log_keep.cumsum(-1)  # (Q, E)
    term = latest.clamp(min=1e-30).log() + S - log_keep  # log latest_a + S_{a-1}
    R = term.flip(-1).logcumsumexp(-1).flip(-1)
    R = torch.cat([R[:, 1:], torch.full_like(R[:, :1], -math.inf)], -1)  # over a > e
    previous = ps * (R - S).exp()
    counts = torch.zeros_like(p_k)  # (Q, K): P(c sets before e)
    counts[:, 0] = 1
    version = []
    for e in range(ps.shape[1]):
        version.append((counts * p_k).sum(-1) * ps[:, e])
        counts = counts * (1 - ps[:, e:e + 1]) + F.pad(counts[:, :-1], (1, 0)) * ps[:, e:e + 1]
    version = torch.stack(version, -1) * held if version else torch.zeros_like(ps)
    dist = (p_ask[:, 0:1] * latest + p_ask[:, 1:2] * previous + p_ask[:, 2:3] * version) * valid  # (Q, E)
    dist = torch.cat([dist, (1 - dist.sum(-1, keepdim=True)).clamp(min=EPS)], -1)
    return (dist / dist.sum(-1, keepdim=True)).clamp(min=1e-12).log()


class ReplayHead(nn.Module):
    """Event and question readers feeding :func:`soft_replay`."""

    def __init__(self, dim: int, hidden: int = 128, k_max: int = K_MAX):
        super().__init__()
        self.ev_pool, self.q_pool = AttnPool(dim), AttnPool(dim)
        self.ev_mlp = nn.Sequential(nn.Linear(2 * dim, hidden), nn.GELU(), nn.Linear(hidden, len(EVENT_TYPES)))
        self.q_mlp = nn.Sequential(nn.Linear(2 * dim, hidden), nn.GELU())
        self.ask, self.k = nn.Linear(hidden, len(ASKS)), nn.Linear(hidden, k_max)

    def forward(self, b: Block, match_logits: torch.Tensor) -> tuple[torch.Tensor, dict]:
        type_logits = self.ev_mlp(self.ev_pool(b.ev_vec, b.ev_tok, b.ev_mask))  # (E, 3)
        h = self.q_mlp(self.q_pool(b.q_vec, b.q_tok, b.q_mask))  # (Q, H)
        ask_logits, k_logits = self.ask(h), self.k(h)
        logp = soft_replay(type_logits.softmax(-1), torch.sigmoid(match_logits), b.valid,
                           ask_logits.softmax(-1), k_logits.softmax(-1))
        return logp, {"type": type_logits, "ask": ask_logits, "k": k_logits}


def _sinusoid(pos: torch.Tensor, d: int) -> torch.Tensor:
    """(..., ) integer positions -> (..., d) sin/cos features."""
    freq = torch.exp(-math.log(1e4) * torch.arange(0, d, 2, dtype=torch.float32) / d)
    ang = pos[..., None].float() * freq
    return torch.cat([ang.sin(), ang.cos()], -1)


class TransformerHead(nn.Module):
    """A generic pointer transformer over [question; events] per query."""

    def __init__(self, dim: int, d: int = 96, layers: int = 2, heads: int = 4, k_max: int = K_MAX):
        super().__init__()
        self.d = d
        self.ev_pool, self.q_pool = AttnPool(dim), AttnPool(dim)
        self.ev_in, self.q_in, self.match_in = nn.Linear(2 * dim, d), nn.Linear(2 * dim, d), nn.Linear(1, d)
        layer = nn.TransformerEncoderLayer(d, heads, 2 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.point, self.unknown = nn.Linear(d, 1), nn.Linear(d, 1)
        self.event_type, self.ask, self.k = nn.Linear(d, len(EVENT_TYPES)), nn.Linear(d, len(ASKS)), nn.Linear(d, k_max)

    def forward(self, b: Block, match_logits: torch.Tensor) -> tuple[torch.Tensor, dict]:
        Q, E = b.valid.shape
        rank = b.valid.flip(-1).cumsum(-1).flip(-1) - 1  # (Q, E): valid events after e
        ev = self.ev_in(self.ev_pool(b.ev_vec, b.ev_tok, b.ev_mask))[None]  # (1, E, d)
        x_ev = ev + self.match_in(match_logits[..., None]) + _sinusoid(rank.clamp(min=0), self.d)  # (Q, E, d)
        x_q = self.q_in(self.q_pool(b.q_vec, b.q_tok, b.q_mask))[:, None]  # (Q, 1, d)
        pad = torch.cat([torch.zeros(Q, 1, dtype=torch.bool), ~b.valid], 1)  # (Q, 1 + E)
        h = self.blocks(torch.cat([x_q, x_ev], 1), src_key_padding_mask=pad)  # (Q, 1 + E, d)
        logits = torch.cat([self.point(h[:, 1:]).squeeze(-1).masked_fill(~b.valid, -1e4), self.unknown(h[:, 0])], -1)
        aux = {"type": self.event_type(h[:, 1:]), "ask": self.ask(h[:, 0]), "k": self.k(h[:, 0])}
        return logits.log_softmax(-1), aux


class BridgeModel(nn.Module):
    """A mode's matcher and a head: ``forward(block)`` -> (log-probs (Q, E + 1), aux logits)."""

    def __init__(self, mode: str, head: str, dim: int, *, exact: bool = True, k_max: int = K_MAX):
        super().__init__()
        self.mode, self.head_name = mode, head
        self.matcher = TextMatcher(dim, exact) if mode == "text" else None
        self.head = ReplayHead(dim, k_max=k_max) if head == "replay" else TransformerHead(dim, k_max=k_max)

    def forward(self, b: Block) -> tuple[torch.Tensor, dict]:
        if self.matcher is None:  # oracle: the given ids decide, as logits of +-8
            match, aux = 16.0 * (b.q_key[:, None] == b.ev_key[None, :]).float() - 8.0, {}
        else:
            match = self.matcher(b)
            aux = {"match": match}
        logp, more = self.head(b, match)
        return logp, {**aux, **more}


def name_loss(matcher: TextMatcher, b: Block, drop_states: float = 0.5) -> torch.Tensor:
    """BCE of the tagger against the name labels (word pieces of the key's surface)."""
    terms = []
    for logits, labels in zip(matcher.names(b, drop_states), (b.q_name, b.ev_name), strict=True):
        known = labels >= 0
        if known.any():
            terms.append(F.binary_cross_entropy_with_logits(logits[known], labels[known]))
    return sum(terms) if terms else torch.zeros(())


def loss(model: BridgeModel, b: Block, aux: bool = True) -> tuple[torch.Tensor, dict]:
    """Pointer NLL at the gold event (or unknown), plus, with ``aux`` (training only), the
    auxiliary labels from the IR: event type, ask, version ordinal and, in text mode, which
    events name the asked key."""
    logp, out = model(b)
    terms = {"pointer": F.nll_loss(logp, b.gold)}
    if aux:
        t = out["type"]
        terms["type"] = F.cross_entropy(t.reshape(-1, t.shape[-1]), b.ev_type.expand(t.shape[:-1]).reshape(-1))
        terms["ask"] = F.cross_entropy(out["ask"], b.ask)
        if (b.k >= 0).any():
            terms["k"] = F.cross_entropy(out["k"], b.k, ignore_index=-100)
        if "match" in out:
            same = (b.q_key[:, None] == b.ev_key[None, :]).float()[b.valid]
            logit = out["match"][b.valid]
            # focal (gamma 2): the pairs still matched wrongly weigh most, so the rare hard
            # negatives (a name one digit or one word away) are not drowned by the easy ones
            p_wrong = torch.sigmoid(torch.where(same > 0, -logit, logit)).detach()
            bce = F.binary_cross_entropy_with_logits(logit, same, reduction="none")
            terms["match"] = 4 * (p_wrong ** 2 * bce).mean()
    return sum(terms.values()), {k: float(v.detach()) for k, v in terms.items()}
