"""The learned tier's shared front end and the memory interface every learned model follows.

Imported only by learned models (it imports torch at module level); the generator, scorer and
CLI-startup paths never import it.

**Front end** (DESIGN.md section 8), one per model, the same code for every memory:

* one token embedding ``E`` (``vocab_size x d_model``), tied to the answer head: the logits
  over the answer classes ``{unknown} + values`` are ``scale * out @ E[answer ids]^T``, so a
  memory that returns a stored value's own embedding answers that value;
* one key encoder shared by writes and reads: the key at position ``t`` is an MLP of the
  embeddings of the ``key_length`` tokens *before* ``t`` (unit norm).  At a value token
  (``WRITE k1 k2 v``, a silent ``k1 k2 v``, a distractor's value) and at an answer slot
  (``QUERY ASK k1 k2 SLOT``) that window is exactly the key; after a delete (``DELETE k1 k2 x``)
  it is the deleted key;
* a short gate context: an MLP of the embeddings of the last ``context`` tokens up to ``t``
  (default 4: the marker, the key and the token itself), from which memories derive their gates;
* the vocabulary's documented layout, read as such: every ask-version marker embeds as one
  token class, and its k (1-based) is given to the memory as an integer (``Features.ask_k``,
  at the answer slot), so a version ask for a k never seen in training reads the k-th entry;
* loss: cross-entropy at each query's answer slot (:func:`answer_loss`).

**Memory interface.**  A memory is a ``torch.nn.Module`` built as ``Memory(cfg: FrontEndConfig,
**knobs)`` with

* ``initial_state(batch: int) -> state``: the empty state (any value: a NamedTuple of tensors);
* ``forward(f: Features, state, read: (B, T) bool) -> (out: (B, T, d_model), state)``: read the
  chunk's features (``state`` None: the empty state, so a memory need not build it for one
  pass), answer at the ``read`` positions (the answer slots; other rows of ``out`` may be
  anything), and return the state after the chunk.

The state is a value passed in and out: running a stream in chunks with the state carried must
equal one pass over the whole (the tests check it for every stateful memory).  The front end
carries its own state too (the last ``context - 1`` tokens), so :class:`LearnedModel` is chunked
the same way.  A memory may also define ``aux_loss(f, extras) -> Tensor`` (its gates' share of
the loss, e.g. write supervision) and ``routes(...)``; see :mod:`memgen.memslot_ref.model`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from memgen.format.vocab import ABSENT_TOKEN, PAD, VERSION_OFFSET, Vocab


def check_ceilings(owner: str, ceilings: dict[str, tuple[int, int]], **values: int) -> None:
    """ValueError naming the first knob outside its documented range ``ceilings[name] = (lo, hi)``
    (docs/models.md, "Ceilings"): checked when a model is built, before any tensor is allocated."""
    for name, v in values.items():
        lo, hi = ceilings[name]
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError(f"{owner}: {name} must be an integer from {lo:,} to {hi:,} (got {v!r})")


#: the front end's ceilings: the embedding is vocab_size x d_model floats, the MLPs
#: (context x d_model) x hidden; the inference tables (context x vocab_size x hidden) are built only
#: up to TABLE_FLOATS, beyond which inference runs the MLPs
FRONTEND_CEILINGS = {"vocab_size": (16, 1 << 16), "d_model": (1, 1024), "d_key": (1, 1024),
                     "d_context": (1, 1024), "hidden": (1, 1024), "context": (3, 16)}
TABLE_FLOATS = 1 << 26


@dataclass(frozen=True)
class FrontEndConfig:
    """Sizes of the shared front end; ``vocab`` is the token vocabulary it reads."""

    vocab: Vocab = Vocab()
    d_model: int = 64  # token embedding = stored value = answer head
    d_key: int = 32  # key encoder output
    d_context: int = 64  # gate context features
    hidden: int = 64  # MLP width of the key encoder and the gate context
    context: int = 4  # tokens in the gate context (the last ones, up to and including t)

    def __post_init__(self) -> None:
        check_ceilings("front end", FRONTEND_CEILINGS, vocab_size=self.vocab.vocab_size, d_model=self.d_model,
                       d_key=self.d_key, d_context=self.d_context, hidden=self.hidden, context=self.context)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["vocab"] = asdict(self.vocab)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FrontEndConfig:
        return cls(**{**d, "vocab": Vocab(**d["vocab"])})


class Features(NamedTuple):
    """What the front end gives a memory for a chunk of T tokens."""

    ids: Tensor  # (B, T) long, the raw token ids
    value: Tensor  # (B, T, d) embedding of token t (tied to the answer head)
    key: Tensor  # (B, T, dk) unit-norm key of the key_length tokens before t
    context: Tensor  # (B, T, dc) gate context of the last `context` tokens up to t
    ask_k: Tensor  # (B, T) long: k of the ask-version marker of a query whose slot is t, else 0
    pos: Tensor  # (T,) long, absolute positions of the chunk's tokens
    absent: Tensor  # (d,) embedding of the "unknown" answer


class FrontState(NamedTuple):
    tail: Tensor  # (B, context - 1) long, the tokens before the chunk (PAD at the start)
    offset: int  # absolute position of the chunk's first token


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.Linear(hidden, n_out))


class FrontEnd(nn.Module):
    def __init__(self, cfg: FrontEndConfig):
        super().__init__()
        v = cfg.vocab
        if cfg.context < v.key_length + 2:
            raise ValueError(f"context must be at least key_length + 2 = {v.key_length + 2}")
        self.cfg = cfg
        self.embed = nn.Embedding(v.vocab_size, cfg.d_model)
        nn.init.normal_(self.embed.weight, std=1.0)
        self.key_encoder = _mlp(v.key_length * cfg.d_model, cfg.hidden, cfg.d_key)
        self.gate_context = _mlp(cfg.context * cfg.d_model, cfg.hidden, cfg.d_context)
        self.logit_scale = nn.Parameter(torch.tensor(0.25))
        answer = torch.cat([torch.tensor([ABSENT_TOKEN]), torch.arange(v.values) + v.value_offset])
        self.register_buffer("answer_ids", answer, persistent=False)  # (A,) = 1 + values

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> FrontState:
        return FrontState(torch.full((batch, self.cfg.context - 1), PAD, dtype=torch.long, device=device), 0)

    def forward(self, ids: Tensor, state: FrontState) -> tuple[Features, FrontState]:
        """Features of the chunk ``ids`` (B, T) and the front end's state after it."""
        cfg, v = self.cfg, self.cfg.vocab
        B, T = ids.shape
        c, L = cfg.context, v.key_length
        full = torch.cat([state.tail, ids], dim=1)  # (B, c-1+T)
        is_ver = (full >= VERSION_OFFSET) & (full < VERSION_OFFSET + v.max_version)
        emb_ids = torch.where(is_ver, torch.full_like(full, VERSION_OFFSET), full)  # one class for all k
        # inference (weights frozen) reads the first layers from tables, unless they would be too large
        if self.training or torch.is_grad_enabled() or (c + L) * v.vocab_size * cfg.hidden > TABLE_FLOATS:
            e = self.embed(emb_ids)  # (B, c-1+T, d)
            # window j (0 = oldest) of position t is full[t + j], t = 0..T-1 in chunk coordinates
            win = torch.stack([e[:, j:j + T] for j in range(c)], dim=2)  # (B, T, c, d)
            context = self.gate_context(win.flatten(2))  # (B, T, dc)
            key = self.key_encoder(win[:, :, c - 1 - L:c - 1].flatten(2))  # (B, T, dk): tokens t-L..t-1
        else:
            context, key = self._lookup(emb_ids, T)
        key = F.normalize(key, dim=-1)
        ask = full[:, c - 2 - L:c - 2 - L + T]  # (B, T): the token L+1 before t (the ask of a query)
        ask_k = torch.where((ask >= VERSION_OFFSET) & (ask < VERSION_OFFSET + v.max_version),
                            ask - VERSION_OFFSET + 1, torch.zeros_like(ask))
        value = self.embed(ids)  # (B, T, d): a version marker is never a value, so no class merge here
        pos = torch.arange(state.offset, state.offset + T, device=ids.device)
        absent = self.embed.weight[ABSENT_TOKEN]
        f = Features(ids, value, key, context, ask_k, pos, absent)
        return f, FrontState(full[:, -(c - 1):], state.offset + T)

    def _lookup(self, emb_ids: Tensor, T: int) -> tuple[Tensor, Tensor]:
        """Inference form of the two MLPs (weights frozen): the first layer of each is linear in
        the window's embeddings, so it is a sum of table rows, one (V, hidden) table per window
        position, built once per weight version, summed by one ``embedding_bag``.  Equal to the
        matmul form up to float rounding (tested)."""
        c, L, V = self.cfg.context, self.cfg.vocab.key_length, self.cfg.vocab.vocab_size
        ctx_tab, key_tab = self._tables()  # (c * V, hidden), (L * V, hidden)
        B = emb_ids.shape[0]
        win = torch.stack([emb_ids[:, j:j + T] + j * V for j in range(c)], -1).view(B * T, c)  # (B*T, c) rows
        h_ctx = F.embedding_bag(win, ctx_tab, mode="sum") + self.gate_context[0].bias  # (B*T, hidden)
        kwin = win[:, c - 1 - L:c - 1] - (c - 1 - L) * V  # (B*T, L): tokens t-L..t-1
        h_key = F.embedding_bag(kwin, key_tab, mode="sum") + self.key_encoder[0].bias
        context = self.gate_context[2](self.gate_context[1](h_ctx)).view(B, T, -1)  # (B, T, dc)
        key = self.key_encoder[2](self.key_encoder[1](h_key)).view(B, T, -1)  # (B, T, dk)
        return context, key

    def _tables(self) -> tuple[Tensor, Tensor]:
        """(c * V, hidden) and (L * V, hidden): the embedding through each window position's slice
        of the first layers, stacked; rebuilt when a weight changes in place (an optimiser step,
        a load)."""
        ws = (self.embed.weight, self.gate_context[0].weight, self.key_encoder[0].weight)
        version = tuple((w.data_ptr(), w._version) for w in ws)
        if getattr(self, "_tab_version", None) != version:
            d = self.cfg.d_model
            with torch.inference_mode(False), torch.no_grad():
                e = self.embed.weight  # (V, d)
                ctx = torch.cat([e @ w.T for w in self.gate_context[0].weight.split(d, dim=1)])
                key = torch.cat([e @ w.T for w in self.key_encoder[0].weight.split(d, dim=1)])
            self._tab, self._tab_version = (ctx, key), version
        return self._tab

    def logits(self, out: Tensor) -> Tensor:
        """(..., d) memory output -> (..., 1 + values) answer logits; class 0 is "unknown"."""
        return self.logit_scale * out @ self.embed.weight[self.answer_ids].T

    def class_to_token(self, cls: Tensor) -> Tensor:
        """Answer class (0 unknown, 1 + v) -> the token id a model emits at the slot."""
        return self.answer_ids[cls]


