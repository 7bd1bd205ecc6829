"""A local Hugging Face transformers model as a runner: greedy, batched generation.

Needs torch and transformers (``pip install 'memgen-bench[lmeval]'``).  The model is loaded from a
local folder only (``local_files_only``): nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from memgen.format.errors import DataError, UsageError
from memgen.harness.runners import (
    MAX_NEW_TOKENS,
    Prompt,
    Reply,
    check_max_model_len,
    cut_at_stop,
    default_max_new_tokens,
    fit_or_overflow,
)


class HFRunner:
    """Greedy generation with a causal LM from the folder ``path``.

    ``chat``: wrap each prompt in the tokenizer's chat template as one user message (``None``:
    when the tokenizer has a template).  ``max_new_tokens``: per batch, default
    :func:`default_max_new_tokens` of the batch's most questions.  ``stop``: strings at which
    the reply is cut.  ``max_model_len``: tokens a prompt (as the model reads it, chat template
    included) plus its reply budget may take [default: the model's ``max_position_embeddings``];
    longer ones are ``overflow``.  Raises :class:`UsageError` with one line for a folder that
    holds no loadable model or tokenizer, or when torch/transformers are not installed."""

    def __init__(self, path: str | Path, *, device: str = "auto", dtype: str = "auto", batch_size: int = 8,
                 max_new_tokens: int | None = None, chat: bool | None = None, stop: Sequence[str] = (),
                 max_model_len: int | None = None):
        try:
            import torch
            import transformers
        except ImportError:
            raise UsageError("memgen run --hf needs torch and transformers: "
                             "pip install 'memgen-bench[lmeval]'") from None
        path = Path(path).expanduser()
        if not path.is_dir():
            raise UsageError(f"--hf {path}: no such folder (give a local transformers model folder)")
        if not (path / "config.json").is_file():
            raise UsageError(f"--hf {path}: not a transformers model folder (no config.json)")
        if batch_size < 1:
            raise UsageError("--batch-size must be at least 1")
        if max_new_tokens is not None and not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
            raise UsageError(f"--max-new-tokens must be within 1..{MAX_NEW_TOKENS:,}")
        check_max_model_len(max_model_len)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtypes = {"auto": torch.bfloat16 if device.startswith("cuda") else torch.float32,
                  "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
        if dtype not in dtypes:
            raise UsageError(f"--dtype {dtype!r}: choose {', '.join(dtypes)}")
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()  # the weight-loading bar; memgen shows its own
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.model = transformers.AutoModelForCausalLM.from_pretrained(
                path, local_files_only=True, dtype=dtypes[dtype]).to(device).eval()
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UsageError(f"--hf {path}: cannot load a model and tokenizer ({first})") from None
        self.torch = torch
        self.name = f"hf:{path.resolve().name}"
        self.device = device
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.stop = tuple(stop)
        tok = self.tokenizer
        tok.padding_side = "left"  # generation continues from the right end of every row
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.convert_ids_to_tokens(0)
        self.chat = bool(getattr(tok, "chat_template", None)) if chat is None else chat
        if self.chat and not getattr(tok, "chat_template", None):
            raise UsageError(f"--chat: the tokenizer in {path} has no chat template")
        self.context = getattr(self.model.config, "max_position_embeddings", None)
        limits = [n for n in (max_model_len, self.context) if n]
        self.max_model_len = min(limits) if limits else None

    def _texts(self, prompts: Sequence[Prompt]) -> tuple[list[str], bool]:
        """(the texts the model reads, whether the tokenizer adds its special tokens)."""
        tok = self.tokenizer
        if self.chat:
            return [tok.apply_chat_template([{"role": "user", "content": p.text}], add_generation_prompt=True,
                                            tokenize=False) for p in prompts], False
        return [p.text for p in prompts], True

    def _encode(self, prompts: Sequence[Prompt]):
        texts, special = self._texts(prompts)
        return self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=special)

    def count(self, p: Prompt) -> int:
        """Tokens of ``p`` as the model reads it (chat template and special tokens included)."""
        texts, special = self._texts([p])
        return len(self.tokenizer(texts[0], add_special_tokens=special)["input_ids"])

    def _budget(self, p: Prompt) -> int:
        return self.max_new_tokens or default_max_new_tokens(p.n_questions)

    def answer(self, prompts: Sequence[Prompt]) -> list[str]:
        """The model's reply to each prompt (one batch), cut at the stop strings."""
        enc = self._encode(prompts)
        new = max(self._budget(p) for p in prompts)
        longest = int(enc["attention_mask"].sum(1).max())
        if self.max_model_len and longest + new > self.max_model_len:
            # every row fits with its own budget (run() checked); a batch shares the largest, so
            # it is cut to what the longest row leaves
            new = self.max_model_len - longest
            if new < min(self._budget(p) for p in prompts):
                p = prompts[int(enc["attention_mask"].sum(1).argmax())]
                raise DataError(f"{p.config}/{p.id}: a prompt of {longest} tokens exceeds the {self.max_model_len}"
                                "-token context with its reply; use a shorter dataset or --max-new-tokens")
        enc = {k: v.to(self.device) for k, v in enc.items()}
        with self.torch.no_grad():
            out = self.model.generate(**enc, max_new_tokens=new, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id)
        replies = self.tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        return [cut_at_stop(r, self.stop) for r in replies]

    def run(self, prompts: Sequence[Prompt], write: Callable[[Prompt, Reply], None],
            advance: Callable[[int], None] = lambda n: None) -> None:
        """Answer ``prompts`` in batches of similar length (longest first, so a batch that does
        not fit in memory fails at once) and ``write`` each answer as its batch finishes; a
        prompt over ``max_model_len`` is written as ``overflow`` and never run."""
        prompts, over = fit_or_overflow(prompts, self.count, self._budget, self.max_model_len)
        for p, failed in over:
            write(p, failed)
            advance(1)
        lengths = [len(p.text) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
        for b in range(0, len(order), self.batch_size):
            batch = [prompts[i] for i in order[b:b + self.batch_size]]
            for p, reply in zip(batch, self.answer(batch), strict=True):
                write(p, reply)
            advance(len(batch))
