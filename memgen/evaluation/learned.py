"""Trained checkpoints as registered models: ``memgen eval --model memslot_ref`` (the shipped
checkpoint) or ``--model memslot_ref:checkpoint=PATH``.

Each learned model is a dataclass registered by name like the mechanism models, answering
``predict(TokenBatch) -> Answers``, so :func:`memgen.evaluation.predict.evaluate` runs and scores
it through the same path.  This module imports no torch at import time: the checkpoint (and
torch) is loaded at the first ``predict``.

Rows are run in batches of equal length (at most ``batch_tokens`` tokens at a time), each in
chunks of ``chunk`` tokens with the memory state carried, in the model's inference form.  A
model refuses, with one line, a checkpoint of another model, a corrupted one, a dataset whose
vocabulary is not the checkpoint's, and rows longer than ``max_length``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from memgen.format.errors import DataError, UsageError
from memgen.format.vocab import Vocab
from memgen.models.registry import ROUTE_FALLBACK, ROUTE_RETRIEVAL, ROUTE_SLOT, ROUTE_STATE, Answers, register_model
from memgen.models.stream import TokenBatch

#: where the shipped checkpoints live (in the package)
SHIPPED = Path(__file__).resolve().parent.parent / "data" / "checkpoints"


def shipped_checkpoint(name: str) -> Path:
    return SHIPPED / f"{name}.pt"


#: a small fixed held-out set (token ids and answers, 20 queries per probe at 192 tokens, stored so
#: that a later change to a generator leaves it as it is) on which every shipped checkpoint's
#: accuracy is recorded in its sidecar, ``"fixed_eval"`` (tests/models/test_learned.py checks it)
FIXED_EVAL = SHIPPED / "fixed-eval-192.npz"
_FIXED_FIELDS = ("ids", "q_row", "q_slot", "q_class", "q_probe", "keep")


def write_fixed_eval(path: Path = FIXED_EVAL, seed: int = 7, per_probe: int = 20) -> None:
    """Write the fixed set: held-out episodes (seed domain "heldout", ``seed``) at 192 tokens."""
    import io

    from memgen.io.atomic import atomic_write_bytes
    from memgen.models.train import heldout_set

    d, keep = heldout_set(192, per_probe, seed, Vocab())
    rows = np.unique(d.q_row[keep])  # only the episodes a kept query is in
    new_row = np.full(d.ids.shape[0], -1)
    new_row[rows] = np.arange(rows.size)
    buf = io.BytesIO()
    np.savez_compressed(buf, ids=d.ids[rows].astype(np.int16), q_row=new_row[d.q_row[keep]], q_slot=d.q_slot[keep],
                        q_class=d.q_class[keep], q_probe=d.q_probe[keep], keep=np.ones(int(keep.sum()), bool))
    atomic_write_bytes(path, buf.getvalue())


def fixed_eval_accuracy(net, path: Path = FIXED_EVAL) -> dict:
    """Accuracy per probe of a loaded net on the fixed set (:func:`accuracy_per_probe`)."""
    from memgen.models.train import TokenData, accuracy_per_probe

    with np.load(path, allow_pickle=False) as z:
        a = {k: z[k] for k in _FIXED_FIELDS}
    zeros = np.zeros(a["ids"].shape, np.float32)
    d = TokenData(a["ids"].astype(np.int64), a["q_row"], a["q_slot"], a["q_class"], a["q_probe"], zeros, zeros)
    return accuracy_per_probe(net, d, a["keep"])


@lru_cache(maxsize=8)
def _load(path: str, mtime: float, model: str, memory: str):
    """(net in eval mode, meta) of a checkpoint of ``model`` (a name, or a plug-in's
    package.module:Class); cached by path and mtime."""
    from memgen.evaluation import zoo  # noqa: F401  (the built-in memories by name, for a caller that skipped it)
    from memgen.format.vocab import Vocab as _Vocab
    from memgen.models import checkpoint
    from memgen.models.train import build

    name, meta, state = checkpoint.load(path, model)
    try:
        vocab = _Vocab(**meta["frontend"]["vocab"])
        frontend = {k: v for k, v in meta["frontend"].items() if k != "vocab"}
        net = build(model, meta.get("knobs", {}), frontend, vocab)
    except (KeyError, TypeError, AttributeError, UsageError) as e:  # a hostile or foreign config
        why = e.message if isinstance(e, UsageError) else f"{type(e).__name__}: {e}"
        raise DataError(f"{path}: its config cannot build a {name} model ({why[:200]})") from None
    try:
        net.load_state_dict(state, strict=True)
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        raise DataError(f"{path}: its weights do not fit the {name} model ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:160]})") from None
    net.eval()
    return net, meta


@dataclass(frozen=True)
class LearnedModel:
    """A trained checkpoint answering queries.  ``checkpoint``: its path (empty: the shipped
    one); ``chunk``: tokens per forward (state carried); ``batch_tokens``: tokens run at once;
    ``max_length``: the longest row the model accepts (0: no limit); ``threads``: torch threads
    (0: leave torch's setting)."""

    checkpoint: str = ""
    chunk: int = 65536
    batch_tokens: int = 1 << 20
    max_length: int = 0
    threads: int = 0
    #: the memory class of a plug-in (package.module:Class), as the user names it
    memory: str = ""
    #: where the model runs: "cpu", or "cuda" (a GPU-only plug-in such as flash-linear-attention's layers)
    device: str = "cpu"

    route = ROUTE_STATE
    #: not part of a run that names no model (torch, a checkpoint, and slow on millions of tokens)
    in_default_run = False

    #: tokens per forward and tokens run at once bound the activations (a few hundred floats per
    #: token); max_length only refuses rows
    CEILINGS = {"chunk": (1, 1 << 22), "batch_tokens": (1, 1 << 26), "max_length": (0, 1 << 40),
                "threads": (0, 1024)}

    def __post_init__(self) -> None:
        for knob, (lo, hi) in self.CEILINGS.items():
            v = getattr(self, knob)
            if not lo <= v <= hi:
                raise ValueError(f"{knob} must be {lo:,} to {hi:,} (got {v:,})")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda (got {self.device!r})")

    def checkpoint_path(self) -> Path:
        path = Path(self.checkpoint).expanduser() if self.checkpoint else shipped_checkpoint(self.name)
        if not path.is_file():
            hint = "" if self.checkpoint else (f"; train one: memgen train --model {self.name} --out CKPT, "
                                               f"then --model {self.name}:checkpoint=CKPT")
            raise UsageError(f"checkpoint {path}: no such file{hint}")
        return path

    def load(self):
        path = self.checkpoint_path()
        return _load(str(path), os.path.getmtime(path), self.memory or self.name, self.memory)

    def predict(self, batch: TokenBatch) -> Answers:
        import torch

        net, meta = self.load()
        vocab = Vocab(**meta["frontend"]["vocab"])
        if vocab != batch.vocab:
            raise DataError(f"the dataset's token vocabulary ({batch.vocab}) is not the one {self.name} "
                            f"was trained on ({vocab}): it cannot read this rendering")
        lengths = np.diff(batch.row_start)
        too_long = lengths.max(initial=0)
        if self.max_length and too_long > self.max_length:
            raise UsageError(f"{self.name}: rows of {too_long:,} tokens exceed its memory budget "
                             f"(max_length {self.max_length:,}); raise {self.name}:max_length=N")
        if self.threads:
            torch.set_num_threads(self.threads)
        if self.device == "cuda" and not torch.cuda.is_available():
            raise UsageError(f"{self.name}: device=cuda, but torch sees no CUDA GPU here")
        net.to(self.device)
        Q = batch.n_queries
        pred = np.full(Q, -1, dtype=np.int64)
        route = np.full(Q, self.route, dtype=np.int8)
        active = np.zeros(Q, dtype=np.int32)
        slot = batch.query_end - 1 - batch.row_start[batch.query_row]  # (Q,) in-row answer slots
        for T in np.unique(lengths):
            rows = np.flatnonzero(lengths == T)
            per = max(1, self.batch_tokens // max(int(T), 1))
            for lo in range(0, rows.size, per):
                sel = rows[lo:lo + per]
                ids = np.stack([batch.ids[batch.row_start[r]:batch.row_start[r + 1]] for r in sel]).astype(np.int64)
                local = np.full(batch.n_rows, -1, dtype=np.int64)
                local[sel] = np.arange(sel.size)
                qs = np.flatnonzero(local[batch.query_row] >= 0)
                qr, qt = local[batch.query_row[qs]], slot[qs]
                read = torch.zeros(ids.shape, dtype=torch.bool)
                read[qr, qt] = True
                with torch.inference_mode():  # frozen weights: the front end's table form, no autograd records
                    out, gates = self._run(net, torch.from_numpy(ids).to(self.device), read.to(self.device), qr, qt)
                    cls = net.front.logits(out).argmax(-1)
                    pred[qs] = net.front.class_to_token(cls).cpu().numpy()
                if gates is not None:
                    route[qs] = np.where(gates[0] >= 0.5, ROUTE_SLOT, ROUTE_FALLBACK)
                    active[qs] = gates[1]
        return Answers(pred, route, active)

    def _run(self, net, ids, read, qr: np.ndarray, qt: np.ndarray):
        """(memory output at the queries (Q, d), (route gate, blocks read) per query or None)."""
        import torch

        state, outs = None, []
        gate = np.full(qr.size, np.nan)
        blocks = np.zeros(qr.size, dtype=np.int32)
        at = {(int(r), int(t)): i for i, (r, t) in enumerate(zip(qr, qt, strict=True))}
        traced = False
        for s in range(0, ids.shape[1], self.chunk):
            out, _, state = net(ids[:, s:s + self.chunk], read[:, s:s + self.chunk], state)
            c = (qt >= s) & (qt < s + self.chunk)
            outs.append((np.flatnonzero(c), out[torch.from_numpy(qr[c]), torch.from_numpy(qt[c] - s)].cpu()))
            trace = getattr(net.memory, "trace", None)
            if trace and "gate" in trace and c.any():
                traced = True
                qp, qm = trace["qpos"], trace["qmask"]
                for b, j in zip(*np.nonzero(qm.cpu().numpy()), strict=True):
                    i = at[(int(b), int(qp[b, j]) + s)]
                    gate[i], blocks[i] = float(trace["gate"][b, j]), int(trace["blocks"][b, j])
        d = net.cfg.d_model
        res = torch.zeros(qr.size, d)
        for idx, o in outs:
            res[torch.from_numpy(idx)] = o
        return res.to(self.device), ((gate, blocks) if traced else None)


@register_model("memslot_ref")
@dataclass(frozen=True)
class MemslotRef(LearnedModel):
    """The learned reference hybrid (memgen/memslot_ref/model.py): slots + block top-k fallback;
    route is ``slot`` or ``fallback`` by its learned gate."""

    route = ROUTE_SLOT


@register_model("transformer")
@dataclass(frozen=True)
class Transformer(LearnedModel):
    """Learned causal softmax attention with partial RoPE (memgen/baselines/transformer.py)."""

    route = ROUTE_RETRIEVAL


@register_model("delta_net")
@dataclass(frozen=True)
class DeltaNet(LearnedModel):
    """Learned gated delta-rule fixed state (memgen/baselines/delta_net.py)."""

    route = ROUTE_STATE


@register_model("topk_attention")
@dataclass(frozen=True)
class TopkAttention(LearnedModel):
    """Learned block-sparse top-k attention, NSA-style (memgen/baselines/topk_attention.py)."""

    route = ROUTE_RETRIEVAL


@register_model("learned")
@dataclass(frozen=True)
class Learned(LearnedModel):
    """A checkpoint of a user's memory: ``learned:checkpoint=PATH,memory=package.module:Class``
    (the class named by the user, never read from the file)."""

    def checkpoint_path(self) -> Path:
        if not self.checkpoint or not self.memory:
            raise UsageError("learned: give learned:checkpoint=PATH,memory=package.module:Class")
        return super().checkpoint_path()


LEARNED_MODELS = (MemslotRef, Transformer, DeltaNet, TopkAttention, Learned)

# dataclass fields of subclasses keep the defaults above; the route is a class attribute
assert all(dataclasses.is_dataclass(m) for m in LEARNED_MODELS)
