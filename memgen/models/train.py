"""Training learned models on the token rendering, with data generated on the fly.

The data is memgen's own: a family's plan, :func:`memgen.generators.build.build_program` and the
token renderer, exactly what ``memgen generate`` runs, but with episode seeds derived in their
own domains: ``derive_seed("train", seed, family)`` for training batches and
``derive_seed("heldout", seed, family)`` for the held-out set, where ``memgen generate``,
``memgen eval`` and ``memgen stress`` derive theirs from ``"episode"``.  The seed spaces are
disjoint by construction (distinct hash domains), whatever seed either side is given.

A notebook calls :func:`train` the way ``memgen train`` does::

    from memgen.models.train import TrainConfig, train
    result = train(TrainConfig(model="memslot_ref", minutes=2))
    result.curve[-1]        # {"step", "seconds", "loss", "accuracy": {probe: acc}, ...}
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from memgen.format.codes import OP_DELETE, OP_OVERWRITE, OP_SILENT_WRITE, OP_WRITE, OPS, PROBES
from memgen.format.errors import UsageError
from memgen.format.vocab import Vocab

#: the families ``--family all`` trains on
ALL_FAMILIES = ("write", "overwrite", "version", "distractor", "no_write_signal", "discard", "mixed")
WRITE_SUPERVISION = ("lite", "none")


#: a training batch is batch x length tokens through the parallel form, whose memslot_ref
#: read is (batch, queries, length): the ceilings keep one step within a few GB (64 tokens is the
#: floor, checked with the families)
TRAIN_CEILINGS = {"length": (1, 65536), "batch": (1, 4096), "heldout_per_probe": (1, 10000), "threads": (0, 1024)}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (recorded in the checkpoint)."""

    model: str = "memslot_ref"  # a learned model's name, or package.module:Class (a memory)
    families: tuple[str, ...] = ALL_FAMILIES
    length: int = 192
    batch: int = 32  # episodes per step
    lr: float = 3e-3
    minutes: float = 20.0  # wall-clock budget (the run stops at whichever of minutes / steps comes first)
    steps: int = 0  # 0: no step limit
    seed: int = 0
    write_supervision: str = "lite"
    eval_every: float = 30.0  # seconds between held-out evaluations
    heldout_per_probe: int = 100
    threads: int = 1
    device: str = "auto"  # "auto": a CUDA GPU when torch sees one, else the CPU
    knobs: dict = field(default_factory=dict)  # the memory's own knobs
    frontend: dict = field(default_factory=dict)  # FrontEndConfig fields other than vocab

    def to_dict(self) -> dict:
        d = asdict(self)
        d["families"] = list(self.families)
        return d


@dataclass
class TokenData:
    """A batch of token-rendered episodes as arrays (B rows of T tokens, Q queries)."""

    ids: np.ndarray  # (B, T) int64
    q_row: np.ndarray  # (Q,) int64
    q_slot: np.ndarray  # (Q,) int64 answer-slot position in its row
    q_class: np.ndarray  # (Q,) int64 answer class: 0 unknown, 1 + value id
    q_probe: np.ndarray  # (Q,) int64 index into PROBES
    write_label: np.ndarray  # (B, T) float32: 1 at the value token of every write-like event
    discard_label: np.ndarray  # (B, T) float32: 1 at the token after a deleted key


def episode_table(family: str, length: int, start: int, rows: int, seed: int, domain: str,
                  vocab: Vocab | None = None) -> pa.Table:
    """``rows`` episodes of ``family`` (episode indices ``start ..``) in the token rendering, from
    the seed domain ``domain`` ("train" or "heldout")."""
    from memgen.generators.build import build_program
    from memgen.generators.knobs import Knobs
    from memgen.generators.registry import get_family
    from memgen.ir.rng import Streams, derive_seed, episode_seeds
    from memgen.render.registry import Batch, RenderOptions, get_rendering

    render = RenderOptions(vocab=vocab or Vocab())
    plan = get_family(family)(Knobs(), length)
    seeds = episode_seeds(derive_seed(domain, seed, family), start, rows)
    v = render.vocab
    program = build_program(plan, Streams(seeds), v.key_space, v.key_tokens, v.values)
    ids = [f"{domain}-{family}-{length}-{i}" for i in range(start, start + rows)]
    batch = Batch(program=program, seeds=seeds, ids=ids, family=family, target_length=length)
    return get_rendering("token")(batch, render)


