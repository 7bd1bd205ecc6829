"""Running an LLM on the text rendering: prompts in, a predictions file out (docs/ecosystem.md).

A runner answers episode prompts (every question of an episode in one prompt, answered as
``<number>: <answer>`` lines).  :class:`PredictionLog` is the output file: JSONL rows
``{"id", "config", "model", "answer_block"}`` that ``memgen score`` reads as answer blocks.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from memgen.format.errors import DataError, UsageError
from memgen.harness.text_dataset import iter_episodes, open_text_dataset
from memgen.io.atomic import output_file


@dataclass(frozen=True)
class Prompt:
    """One episode to ask: its id, config, prompt text and number of questions."""

    id: str
    config: str
    text: str
    n_questions: int


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

    ``done`` holds the ids already answered.  Raises :class:`UsageError` if the file holds
    answers of another model, :class:`DataError` if a line other than the last is not a JSON
    row with ``id`` and ``answer_block``."""

    def __init__(self, path: str | Path, model: str):
        self.path = Path(path)
        self.model = model
        self.done: set[str] = set()
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

    def write(self, prompt: Prompt, answer_block: str) -> None:
        """Append one row (one ``write`` of one complete line) and mark the episode done."""
        line = json.dumps({"id": prompt.id, "config": prompt.config, "model": self.model,
                           "answer_block": answer_block}, ensure_ascii=False) + "\n"
        data = line.encode("utf-8")
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

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
