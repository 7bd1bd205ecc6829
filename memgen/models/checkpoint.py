"""Checkpoints of learned models: plain tensors and JSON text, never pickled code.

A checkpoint is one file written by ``torch.save`` of a dict holding only strings, integers and
tensors, and read back with ``torch.load(weights_only=True)``, which refuses anything else::

    {"format": "memgen-learned", "format_version": 1, "model": "memslot_ref",
     "meta": "<JSON: front end, memory knobs, training config, command, seeds, parameters,
              curve, memgen version>",
     "weights_sha256": "<sha256 over every tensor's name, dtype, shape and bytes>",
     "state_dict": {name: tensor}}

Beside it, ``<name>.json`` (the same meta plus the file's sha256) and ``<name>.png`` (held-out
accuracy per probe against steps).  A file that is not such a dict, a checkpoint of another
model or format version, or one whose tensors do not hash to ``weights_sha256`` is refused with
one line (:class:`~memgen.format.errors.DataError` or :class:`UsageError`).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import torch

from memgen.format.errors import DataError, UsageError
from memgen.io.atomic import atomic_write_bytes, atomic_write_text, output_file, sha256_file

FORMAT = "memgen-learned"
FORMAT_VERSION = 1
#: ceiling on a checkpoint's size (the shipped ones are well under 2 MB)
MAX_BYTES = 256 << 20


def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save(path: str | Path, model: str, state: dict[str, torch.Tensor], meta: dict) -> dict:
    """Write the checkpoint, its ``.json`` sidecar; returns the sidecar's dict (meta + sha256)."""
    path = output_file(path)
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    blob = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model,
            "meta": json.dumps(meta, sort_keys=True), "weights_sha256": weights_sha256(state),
            "state_dict": state}
    buf = io.BytesIO()
    torch.save(blob, buf)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.getvalue())
    except OSError as e:
        raise UsageError(f"--out {path}: cannot write there ({e.strerror or e})") from None
    side = {**meta, "model": model, "file": path.name, "sha256": sha256_file(path),
            "weights_sha256": blob["weights_sha256"], "bytes": path.stat().st_size}
    atomic_write_text(path.with_suffix(".json"), json.dumps(side, indent=1, sort_keys=True) + "\n")
    return side


def load(path: str | Path, model: str | None = None) -> tuple[str, dict, dict[str, torch.Tensor]]:
    """(model name, meta, state_dict) of the checkpoint at ``path``, checked: its format and
    version, that it is a checkpoint of ``model`` (when given), and its weights' sha256."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"--checkpoint {path}: no such file")
    if path.stat().st_size > MAX_BYTES:
        raise DataError(f"{path}: {path.stat().st_size:,} bytes is larger than a checkpoint can be ({MAX_BYTES:,})")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file; every one is a bad file
        raise DataError(f"{path}: not a readable memgen checkpoint (corrupted or truncated?): "
                        f"{type(e).__name__}") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise DataError(f"{path}: not a memgen learned-model checkpoint")
    if blob.get("format_version") != FORMAT_VERSION:
        raise DataError(f"{path}: checkpoint format version {blob.get('format_version')!r}; this memgen "
                        f"reads version {FORMAT_VERSION}: retrain it with this memgen (memgen train)")
    name = blob.get("model")
    if model is not None and name != model:
        raise UsageError(f"{path}: a checkpoint of {name!r}, not of {model!r}")
    state = blob.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"{path}: its state_dict is not a dict of tensors")
    if weights_sha256(state) != blob.get("weights_sha256"):
        raise DataError(f"{path}: its weights do not match their recorded sha256 (corrupted)")
    try:
        meta = json.loads(blob["meta"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{path}: its meta is not JSON") from None
    return name, meta, state


def plot_curve(curve: list[dict], path: Path, title: str) -> None:
    """PNG of held-out accuracy per probe (and pooled) against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from memgen.format.codes import PROBES

    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [e["step"] for e in curve]
    for p in (*PROBES, "all"):
        ys = [e["accuracy"].get(p) for e in curve]
        if any(y is not None for y in ys):
            ax.plot(steps, ys, label=p, lw=2.5 if p == "all" else 1.2, color="black" if p == "all" else None)
    ax.set_xlabel("step")
    ax.set_ylabel("held-out accuracy")
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