def check_families(families: tuple[str, ...], length: int, vocab: Vocab | None = None) -> None:
    """Raise UsageError for an unknown family or a length the token renderer cannot lay a
    family's episodes out in (its own check, one episode each).

    This is the renderer's check, not ``memgen generate``'s: generate also reserves a spare
    layout chunk, so it refuses ``version`` and ``mixed`` below 256 tokens, which render (and
    train) at 192."""
    from memgen.generators.registry import get_family

    if not families:
        raise UsageError("--family: give at least one")
    if length < 64:  # generate's floor: one layout chunk
        raise UsageError(f"--length {length} is too short: use at least 64 tokens")
    for f in families:
        get_family(f)
        episode_table(f, length, 0, 1, 0, "heldout", vocab)


def token_data(table: pa.Table) -> TokenData:
    """The arrays of a token-rendered table (every row the same length)."""
    col = table.column("input_ids").combine_chunks()
    B = table.num_rows
    ids = col.flatten().to_numpy(zero_copy_only=False).astype(np.int64).reshape(B, -1)
    T = ids.shape[1]
    q_list = table.column("queries").combine_chunks()
    q = q_list.flatten()
    q_row = pc.list_parent_indices(q_list).to_numpy().astype(np.int64)
    q_slot = q.field("end").to_numpy(zero_copy_only=False).astype(np.int64) - 1
    q_class = q.field("answer").to_numpy(zero_copy_only=False).astype(np.int64) + 1
    probe_names = q.field("probe").to_numpy(zero_copy_only=False)
    lookup = {p: i for i, p in enumerate(PROBES)}
    q_probe = np.array([lookup[p] for p in probe_names], dtype=np.int64)
    e_list = table.column("events").combine_chunks()
    e = e_list.flatten()
    e_row = pc.list_parent_indices(e_list).to_numpy().astype(np.int64)
    op_names = e.field("op").to_numpy(zero_copy_only=False)
    op_code = {o: i for i, o in enumerate(OPS)}
    op = np.array([op_code[o] for o in op_names], dtype=np.int64)
    end = e.field("end").to_numpy(zero_copy_only=False).astype(np.int64)
    write = np.zeros((B, T), np.float32)
    discard = np.zeros((B, T), np.float32)
    w = np.isin(op, (OP_WRITE, OP_OVERWRITE, OP_SILENT_WRITE))
    write[e_row[w], end[w] - 1] = 1.0  # the value token
    dl = (op == OP_DELETE) & (end < T)
    discard[e_row[dl], end[dl]] = 1.0  # the token after the deleted key
    return TokenData(ids, q_row, q_slot, q_class, q_probe, write, discard)


def concat(parts: list[TokenData]) -> TokenData:
    rows = np.cumsum([0] + [p.ids.shape[0] for p in parts])
    return TokenData(np.concatenate([p.ids for p in parts]),
                     np.concatenate([p.q_row + r for p, r in zip(parts, rows, strict=False)]),
                     *(np.concatenate([getattr(p, f) for p in parts])
                       for f in ("q_slot", "q_class", "q_probe", "write_label", "discard_label")))


def take_rows(d: TokenData, lo: int, hi: int) -> TokenData:
    """Rows ``lo:hi`` of ``d`` and their queries."""
    q = (d.q_row >= lo) & (d.q_row < hi)
    return TokenData(d.ids[lo:hi], d.q_row[q] - lo, d.q_slot[q], d.q_class[q], d.q_probe[q],
                     d.write_label[lo:hi], d.discard_label[lo:hi])


#: steps of episodes generated at once per family (one renderer call: its overhead is per call)
BLOCK_STEPS = 16


