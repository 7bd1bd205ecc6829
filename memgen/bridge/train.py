"""Training the bridge heads on episodes generated in memory, and the head files they ship as.

A head file is a ``torch.save`` of plain tensors and numbers (read back with
``weights_only=True``), beside a JSON sidecar with the command that made it, the training
seeds and episodes, the parameters, the encoder fingerprint and the file's sha256."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from memgen.bridge.cache import States, encode_cached
from memgen.bridge.encoder import Encoder
from memgen.bridge.episodes import K_MAX, BridgeEpisode
from memgen.bridge.heads import HEADS, MODES, Block, BridgeModel, loss, name_loss
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


def encode_episodes(encoder: Encoder, episodes: Sequence[BridgeEpisode], cache=None, *, progress: bool = False,
                    spans: bool = False) -> Encoded:
    """Encode every event sentence and question of ``episodes`` once (one cache entry);
    with ``spans``, also the word pieces' character spans (for the name labels)."""
    texts: list[str] = []
    rows = []
    for ep in episodes:
        lo = len(texts)
        texts.extend(ep.events)
        mid = len(texts)
        texts.extend(ep.questions)
        rows.append((list(range(lo, mid)), list(range(mid, len(texts)))))
    states = encode_cached(encoder, texts, cache, progress=progress)
    return Encoded(list(episodes), states, rows, encoder.tokenize(texts)[2] if spans else None)


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


def _piece_counts(ev_ids: torch.Tensor, q_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per word piece, the share of the episode's events and of its questions that hold it,
    on a log scale: (E, Le, 2) and (Q, Lq, 2)."""
    size = int(max(ev_ids.max(), q_ids.max(), 0)) + 2
    shares = []
    for ids in (ev_ids, q_ids):
        hold = torch.zeros(ids.shape[0], size).scatter_(1, ids.clamp(min=-1) + 1, 1.0)[:, 1:]  # (R, V): pad dropped
        shares.append(torch.log1p(hold.sum(0)) / math.log1p(ids.shape[0]))  # (V,)
    table = torch.stack(shares, -1)  # (V, 2)
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
    b.ev_df, b.q_df = _piece_counts(ev_ids, q_ids)
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


def train_head(enc: Encoded, mode: str, head: str, *, steps: int = 600, batch: int = 8, lr: float = 3e-3,
               aux: bool = True, exact: bool = True, seed: int = 0,
               on_step: Callable[[int, float], None] | None = None) -> tuple[BridgeModel, dict]:
    """Train one head for ``steps`` steps of ``batch`` episodes (AdamW, cosine decay); returns
    the model and a summary (losses, seconds)."""
    if mode not in MODES or head not in HEADS:
        raise UsageError(f"mode {mode!r} / head {head!r}: choose a mode of {', '.join(MODES)} "
                         f"and a head of {', '.join(HEADS)}")
    if not enc.episodes:
        raise UsageError("no training episodes")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = BridgeModel(mode, head, enc.states.pooled.shape[1], exact=exact)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    blocks = [make_block(enc, i, labels=True) for i in range(len(enc.episodes))]
    t0, last = time.perf_counter(), {}
    if model.matcher is not None:  # text mode: first the name tagger, then its spans' features stay fixed
        tag_steps = max(1, steps // 3)
        tag_opt = torch.optim.Adam(model.matcher.tag.parameters(), lr=1e-2)
        for step in range(tag_steps):
            tag_opt.zero_grad()
            picked = rng.sample(blocks, min(batch, len(blocks)))
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
            value, last = loss(model, blocks[order.pop()], aux)
            (value / batch).backward()
            total += float(value.detach()) / batch
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if on_step:
            on_step(step, total)
    model.eval()
    return model, {"steps": steps, "batch": batch, "lr": lr, "aux": aux, "exact": exact, "seed": seed,
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
