"""A tiny random BERT in all-MiniLM-L6-v2's file format (config.json, tokenizer.json,
model.safetensors), so the bridge's tests need no download."""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "is", "now", "note", "value", "of", "what", "bin", "code", "not", "set", "to"]


def write_tiny_bert(folder: Path, *, hidden: int = 32, layers: int = 2, heads: int = 4, seed: int = 0) -> Path:
    """Write a random BERT (``hidden`` dims, ``layers`` layers) and a word-piece tokenizer that
    covers all of ASCII into ``folder``; return ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = SPECIALS + WORDS + chars + ["##" + c for c in string.ascii_lowercase + string.digits]
    ids = {t: i for i, t in enumerate(vocab)}
    tok = Tokenizer(models.WordPiece(ids, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
    tok.decoder = decoders.WordPiece()
    tok.save(str(folder / "tokenizer.json"))
    config = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": len(vocab), "hidden_size": hidden,
              "num_hidden_layers": layers, "num_attention_heads": heads, "intermediate_size": 4 * hidden,
              "max_position_embeddings": 128, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu",
              "pad_token_id": 0, "position_embedding_type": "absolute"}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *shape: torch.randn(*shape, generator=g) * 0.2
    sd = {"embeddings.word_embeddings.weight": rnd(len(vocab), hidden),
          "embeddings.position_embeddings.weight": rnd(128, hidden),
          "embeddings.token_type_embeddings.weight": rnd(2, hidden),
          "embeddings.LayerNorm.weight": 1 + rnd(hidden), "embeddings.LayerNorm.bias": rnd(hidden)}
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for n in ("query", "key", "value"):
            sd[f"{p}attention.self.{n}.weight"], sd[f"{p}attention.self.{n}.bias"] = rnd(hidden, hidden), rnd(hidden)
        for n, (rows, cols) in {"attention.output.dense": (hidden, hidden), "intermediate.dense": (4 * hidden, hidden),
                                "output.dense": (hidden, 4 * hidden)}.items():
            sd[f"{p}{n}.weight"], sd[f"{p}{n}.bias"] = rnd(rows, cols), rnd(rows)
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            sd[f"{p}{n}.weight"], sd[f"{p}{n}.bias"] = 1 + rnd(hidden), rnd(hidden)
    save_file(sd, str(folder / "model.safetensors"))
    return folder