def training_batches(cfg: TrainConfig, vocab: Vocab):
    """Every step's batch, in order: ``cfg.batch`` episodes spread over the families; family f's
    episodes are its "train" episodes 0, 1, 2, ... (never repeated), generated
    ``BLOCK_STEPS`` steps at a time."""
    n = len(cfg.families)
    per = [cfg.batch // n + (i < cfg.batch % n) for i in range(n)]
    block = 0
    while True:
        tables = [token_data(episode_table(f, cfg.length, block * BLOCK_STEPS * k, BLOCK_STEPS * k, cfg.seed,
                                           "train", vocab)) if k else None
                  for f, k in zip(cfg.families, per, strict=True)]
        for j in range(BLOCK_STEPS):
            yield concat([take_rows(t, j * k, (j + 1) * k) for t, k in zip(tables, per, strict=True) if k])
        block += 1


def heldout_set(length: int, per_probe: int, seed: int, vocab: Vocab,
                families: tuple[str, ...] = ALL_FAMILIES) -> tuple[TokenData, np.ndarray]:
    """The held-out episodes and a (Q,) bool selecting the first ``per_probe`` queries of each
    probe (fewer where the families hold fewer), from the "heldout" seed domain."""
    parts, have = [], np.zeros(len(PROBES), np.int64)
    start = 0
    # stop once every probe the families produce has per_probe queries (a family may produce few)
    while (not have.any() or (have[have > 0] < per_probe).any()) and start < 64 * per_probe:
        for fam in families:
            d = token_data(episode_table(fam, length, start, 16, seed, "heldout", vocab))
            parts.append(d)
            have += np.bincount(d.q_probe, minlength=len(PROBES))
        start += 16
    data = concat(parts)
    keep = np.zeros(data.q_probe.size, bool)
    for p in range(len(PROBES)):
        keep[np.flatnonzero(data.q_probe == p)[:per_probe]] = True
    return data, keep


# ---- the models that train: a name -> a loader of its memory class.  The built-in memories are
# listed by memgen.evaluation.zoo (it sits above baselines/ and memslot_ref/, which import this
# folder); a user's memory is named on the command line as package.module:Class.
MEMORIES: dict[str, Callable[[], type]] = {}


def register_memory(name: str, loader: Callable[[], type]) -> None:
    """Make ``name`` train and evaluate with the memory class ``loader()`` returns (a loader, so
    that torch is imported only when a learned model is used)."""
    MEMORIES[name] = loader


def memory_class(model: str) -> type:
    """The memory class of a learned model name, or of ``package.module:Class`` (a user's module,
    named on the command line by the user; never a name read from a file)."""
    if model in MEMORIES:
        return MEMORIES[model]()
    if ":" in model:
        import importlib

        mod, _, cls = model.partition(":")
        fla = mod.split(".")[0] == "fla"
        try:
            obj = getattr(importlib.import_module(mod), cls)
        except (ImportError, AttributeError) as e:
            hint = "; flash-linear-attention: pip install flash-linear-attention (a CUDA GPU only)" if fla else ""
            raise UsageError(f"--model {model}: cannot import it ({e}){hint}") from None
        import torch

        from memgen.models.mixer import is_mixer, mixer_memory

        if not (isinstance(obj, type) and issubclass(obj, torch.nn.Module)):
            raise UsageError(f"--model {model}: not a torch.nn.Module class")
        if fla and not torch.cuda.is_available():
            raise UsageError(f"--model {model}: flash-linear-attention layers run on a CUDA GPU; "
                             "torch sees none here")
        if is_mixer(obj):
            return mixer_memory(obj)
        for need in ("initial_state", "forward"):
            if not hasattr(obj, need):
                raise UsageError(f"--model {model}: a memory needs {need}(), or a mixer a hidden_size "
                                 "argument (docs/models.md)")
        return obj
    raise UsageError(f"--model {model}: not a learned model; choose from {', '.join(MEMORIES)} "
                     "or give package.module:Class")


def build(model: str, knobs: dict, frontend: dict, vocab: Vocab):
    """A fresh :class:`~memgen.models.frontend.LearnedModel` with the memory ``model``."""
    from memgen.models.frontend import FrontEndConfig, LearnedModel

    cls = memory_class(model)
    try:
        fcfg = FrontEndConfig(vocab=vocab, **frontend)
        memory = cls(fcfg, **knobs)
        return LearnedModel(fcfg, memory)
    except TypeError as e:
        raise UsageError(f"--model {model}: bad knobs {knobs} ({e})") from None
    except ValueError as e:  # a ceiling (docs/models.md) or an impossible combination
        raise UsageError(f"--model {model}: {e}") from None


def _tensors(d: TokenData, device):
    import torch

    ids = torch.as_tensor(d.ids, device=device)
    read = torch.zeros(ids.shape, dtype=torch.bool, device=device)
    read[d.q_row, d.q_slot] = True
    return ids, read


def query_logits(net, d: TokenData, device="cpu", chunk: int | None = None):
    """(Q, 1 + values) logits of every query of ``d``; ``chunk``: process in chunks with the state
    carried (eval mode), else one pass in the module's current mode."""
    import torch

    ids, read = _tensors(d, device)
    if chunk:
        out = net.run_chunked(ids, read, chunk)
    else:
        out, _, _ = net(ids, read)
    q_row, q_slot = torch.as_tensor(d.q_row, device=device), torch.as_tensor(d.q_slot, device=device)
    return net.front.logits(out[q_row, q_slot])


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when torch sees a GPU, else "cpu"; "cpu" and "cuda" as given."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device must be auto, cpu or cuda (got {device!r})")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: torch sees no CUDA GPU here")
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def accuracy_per_probe(net, d: TokenData, keep: np.ndarray) -> dict[str, float]:
    """Held-out accuracy per probe (and "all"), the model in eval mode (its inference form), on
    the device its weights are on."""
    import torch

    was = net.training
    net.eval()
    with torch.inference_mode():
        device = next(net.parameters()).device
        pred = query_logits(net, d, device, chunk=d.ids.shape[1]).argmax(-1).cpu().numpy()
    net.train(was)
    right = (pred == d.q_class) & keep
    acc = {p: float(right[d.q_probe == i].sum() / max(1, (keep & (d.q_probe == i)).sum()))
           for i, p in enumerate(PROBES) if (keep & (d.q_probe == i)).any()}
    acc["all"] = float(right.sum() / max(1, keep.sum()))
    acc["correct"] = int(right.sum())
    acc["n"] = int(keep.sum())
    return acc


