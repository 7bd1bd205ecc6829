"""A tiny Hugging Face Llama model built and saved locally, for offline ecosystem tests.

The model is randomly initialised, then every attention and MLP output projection is zeroed, so
the residual stream at each position is the current token's embedding and the next-token logits
depend on the current token alone (a bigram model).  The language-model head is then set so that
greedy decoding after the last token of any memgen prompt writes ``ANSWER`` and stops: a real
transformers model, run by the real lm-eval, HF and OpenAI-compatible paths, whose output is known
in advance.  Its tokenizer is a byte-level BPE trained here with ``tokenizers`` on memgen text.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

#: what the model answers to every prompt: question 1 is "unknown", the others are not answered
ANSWER = "1: unknown"
SPECIALS = ("<pad>", "<s>", "</s>")


def train_tokenizer(texts: Iterable[str], vocab_size: int = 640):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts`` (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   padding_side="left")


def build_tiny_llama(out: Path, texts: list[str], prompt_ends: Iterable[str], seed: int = 0) -> Path:
    """Save a tiny bigram Llama and its tokenizer to ``out``; return ``out``.

    ``prompt_ends``: texts whose last token is where the answer starts (the tail of every
    prompt the tests will send).  Raises AssertionError if the answer's tokens and those last
    tokens are not all distinct (the bigram chain would then be ambiguous)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_tokenizer(texts)
    starts = sorted({tokenizer(t, add_special_tokens=False)["input_ids"][-1] for t in prompt_ends})
    answer = tokenizer(ANSWER, add_special_tokens=False)["input_ids"]
    chain = [*answer, tokenizer.eos_token_id]
    assert len(set(chain)) == len(chain) and not set(starts) & set(chain), (starts, chain)

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=8192,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb = model.model.embed_tokens.weight  # (V, d)
        head = model.lm_head.weight  # (V, d)
        head.normal_(0.0, 0.02)
        d = emb.shape[1]
        normed = emb / emb.pow(2).mean(-1, keepdim=True).add(cfg.rms_norm_eps).sqrt()  # what the final norm gives
        for a, b in [*((s, chain[0]) for s in starts), *zip(chain[:-1], chain[1:], strict=True)]:
            head[b] += 10.0 * normed[a] / d  # logit of b after a: 10; every other logit stays ~N(0, 1.3)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
