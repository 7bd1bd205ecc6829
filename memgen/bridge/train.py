"""Training the bridge heads on episodes generated in memory, and the head files they ship as.

A head file is a ``torch.save`` of plain tensors and numbers (read back with
``weights_only=True``), beside a JSON sidecar with the command that made it, the training
seeds and episodes, the parameters, the encoder fingerprint and the file's sha256."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from memgen.bridge.cache import States, encode_cached
from memgen.bridge.encoder import Encoder
from memgen.bridge.episodes import K_MAX, BridgeEpisode
from memgen.bridge.heads import (
    HEADS,
    MODES,
    PIECE_FEATURES,
    Block,
    BridgeModel,
    loss,
    name_loss,
    name_word_inputs,
    question_words,
    word_features,
)
from memgen.format.errors import DataError, UsageError
from memgen.io.atomic import atomic_write_bytes, atomic_write_text, sha256_file

#: the heads shipped in the package, one per (mode, head)
SHIPPED = Path(__file__).resolve().parent.parent / "data" / "bridge"
#: a head file larger than this is not one of ours
MAX_HEAD_BYTES = 64 << 20


@dataclass
class Encoded:
    """Episodes and the frozen states of their sentences: episode i's events are rows
    ``rows[i][0]`` of ``states``, its questions rows ``rows[i][1]``."""

    episodes: list[BridgeEpisode]
    states: States
    rows: list[tuple[list[int], list[int]]]
    spans: list[list[tuple[int, int]]] | None = None  # per sentence, its word pieces' character spans
    #: the tagger's extra training questions (``encode_episodes(surrogates=K)``): per episode, per
    #: copy, its questions with each asked name replaced by a surrogate name, as rows of ``renamed``
    renamed: States | None = None
    renamed_rows: list[list[list[int]]] | None = None  # [episode][copy] -> rows of ``renamed``
    renamed_texts: list[str] | None = None  # per row of ``renamed``, its text
    renamed_names: list[str] | None = None  # per row of ``renamed``, the name it holds ("" if none)
    renamed_spans: list[list[tuple[int, int]]] | None = None
    _question_share: dict[str, torch.Tensor] = field(default_factory=dict)
    _word_share: dict[str, dict[str, float]] = field(default_factory=dict)

    def _episodes_of(self, domain: str) -> list[int]:
        return [i for i, ep in enumerate(self.episodes) if ep.domain == domain]

    def word_share(self, domain: str) -> dict[str, float]:
        """Per whole word (:func:`~memgen.bridge.heads.word_features`'s), the share of the
        questions here in ``domain`` that hold it, on a log scale (as :meth:`question_share`)."""
        if domain not in self._word_share:
            from memgen.bridge.heads import sentence_words

            eps = [self.episodes[i] for i in self._episodes_of(domain)]
            count: Counter = Counter(w for ep in eps for q in ep.questions for w in set(sentence_words(q)))
            n = math.log1p(max(sum(len(ep.questions) for ep in eps), 1))
            self._word_share[domain] = {w: math.log1p(c) / n for w, c in count.items()}
        return self._word_share[domain]

    def question_share(self, domain: str) -> torch.Tensor:
        """Per word piece id, the share of the questions here in ``domain`` (every episode's) that
        hold it, on a log scale: the wording of a domain's questions recurs across its episodes, a
        name in the few questions that ask it, whatever the domain (no labels are read).  Per
        domain, so that a training set of several domains counts as an evaluation config of one."""
        if domain not in self._question_share:
            rows = [r for i in self._episodes_of(domain) for r in self.rows[i][1]]
            off = self.states.offsets
            size = int(self.states.ids.max()) + 1 if self.states.ids.numel() else 1
            count = torch.zeros(size)
            for r in rows:
                count[self.states.ids[int(off[r]):int(off[r + 1])].long().unique()] += 1
            self._question_share[domain] = torch.log1p(count) / math.log1p(max(len(rows), 1))
        return self._question_share[domain]


def encode_episodes(encoder: Encoder, episodes: Sequence[BridgeEpisode], cache=None, *, progress: bool = False,
                    surrogates: int = 0, seed: int = 0) -> Encoded:
    """Encode every event sentence and question of ``episodes`` once (one cache entry);
    with the word pieces' character spans (for the name labels and the whole-word name match); with
    ``surrogates`` K, also K copies of every episode's questions with the asked names replaced
    by surrogate names (:func:`surrogate_name`), for the name tagger."""
    texts: list[str] = []
    rows = []
    for ep in episodes:
        lo = len(texts)
        texts.extend(ep.events)
        mid = len(texts)
        texts.extend(ep.questions)
        rows.append((list(range(lo, mid)), list(range(mid, len(texts)))))
    states = encode_cached(encoder, texts, cache, progress=progress)
    enc = Encoded(list(episodes), states, rows, encoder.tokenize(texts)[2])
    if surrogates:
        words = _vocabulary_words(encoder)
        rng = random.Random(seed)
        renamed, names, per_ep = [], [], []
        for ep in episodes:
            per_ep.append([])
            for _ in range(surrogates):
                got = renamed_questions(ep, rng, words)
                per_ep[-1].append(list(range(len(renamed), len(renamed) + len(got))))
                renamed.extend(t for t, _ in got)
                names.extend(n for _, n in got)
        enc.renamed = encode_cached(encoder, renamed, cache, progress=progress)
        enc.renamed_rows, enc.renamed_texts, enc.renamed_names = per_ep, renamed, names
        enc.renamed_spans = encoder.tokenize(renamed)[2]
    return enc


#: how surrogate names are built: parts of these shapes, one or two of them
_SYLLABLES = ("ka", "ro", "vin", "tel", "mar", "zo", "qui", "len", "dra", "po", "sha", "bel", "nor", "ux", "fi",
              "gan", "tor", "lis", "ve", "mu", "sen", "ath", "ob", "rik", "dul", "pe", "yan", "cor", "ith", "wo")


def _made_up_word(rng: random.Random, most: int) -> str:
    """A made-up lower-case word of 2 to ``most`` syllables."""
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, most)))


def _vocabulary_words(encoder: Encoder) -> list[str]:
    """Whole lower-case words of the encoder's vocabulary (common words, for surrogate phrases)."""
    vocab = encoder.tokenizer.get_vocab()
    return sorted(w for w in vocab if w.isalpha() and w.isascii() and len(w) >= 4)


def surrogate_name(rng: random.Random, words: Sequence[str]) -> str:
    """A random name of a random shape: one or two parts, each a made-up capitalised name, a
    person's name with an initial, a code of letters and digits (either order, any separator),
    an identifier of made-up words joined by ``_`` or ``-`` with an optional number, or common
    words.  None is any domain's name shape in particular: the tagger trained on them learns that
    a name is what the question asks about, whatever it looks like."""
    def pseudo() -> str:
        return _made_up_word(rng, 3)

    def part() -> str:
        shape = rng.randrange(5)
        if shape == 0:
            return " ".join(pseudo().capitalize() for _ in range(rng.randint(1, 2)))
        if shape == 1:
            return f"{pseudo().capitalize()} {chr(rng.randint(65, 90))}. {pseudo().capitalize()}"
        if shape == 2:
            letters = "".join(chr(rng.randint(65, 90)) for _ in range(rng.randint(1, 4)))
            digits = str(rng.randint(10, 99999))
            sep = rng.choice(("-", " ", "", "/", "."))
            return letters + sep + digits if rng.random() < 0.7 else digits + sep + letters
        if shape == 3:
            name = rng.choice("_-").join(pseudo() for _ in range(rng.randint(2, 3)))
            return name + (f"-{rng.randint(0, 99):02d}" if rng.random() < 0.5 else "")
        if not words:  # an encoder whose vocabulary has no whole words (a test's tiny one)
            return pseudo()
        return " ".join(rng.choice(words) for _ in range(rng.randint(1, 3)))

    return " ".join(part() for _ in range(rng.choice((1, 1, 2))))


def renamed_questions(ep: BridgeEpisode, rng: random.Random, words: Sequence[str]) -> list[tuple[str, str]]:
    """``ep``'s questions with each asked key's name replaced by one surrogate name (the same for
    every question of that key), as (text, surrogate); ("", "") stands for a question whose name
    does not appear in it verbatim, so its rows line up with the episode's questions."""
    _, q_names = _surfaces(ep)
    fresh: dict[int, str] = {}
    out = []
    for text, name, key in zip(ep.questions, q_names, ep.query_key, strict=True):
        at = text.lower().find(name.lower())
        if at < 0:
            out.append(("", ""))
            continue
        new = fresh.setdefault(key, surrogate_name(rng, words))
        out.append((_swap_words(text[:at], rng, words) + new + _swap_words(text[at + len(name):], rng, words), new))
    return out


def _swap_words(text: str, rng: random.Random, words: Sequence[str], share: float = 0.25) -> str:
    """``text`` with about ``share`` of its words of four letters or more replaced, half by random
    common words and half by made-up ones: a question's wording the tagger has not seen (a new
    domain's "assay", "rerun") must not read as a name either, however oddly it splits into word
    pieces.  Only the piece counts tell a name from wording then, and they carry over to any domain."""
    if not words:
        return text
    out = []
    for w in text.split(" "):
        if len(w) >= 4 and w.isalpha() and rng.random() < share:
            out.append(_made_up_word(rng, 4) if rng.random() < 0.5 else rng.choice(words))
        else:
            out.append(w)
    return " ".join(out)


def _name_labels(texts: Sequence[str], names: Sequence[str], spans: list[list[tuple[int, int]]],
                 L: int) -> torch.Tensor:
    """(R, L): 1 on word pieces inside the sentence's name, 0 elsewhere; -1 (unknown) for a
    sentence where the name does not appear verbatim."""
    out = torch.full((len(texts), L), -1.0)
    for r, (text, name, sp) in enumerate(zip(texts, names, spans, strict=True)):
        at = text.lower().find(name.lower())
        if at < 0:
            continue
        out[r, :len(sp)] = torch.tensor([float(a < at + len(name) and b > at) for a, b in sp])
    return out


def _surfaces(ep: BridgeEpisode) -> tuple[list[str], list[str]]:
    from memgen.render.text.domain import key_surface, lookalike_surface

    ev = [lookalike_surface(ep.domain, k, a) if a >= 0 else key_surface(ep.domain, k)
          for k, a in zip(ep.event_key, ep.event_alias, strict=True)]
    return ev, [key_surface(ep.domain, k) for k in ep.query_key]


def _piece_counts(ev_ids: torch.Tensor, q_ids: torch.Tensor, corpus: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per word piece, the share of the episode's events and of its questions that hold it, and
    its ``corpus`` share (:meth:`Encoded.question_share`), on a log scale: (E, Le, 3) and (Q, Lq, 3)."""
    size = int(max(ev_ids.max(), q_ids.max(), 0)) + 2
    shares = []
    for ids in (ev_ids, q_ids):
        hold = torch.zeros(ids.shape[0], size).scatter_(1, ids.clamp(min=-1) + 1, 1.0)[:, 1:]  # (R, V): pad dropped
        shares.append(torch.log1p(hold.sum(0)) / math.log1p(ids.shape[0]))  # (V,)
    seen = corpus[:size - 1]  # ids 0 .. size - 2, as the shares above
    shares.append(torch.cat([seen, torch.zeros(size - 1 - seen.shape[0])]))
    table = torch.stack(shares, -1)  # (V, 3)
    return table[ev_ids.clamp(min=0)], table[q_ids.clamp(min=0)]


def make_block(enc: Encoded, i: int, labels: bool = False) -> Block:
    """Episode ``i`` of ``enc`` as a :class:`Block` (with its training labels if ``labels``)."""
    ep, (er, qr) = enc.episodes[i], enc.rows[i]
    ev_tok, ev_ids, _ = enc.states.token_block(er)
    q_tok, q_ids, _ = enc.states.token_block(qr)
    ends, starts = torch.tensor(ep.event_end), torch.tensor(ep.query_start)
    valid = (starts[:, None] < 0) | (ends[None, :] <= starts[:, None])  # (Q, E)
    b = Block(enc.states.pooled[er].float(), ev_tok, ev_ids, enc.states.pooled[qr].float(), q_tok, q_ids,
              torch.tensor(ep.named_keys), torch.tensor(ep.query_key), valid)
    b.ev_df, b.q_df = _piece_counts(ev_ids, q_ids, enc.question_share(ep.domain))
    common = enc.word_share(ep.domain)
    table = question_words(ep.questions, ep.events, common)  # read by both: made once
    b.words = word_features(ep.questions, ep.events, common, table=table)
    if enc.spans is not None:
        b.q_word_pieces, b.q_word_has, b.q_word_weight = name_word_inputs(
            ep.questions, [enc.spans[r] for r in qr], ep.events, common, q_ids.shape[1], table=table)
    if labels:
        E = len(ep.events)
        b.ev_type, b.ask = torch.tensor(ep.event_type), torch.tensor(ep.asks)
        b.k = torch.tensor([k - 1 if k > 0 else -100 for k in ep.ks])
        b.gold = torch.tensor([g if g >= 0 else E for g in ep.gold])
        if enc.spans is not None:
            ev_names, q_names = _surfaces(ep)
            b.ev_name = _name_labels(ep.events, ev_names, [enc.spans[r] for r in er], ev_ids.shape[1])
            b.q_name = _name_labels(ep.questions, q_names, [enc.spans[r] for r in qr], q_ids.shape[1])
    return b


def renamed_blocks(enc: Encoded, i: int, b: Block) -> list[Block]:
    """The name tagger's extra blocks of episode ``i`` (whose labelled block is ``b``): its events
    as they are (their name labels unknown) and, per copy, its renamed questions.  A surrogate's
    word pieces occur in no event, so they take the piece counts of the name they replace (its
    mean over the name's pieces): the counts say "a name" as they do for a real one."""
    if enc.renamed is None or enc.renamed_rows is None or b.q_name is None:
        return []
    out = []
    for rows in enc.renamed_rows[i]:
        keep = [j for j, r in enumerate(rows) if enc.renamed_names[r]]
        if not keep:
            continue
        rows = [rows[j] for j in keep]
        q_tok, q_ids, _ = enc.renamed.token_block(rows)
        q_name = _name_labels([enc.renamed_texts[r] for r in rows], [enc.renamed_names[r] for r in rows],
                              [enc.renamed_spans[r] for r in rows], q_ids.shape[1])
        _, q_df = _piece_counts(b.ev_ids, q_ids, enc.question_share(enc.episodes[i].domain))
        # pieces not from the episode take the counts of what they replace: a surrogate name the
        # mean of the name's pieces, a swapped-in word the mean of the wording's
        old_name, old_rest = ((b.q_name[keep] == v).float()[..., None] for v in (1, 0))  # (Q', Lq, 1)
        name_df = (b.q_df[keep] * old_name).sum(1) / old_name.sum(1).clamp(min=1)  # (Q', 3)
        rest_df = (b.q_df[keep] * old_rest).sum(1) / old_rest.sum(1).clamp(min=1)
        new = ~(q_ids[:, :, None] == b.q_ids[keep][:, None, :]).any(-1)  # (Q', Lq) not in the original question
        q_df = torch.where((q_name == 1)[..., None], name_df[:, None], q_df)
        q_df = torch.where(((q_name == 0) & new)[..., None], rest_df[:, None], q_df)
        out.append(Block(b.ev_vec, b.ev_tok, b.ev_ids, enc.renamed.pooled[rows].float(), q_tok, q_ids,
                         b.ev_key, b.q_key[keep], b.valid[keep], ev_name=torch.full_like(b.ev_ids, -1.0),
                         q_name=q_name, ev_df=b.ev_df, q_df=q_df))
    return out


def check_readers(mode: str, head: str, readers: BridgeModel | None = None) -> None:
    """Refuse readers (:func:`train_head`'s) that a ``mode``-``head`` head cannot take: any, unless
    text mode; ``readers`` of another head."""
    if mode != "text":
        raise UsageError("--readers is for a text-mode head (it copies an oracle head's readers)")
    if readers is not None and readers.head_name != head:
        raise UsageError(f"--readers: a {readers.head_name} head; --head {head} needs a {head} one")


def train_head(enc: Encoded, mode: str, head: str, *, steps: int = 600, batch: int = 8, lr: float = 3e-3,
               aux: bool = True, exact: bool = True, seed: int = 0, piece_dropout: float = 0.0,
               readers: BridgeModel | None = None,
               on_step: Callable[[int, float], None] | None = None) -> tuple[BridgeModel, dict]:
    """Train one head for ``steps`` steps of ``batch`` episodes (AdamW, cosine decay); returns
    the model and a summary (losses, seconds).  Text mode, ``piece_dropout`` p: in that share of
    the training episodes the matcher's word-piece features are replaced by their episode mean,
    so that it learns to decide from the whole-word features alone too.  Text mode,
    ``readers``: a trained head of the same kind (an oracle one) whose head (event and question
    readers, and the pointer) is copied and kept fixed, so that only the matcher learns and the
    two modes differ in selection alone."""
    if mode not in MODES or head not in HEADS:
        raise UsageError(f"mode {mode!r} / head {head!r}: choose a mode of {', '.join(MODES)} "
                         f"and a head of {', '.join(HEADS)}")
    if not enc.episodes:
        raise UsageError("no training episodes")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = BridgeModel(mode, head, enc.states.pooled.shape[1], exact=exact)
    if readers is not None:
        check_readers(mode, head, readers)
        try:
            model.head.load_state_dict(readers.head.state_dict())
        except RuntimeError:
            raise UsageError("readers: that head was made for another encoder (its sizes differ)") from None
        model.head.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    blocks = [make_block(enc, i, labels=True) for i in range(len(enc.episodes))]
    t0, last = time.perf_counter(), {}
    if model.matcher is not None:  # text mode: first the name tagger, then its spans' features stay fixed
        tag_steps = max(1, steps // 3)
        tag_opt = torch.optim.Adam([*model.matcher.tag.parameters(), *model.matcher.tag_df.parameters()], lr=1e-2)
        tag_blocks = blocks + [r for i, b in enumerate(blocks) for r in renamed_blocks(enc, i, b)]
        for step in range(tag_steps):
            tag_opt.zero_grad()
            picked = rng.sample(tag_blocks, min(batch, len(tag_blocks)))
            value = sum(name_loss(model.matcher, b) for b in picked) / len(picked)
            value.backward()
            tag_opt.step()
            if on_step:
                on_step(step - tag_steps, float(value.detach()))
        for b in blocks:
            b.match_features = model.matcher.features(b)
    order: list[int] = []
    model.train()
    for step in range(steps):
        opt.zero_grad()
        total = 0.0
        for _ in range(batch):
            if not order:
                order = rng.sample(range(len(blocks)), len(blocks))
            b = blocks[order.pop()]
            if piece_dropout and b.match_features is not None and rng.random() < piece_dropout:
                f = b.match_features.clone()
                f[..., :PIECE_FEATURES] = f[..., :PIECE_FEATURES].mean((0, 1), keepdim=True)
                b = dataclasses.replace(b, match_features=f)
            value, last = loss(model, b, aux)
            (value / batch).backward()
            total += float(value.detach()) / batch
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if on_step:
            on_step(step, total)
    model.eval()
    return model, {"steps": steps, "batch": batch, "lr": lr, "aux": aux, "exact": exact, "seed": seed,
                   "piece_dropout": piece_dropout, "readers_fixed": readers is not None,
                   "seconds": round(time.perf_counter() - t0, 1), "last_terms": last,
                   "params": sum(p.numel() for p in model.parameters())}


def save_head(model: BridgeModel, path: Path, meta: dict) -> Path:
    """Write ``path`` (.pt) and ``path.json`` (``meta`` plus the file's sha256), each whole."""
    import io

    buf = io.BytesIO()
    torch.save({"mode": model.mode, "head": model.head_name, "dim": model.head.ev_pool.score.in_features,
                "exact": model.matcher is None or model.matcher.use_exact, "k_max": K_MAX,
                "state": model.state_dict()}, buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_text(path.with_suffix(".json"),
                      json.dumps({**meta, "file": path.name, "sha256": sha256_file(path)}, indent=2) + "\n")
    return path


def shipped_head(mode: str, head: str = "replay") -> Path:
    return SHIPPED / f"{mode}-{head}.pt"


def load_head(path: str | Path) -> tuple[BridgeModel, dict]:
    """A head file and its sidecar (checked against the file's sha256), as (model, sidecar)."""
    path = Path(path).expanduser()
    side = path.with_suffix(".json")
    if not path.is_file() or not side.is_file():
        raise UsageError(f"head {path}: needs the file and its {side.name} sidecar (memgen bridge train writes both)")
    if path.stat().st_size > MAX_HEAD_BYTES:
        raise DataError(f"head {path}: larger than {MAX_HEAD_BYTES >> 20} MiB; not a bridge head")
    try:
        meta = json.loads(side.read_text())
        if meta.get("sha256") != sha256_file(path):
            raise DataError(f"head {path}: sha256 differs from its sidecar's; the file was changed or truncated")
        obj = torch.load(path, weights_only=True)
        model = BridgeModel(obj["mode"], obj["head"], int(obj["dim"]), exact=bool(obj["exact"]),
                            k_max=int(obj["k_max"]))
        model.load_state_dict(obj["state"])
    except DataError:
        raise
    except Exception as e:  # json, pickle-free torch.load and load_state_dict each raise their own types
        raise DataError(f"head {path}: cannot read it ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    return model.eval(), meta


#: the domain no shipped head is trained on, so a held-out-domain row can be measured
HELD_OUT_DOMAIN = "lab_notebook"
FAMILIES = ("write", "overwrite", "version", "distractor", "no_write_signal", "discard", "mixed")


def training_set(episodes: int, length: int = 2048, seed: int | None = None,
                 families: Sequence[str] = FAMILIES) -> list[BridgeEpisode]:
    """The shipped heads' training episodes: ``episodes`` per (family, domain) at ``length``
    tokens over every domain but :data:`HELD_OUT_DOMAIN`, plus ``2 * episodes`` version episodes
    of one key with 32 values and 24 questions each, so that the ordinals 1..K_MAX are asked."""
    from memgen.bridge.episodes import TRAIN_SEED, training_episodes
    from memgen.render.text.domain import available_domains

    doms = [d for d in available_domains() if d != HELD_OUT_DOMAIN]
    seed = TRAIN_SEED if seed is None else seed
    out = training_episodes(families, [length], episodes, domains=doms, seed=seed)
    if "version" not in families:
        return out
    return (out + training_episodes(["version"], [length], 2 * episodes, domains=doms, seed=seed + 1, keys=1,
                                overwrites=K_MAX - 1, queries=24))
