"""The one reader of text datasets for the harnesses: open a folder that passes ``memgen
verify``, pick its text configs, and iterate its episodes (context, prompt, questions, gold
answer texts), as the exports and the LLM runners read them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from memgen.format.errors import UsageError
from memgen.io.dataset import Dataset, open_verified

#: the renderings whose rows carry a natural-language ``prompt``
TEXT_RENDERINGS = ("text",)


@dataclass(frozen=True)
class TextEpisode:
    """One text episode, ready to be asked: ``prompt`` holds every question; ``answers`` the
    gold answer text of question 1, 2, ... (``"unknown"`` when the key has no value)."""

    id: str
    config: str
    family: str
    target_length: int
    prompt: str
    answers: tuple[str, ...]
    qids: tuple[int, ...]
    probes: tuple[str, ...]
    asks: tuple[str, ...]
    questions: tuple[str, ...]
    inline: tuple[bool, ...]
    #: the template domain the episode was rendered in (its type words, e.g. "flight", are
    #: dropped from answers by the strict scorer)
    domain: str | None = None

    @property
    def target(self) -> str:
        """The gold answer block, in the format the prompt asks for."""
        return answer_block(self.answers)


def answer_block(answers: Sequence[str]) -> str:
    """``"1: a\\n2: b"``: answers in the ``<number>: <answer>`` lines the prompts ask for."""
    return "\n".join(f"{n}: {a}" for n, a in enumerate(answers, start=1))


def open_text_dataset(root: str | Path, configs: Sequence[str] | None = None) -> tuple[Dataset, list[str], list[str]]:
    """(dataset, text configs to use, non-text configs left out) of the folder ``root``.

    Raises :class:`DataError` if the folder fails ``memgen verify``; :class:`UsageError` for a
    config it does not have, a named config that is not a text rendering, or a folder with no
    text config at all."""
    root = Path(root)
    ds = open_verified(root)
    names = list(configs) if configs else ds.configs
    for name in names:
        ds.config(name)  # UsageError naming the configs it has
    text = [n for n in names if ds.config(n)["rendering"] in TEXT_RENDERINGS]
    other = [n for n in names if n not in text]
    if configs and other:
        raise UsageError(f"--config {other[0]}: a {ds.config(other[0])['rendering']} rendering; only text "
                         "configs have prompts (memgen generate --rendering text)")
    if not text:
        raise UsageError(f"{root}: no text config (it has {', '.join(ds.configs)}); prompts come from the text "
                         "rendering: memgen generate --rendering text ...")
    return ds, text, other


def iter_episodes(ds: Dataset, config: str) -> Iterator[TextEpisode]:
    """The episodes of ``config`` in dataset order, one shard in memory at a time."""
    cfg = ds.config(config)
    for table in ds.iter_tables(config):
        cols = table.select(["id", "family", "target_length", "prompt", "questions", "queries", "domain"]).to_pydict()
        for i in range(table.num_rows):
            qs = cols["queries"][i]
            yield TextEpisode(
                id=cols["id"][i], config=config, family=cols["family"][i] or cfg["family"],
                target_length=int(cols["target_length"][i]), prompt=cols["prompt"][i],
                answers=tuple(q["answer_text"] for q in qs), qids=tuple(int(q["qid"]) for q in qs),
                probes=tuple(q["probe"] for q in qs), asks=tuple(q["ask"] for q in qs),
                questions=tuple(cols["questions"][i]), inline=tuple(q["start"] >= 0 for q in qs),
                domain=cols["domain"][i])