def gather_reads(read: Tensor) -> tuple[Tensor, Tensor]:
    """(B, T) bool -> (qpos (B, Q) long, qmask (B, Q) bool), the read positions of each row left-aligned."""
    B = read.shape[0]
    n = read.sum(1)  # (B,)
    Q = int(n.max()) if B else 0
    qpos = torch.zeros(B, Q, dtype=torch.long, device=read.device)
    qmask = torch.arange(Q, device=read.device)[None, :] < n[:, None]
    if Q:
        rows, cols = read.nonzero(as_tuple=True)
        rank = torch.cumsum(read.long(), 1)[rows, cols] - 1
        qpos[rows, rank] = cols
    return qpos, qmask


def answer_classes(value_ids: Tensor) -> Tensor:
    """Gold value ids (-1 absent) -> answer classes (0 unknown, 1 + v)."""
    return value_ids + 1


class LearnedModel(nn.Module):
    """The front end plus a swappable memory."""

    def __init__(self, cfg: FrontEndConfig, memory: nn.Module):
        super().__init__()
        self.cfg = cfg
        self.front = FrontEnd(cfg)
        self.memory = memory

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> tuple[FrontState, Any]:
        return self.front.initial_state(batch, device), self.memory.initial_state(batch)

    def forward(self, ids: Tensor, read: Tensor, state=None) -> tuple[Tensor, Features, Any]:
        """(memory output (B, T, d), features, state after the chunk) for ids (B, T)."""
        fstate, mstate = state if state is not None else (self.front.initial_state(ids.shape[0], ids.device), None)
        f, fstate = self.front(ids, fstate)
        out, mstate = self.memory(f, mstate, read)
        return out, f, (fstate, mstate)

    def run_chunked(self, ids: Tensor, read: Tensor, chunk: int) -> Tensor:
        """Memory output at every position of ``ids`` (B, T), processed ``chunk`` tokens at a time
        with the state carried (equal to one pass, by the interface's contract)."""
        state, outs = None, []
        for s in range(0, ids.shape[1], chunk):
            out, _, state = self(ids[:, s:s + chunk], read[:, s:s + chunk], state)
            outs.append(out)
        return torch.cat(outs, dim=1)


