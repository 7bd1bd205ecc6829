"""Running an LLM on the text rendering: prompts in, a predictions file out (docs/ecosystem.md).

A runner answers episode prompts (every question of an episode in one prompt, answered as
``<number>: <answer>`` lines).  :class:`PredictionLog` is the output file: JSONL rows
``{"id", "config", "model", "answer_block"}`` that ``memgen score`` reads as answer blocks.  An
episode the model never answered is a row of its own, ``{"id", "config", "model",
"answer_block": null, "outcome", "detail"}``, with ``outcome`` ``overflow`` (its prompt plus the
reply budget does not fit ``--max-model-len`` or the model's context) or ``refused`` (the server
turned the request down); the run goes on.

The log is resumable and line-atomic: each row is one ``write`` of one complete line to a file
opened for appending, rows already in the file are kept and their episodes skipped on a rerun,
and an incomplete last line (a run killed mid-write) is cut off when the log is reopened.  The
file is created only when the first answer arrives, so a run that fails before any answer
leaves nothing behind.

Runners: :mod:`memgen.harness.runners.hf` (a local transformers model, batched) and
:mod:`memgen.harness.runners.openai` (any OpenAI-compatible server, concurrent, with retries).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from memgen.format.codes import RUN_OUTCOMES
from memgen.format.errors import DataError, UsageError
from memgen.harness.text_dataset import iter_episodes, open_text_dataset
from memgen.io.atomic import output_file

#: the longest context ``--max-model-len`` may name (tokens)
MAX_MODEL_LEN = 1 << 24
#: the largest reply budget ``--max-new-tokens`` may name (tokens)
MAX_NEW_TOKENS = 1 << 20


@dataclass(frozen=True)
class Prompt:
    """One episode to ask: its id, config, prompt text and number of questions."""

    id: str
    config: str
    text: str
    n_questions: int


@dataclass(frozen=True)
class Failed:
    """An episode the model gave no answer for: ``outcome`` is ``overflow`` or ``refused``;
    ``detail`` says why, in one line."""

    outcome: str
    detail: str

    def __post_init__(self) -> None:
        if self.outcome not in RUN_OUTCOMES:
            raise ValueError(f"a run outcome is one of {RUN_OUTCOMES}, not {self.outcome!r}")


Reply = str | Failed


def fit_or_overflow(prompts: Sequence[Prompt], count: Callable[[Prompt], int], budget: Callable[[Prompt], int],
                    limit: int | None) -> tuple[list[Prompt], list[tuple[Prompt, Failed]]]:
    """(prompts whose tokens plus reply budget fit in ``limit``, the others as ``overflow``);
    every prompt fits when ``limit`` is None."""
    if limit is None:
        return list(prompts), []
    fit, over = [], []
    for p in prompts:
        n, new = count(p), budget(p)
        if n + new <= limit:
            fit.append(p)
        else:
            over.append((p, Failed("overflow", f"a prompt of {n:,} tokens plus {new:,} new ones exceeds the "
                                               f"{limit:,}-token context")))
    return fit, over


def check_max_model_len(n: int | None) -> int | None:
    """``--max-model-len`` checked: None or 1..``MAX_MODEL_LEN``."""
    if n is not None and not 1 <= n <= MAX_MODEL_LEN:
        raise UsageError(f"--max-model-len must be within 1..{MAX_MODEL_LEN:,}")
    return n


def dataset_tokenizer(dataset: str | Path) -> str:
    """The tokenizer the text rendering of ``dataset`` counted its lengths with (its name, or
    the path of a tokenizer.json), from the manifest's generation request."""
    from memgen.io.dataset import Dataset

    render = Dataset.open(dataset).manifest.get("config", {}).get("render", {})
    name = render.get("tokenizer") if isinstance(render, dict) else None
    if not isinstance(name, str) or not name:
        raise DataError(f"{dataset}/manifest.json: names no tokenizer; give --tokenizer")
    return name


def load_prompts(dataset: str | Path, configs: Sequence[str] | None = None) -> tuple[list[Prompt], list[str]]:
    """(prompts of every text episode, in dataset order; non-text configs left out)."""
    ds, text, other = open_text_dataset(dataset, configs)
    prompts = [Prompt(ep.id, ep.config, ep.prompt, len(ep.answers)) for c in text for ep in iter_episodes(ds, c)]
    return prompts, other


