"""Selected-context prompts: the text rendering's prompt with only the passages a selector keeps
(``memgen run --select bm25:k=8``, ``memgen export --select ...``), so that full context and
retrieval are compared on the same episodes by the same scorer.

An episode's prompt asks all of its questions at once, so the context kept is the union, over
its questions, of each one's top ``k`` passages (at most ``k`` x questions), plus every passage
holding a question asked inside the context (it is asked where it stands), in reading order.
A passage that does not follow the one before it starts a paragraph of its own.  The
instructions before the context and the questions after it are the prompt's own, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from memgen.format.errors import DataError
from memgen.harness.runners import Prompt
from memgen.harness.text_dataset import TextEpisode, iter_episodes, open_text_dataset
from memgen.io.dataset import Dataset
from memgen.selection.episodes import SelectionEpisode, check_config, iter_selection_episodes
from memgen.selection.metrics import rank
from memgen.selection.registry import Selector, check_rendering, parse_select


def kept_passages(ep: SelectionEpisode, sel: Selector) -> list[int]:
    """The passages a selected-context prompt keeps, in reading order."""
    r = rank(sel.scores(ep), ep.before)
    keep = {int(p) for q in range(ep.n_queries) for p in r.top(q, sel.k)}
    off = np.asarray(ep.row["passages"], dtype=np.int64)
    starts = [q["start"] for q in ep.row["queries"] if q["start"] >= 0]
    keep |= set(np.searchsorted(off[1:-1], starts, side="right").tolist())
    return sorted(keep)


def selected_context(ep: SelectionEpisode, sel: Selector) -> str:
    """The context with only the passages :func:`kept_passages` keeps."""
    ctx, off = ep.row["context"], ep.row["passages"]
    pieces, last = [], None
    for p in kept_passages(ep, sel):
        text = ctx[off[p]:off[p + 1]]
        if last is not None and p != last + 1:
            text = "\n\n" + text.lstrip()
        pieces.append(text)
        last = p
    return "".join(pieces).lstrip()


def selected_prompt(ep: SelectionEpisode, sel: Selector) -> str:
    """``ep``'s prompt with its context cut to the selected passages."""
    row = ep.row
    head, tail = row.get("prompt_head"), row.get("prompt_tail")
    if head is None or tail is None:
        prompt, ctx = row["prompt"], row["context"]
        cut = prompt.find(ctx)
        if cut < 0:
            raise DataError(f"{ep.config}/{ep.id}: its prompt does not hold its context")
        head, tail = prompt[:cut], prompt[cut + len(ctx):]
    return head + selected_context(ep, sel) + tail


def _selector(spec: str | Selector, ds: Dataset, config: str) -> Selector:
    sel = parse_select(spec) if isinstance(spec, str) else spec
    check_rendering(sel, ds.config(config)["rendering"], config)
    check_config(ds, config)
    return sel


def selected_episodes(ds: Dataset, config: str, spec: str | Selector) -> Iterator[TextEpisode]:
    """:func:`memgen.harness.text_dataset.iter_episodes` with each prompt cut to the passages
    that ``spec`` selects (same episodes, same order, same answers)."""
    sel = _selector(spec, ds, config)
    for ep, sep in zip(iter_episodes(ds, config), iter_selection_episodes(ds, config), strict=True):
        if ep.id != sep.id:
            raise DataError(f"{config}: episode {ep.id} read as {sep.id}; the dataset changed while read")
        yield replace(ep, prompt=selected_prompt(sep, sel))


def selected_prompts(dataset: str | Path, configs: Sequence[str] | None, spec: str | Selector
                     ) -> tuple[list[Prompt], list[str]]:
    """:func:`memgen.harness.runners.load_prompts` with selected contexts: (prompts, configs
    left out).  UsageError for a bad spec, or a text config generated without passages."""
    ds, text, other = open_text_dataset(dataset, configs)
    prompts = [Prompt(ep.id, ep.config, ep.prompt, len(ep.answers))
               for c in text for ep in selected_episodes(ds, c, spec)]
    return prompts, other