class _Store:
    """Storage a tape's states share: ``data[i][:, :n]`` holds the first n positions."""

    def __init__(self, data: tuple[Tensor, ...], n: int):
        self.data, self.n = data, n


class Tape(NamedTuple):
    """Per-position tensors of a stream so far, (B, n, ...) each (a memory's cache of keys and
    values), as a state value that appends in amortised O(1) per position: appending to the
    newest state writes into storage it shares with the older states (which never read past
    their own n); appending to an older state copies first, so every state stays a value."""

    store: _Store | None
    n: int

    def append(self, *xs: Tensor, align: int = 1) -> Tape:
        """This tape with xs (B, T, ...) after its n positions; capacity a multiple of ``align``."""
        T, st, n = xs[0].shape[1], self.store, self.n
        need = -(-(n + T) // align) * align
        if st is None or st.n != n or st.data[0].shape[1] < need:
            cap = need if st is None else max(need, -(-(n + T) * 3 // 2 // align) * align)  # grow by 1.5x
            data = tuple(x.new_zeros(x.shape[0], cap, *x.shape[2:]) for x in xs)  # zeros: finite past n
            if st is not None:
                for new, old in zip(data, st.data, strict=True):
                    new[:, :n] = old[:, :n]
            st = _Store(data, n)
        for buf, x in zip(st.data, xs, strict=True):
            buf[:, n:n + T] = x
        st.n = n + T
        return Tape(st, n + T)

    def tensors(self, upto: int | None = None) -> tuple[Tensor, ...]:
        """Views (no copy) of the first ``upto`` (default n) positions; rows past n are zeros or
        a later state's positions, so a reader must mask them (a causal one does)."""
        if self.store is None:
            raise ValueError("an empty tape has no tensors")
        return tuple(x[:, :self.n if upto is None else upto] for x in self.store.data)


EMPTY_TAPE = Tape(None, 0)


def answer_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Mean cross-entropy of (N, A) logits against (N,) answer classes."""
    return F.cross_entropy(logits, target)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