def train_step(net, opt, d: TokenData, supervised: bool, device="cpu") -> float:
    """One optimiser step on the batch ``d``: the answer loss (plus the memory's ``aux_loss``),
    gradients clipped at norm 1.  Returns the loss."""
    import torch

    from memgen.models.frontend import answer_loss

    ids, read = _tensors(d, device)
    out, f, _ = net(ids, read)
    on = lambda x: torch.as_tensor(x, device=device)  # noqa: E731
    logits = net.front.logits(out[on(d.q_row), on(d.q_slot)])
    loss = answer_loss(logits, on(d.q_class))
    if hasattr(net.memory, "aux_loss"):
        loss = loss + net.memory.aux_loss(f, on(d.write_label), on(d.discard_label), supervised)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    return float(loss.detach())


@dataclass
class TrainResult:
    net: object
    config: TrainConfig
    curve: list[dict]
    steps: int
    seconds: float
    tokens_per_second: float
    parameters: int


def train(cfg: TrainConfig, on_progress: Callable[[dict], None] | None = None,
          vocab: Vocab | None = None) -> TrainResult:
    """Train ``cfg.model`` for ``cfg.minutes`` (or ``cfg.steps``); ``on_progress(entry)`` after
    every step (entry: step, seconds, loss, and, at held-out evaluations, ``accuracy``)."""
    import torch

    from memgen.models.frontend import parameter_count

    if cfg.write_supervision not in WRITE_SUPERVISION:
        raise UsageError(f"--write-supervision must be one of {', '.join(WRITE_SUPERVISION)}")
    if cfg.minutes <= 0 and cfg.steps <= 0:
        raise UsageError("give --minutes or --steps (> 0)")
    for knob, (lo, hi) in TRAIN_CEILINGS.items():
        v = getattr(cfg, knob)
        if not lo <= v <= hi:
            raise UsageError(f"--{knob.replace('_', '-')} must be {lo:,} to {hi:,} (got {v:,})")
    vocab = vocab or Vocab()
    check_families(cfg.families, cfg.length, vocab)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    net = build(cfg.model, cfg.knobs, cfg.frontend, vocab).to(device)
    heldout, keep = heldout_set(cfg.length, cfg.heldout_per_probe, cfg.seed, vocab, cfg.families)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.0)
    supervised = cfg.write_supervision == "lite"
    budget = cfg.minutes * 60 if cfg.minutes > 0 else math.inf
    curve: list[dict] = []
    t0 = time.perf_counter()
    last_eval, step, tokens, loss_avg = -math.inf, 0, 0, None
    net.train()
    batches = training_batches(cfg, vocab)
    while True:
        elapsed = time.perf_counter() - t0
        frac = max(elapsed / budget, step / cfg.steps if cfg.steps else 0.0)
        done = frac >= 1.0
        if done or elapsed - last_eval >= cfg.eval_every:
            acc = accuracy_per_probe(net, heldout, keep)
            entry = {"step": step, "seconds": round(elapsed, 2), "loss": loss_avg, "accuracy": acc}
            curve.append(entry)
            last_eval = time.perf_counter() - t0
            if on_progress:
                on_progress({**entry, "fraction": min(frac, 1.0)})
            if done:
                break
        lr = cfg.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
        for g in opt.param_groups:
            g["lr"] = lr
        d = next(batches)
        lv = train_step(net, opt, d, supervised, device)
        step += 1
        tokens += d.ids.size
        loss_avg = lv if loss_avg is None else 0.95 * loss_avg + 0.05 * lv
        if on_progress:
            on_progress({"step": step, "seconds": round(time.perf_counter() - t0, 2), "loss": loss_avg,
                         "fraction": min(frac, 1.0)})
    seconds = time.perf_counter() - t0
    net.eval()
    return TrainResult(net, cfg, curve, step, seconds, tokens / max(seconds, 1e-9), parameter_count(net))