def default_max_new_tokens(n_questions: int) -> int:
    """Tokens allowed for an answer block of ``n_questions`` lines (16 a line, plus 32)."""
    return 16 * max(1, n_questions) + 32


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first stop string found after its first non-blank character."""
    lead = len(text) - len(text.lstrip())
    ends = [i for s in stop if s and (i := text.find(s, lead)) >= 0]
    return text[:min(ends)] if ends else text


class PredictionLog:
    """The predictions file of one model, opened for resuming.

    ``done`` holds the ids already answered (or recorded as ``overflow``/``refused``: a rerun
    skips them too); ``outcomes`` counts the rows of each outcome, ``answered`` the answers.
    Raises :class:`UsageError` if the file holds answers of another model, :class:`DataError`
    if a line other than the last is not a JSON row with ``id`` and ``answer_block``."""

    def __init__(self, path: str | Path, model: str):
        self.path = Path(path)
        self.model = model
        self.done: set[str] = set()
        self.outcomes: Counter[str] = Counter()
        self.details: dict[str, str] = {}  # the first detail of each outcome
        self.answered = 0
        self.repaired = 0  # bytes of an incomplete last line cut off
        self._fd: int | None = None
        if self.path.is_dir():
            raise UsageError(f"--out {self.path}: is a folder; give a file name (e.g. preds.jsonl)")
        output_file(self.path)
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        raw = self.path.read_bytes()
        complete = raw[:raw.rfind(b"\n") + 1]
        for n, line in enumerate(complete.split(b"\n")[:-1], start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise DataError(f"{self.path}:{n}: not a JSON line; move the file away or give another --out") \
                    from None
            if not isinstance(row, dict) or not isinstance(row.get("id"), str) or "answer_block" not in row:
                raise DataError(f"{self.path}:{n}: not a memgen run row (id, answer_block); give another --out")
            if row.get("model") != self.model:
                raise UsageError(f"--out {self.path}: holds answers of model {row.get('model')!r}, not "
                                 f"{self.model!r}; give another --out")
            self._count(row.get("outcome"), row.get("detail"))
            self.done.add(row["id"])
        if raw and not self.done:  # nothing of ours in it: never cut someone else's file
            raise UsageError(f"--out {self.path}: exists and holds no memgen run rows; give another --out")
        if len(complete) != len(raw):  # a run killed mid-line: drop the incomplete line
            self.repaired = len(raw) - len(complete)
            with open(self.path, "r+b") as f:
                f.truncate(len(complete))

    def todo(self, prompts: Iterable[Prompt]) -> list[Prompt]:
        """The prompts whose episode has no answer in the file yet."""
        return [p for p in prompts if p.id not in self.done]

    def _count(self, outcome: object, detail: object) -> None:
        if outcome in RUN_OUTCOMES:
            self.outcomes[outcome] += 1
            self.details.setdefault(outcome, str(detail))
        else:
            self.answered += 1

    def write(self, prompt: Prompt, reply: Reply) -> None:
        """Append one row (one ``write`` of one complete line) and mark the episode done: the
        answer block, or the outcome of an episode that got none."""
        row = {"id": prompt.id, "config": prompt.config, "model": self.model}
        if isinstance(reply, Failed):
            row |= {"answer_block": None, "outcome": reply.outcome, "detail": reply.detail}
        else:
            row["answer_block"] = reply
        # a reply may hold a lone surrogate (a server sent "\\ud800"): stored as "?", never a crash
        data = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8", "replace")
        if self._fd is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError as e:
                raise UsageError(f"--out {self.path}: cannot write there ({e.strerror or e})") from None
        written = os.write(self._fd, data)
        while written < len(data):  # a short write (a full disk): finish the line or fail loudly
            more = os.write(self._fd, data[written:])
            if more <= 0:
                raise DataError(f"{self.path}: short write")
            written += more
        self.done.add(prompt.id)
        self._count(row.get("outcome"), row.get("detail"))

    def summary(self) -> str:
        """``"3 answered, 1 overflow (why), 0 refused"``: the file's rows by outcome."""
        parts = [f"{self.answered} answered"]
        for o in RUN_OUTCOMES:
            if self.outcomes[o]:
                parts.append(f"{self.outcomes[o]} {o} (first: {self.details[o]})")
        return ", ".join(parts)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
