"""The ``text`` rendering: each episode of a batch through :func:`memgen.render.text.episode.render_text`.

Columns: the common ones (events and queries carry character spans in ``context``; a question
asked after the context has span -1/-1; ``answer_text`` is the value's surface or "unknown";
``length`` is the real token count of ``prompt``), then ``context``, ``questions``, ``prompt``,
``tokenizer``, ``domain`` and ``passages``: with ``RenderOptions.passage_size`` (``--chunk-size``), the
context cut into passages (:mod:`memgen.render.text.passages`; the offsets, empty without), each
event's ``chunk`` its passage and each query's ``evidence`` the passages of its deciding events.

``RenderOptions.domain``: one domain, or several separated by commas; ``None`` means every
domain shipped with memgen.  With several, each episode's domain is picked by its own seed, so
a row's bytes do not depend on batching or worker count.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from memgen.format.codes import ITEM_PAD, ITEM_QUERY
from memgen.format.errors import UsageError
from memgen.ir.rng import mix64
from memgen.render.columns import common_columns
from memgen.render.registry import Batch, RenderOptions, register_rendering
from memgen.render.text.domain import TEMPLATE_ROOT, available_domains, load_domain
from memgen.render.text.episode import render_text
from memgen.render.text.passages import passage_of
from memgen.render.text.tokenizers import load_tokenizer

#: rough tokens of the instructions, and of one event or question, for the up-front check; the
#: exact check happens per episode (render_text raises UsageError with the real need)
_HEAD_TOKENS, _ITEM_TOKENS = 320, 24


def domains_for(opts: RenderOptions) -> list[str]:
    """The domains an episode may be rendered in (checked: each loads)."""
    if opts.domain:
        names = [d.strip() for d in str(opts.domain).split(",") if d.strip()]
    else:
        names = [d for d in available_domains() if (TEMPLATE_ROOT / d / "domain.yaml").is_file()]
    if not names:
        raise UsageError("--domain: give at least one domain")
    for d in names:
        load_domain(d)
    return names


def _min_length(n_items: int, n_tail: int, opts: RenderOptions) -> int:
    load_tokenizer(opts.tokenizer)  # a bad name or path fails here, before any output
    domains_for(opts)
    return _HEAD_TOKENS + _ITEM_TOKENS * n_items


def pick_domain(seed: int, domains: list[str]) -> str:
    """The domain of the episode with ``seed`` (a pure function of the seed)."""
    return domains[int(mix64(np.uint64(seed) ^ np.uint64(0x74657874)) % np.uint64(len(domains)))]


@register_rendering("text", _min_length)
def render_text_batch(batch: Batch, opts: RenderOptions) -> pa.Table:
    p = batch.program
    B, N = p.shape
    counter = load_tokenizer(opts.tokenizer)
    domains = domains_for(opts)
    start = np.full((B, N), -1, dtype=np.int64)
    end = np.full((B, N), -1, dtype=np.int64)
    length = np.zeros(B, dtype=np.int64)
    passage = np.full((B, N), -1, dtype=np.int64)
    contexts, prompts, questions, used, answers, passages = [], [], [], [], [], []
    for b in range(B):
        seed = int(batch.seeds[b])
        domain = pick_domain(seed, domains)
        ep = p.episode(b, id=batch.ids[b], family=batch.family, seed=seed)
        row = render_text(ep, target_length=batch.target_length, tokenizer=counter, domain=domain,
                          seed=seed, depth=opts.depth, spacing=opts.spacing, alpha=opts.alpha,
                          passage_size=opts.passage_size)
        live = np.flatnonzero(p.item[b] != ITEM_PAD)
        is_q = p.item[b, live] == ITEM_QUERY
        ev_pos, q_pos = live[~is_q], live[is_q]
        if row.event_spans:
            start[b, ev_pos], end[b, ev_pos] = np.asarray(row.event_spans, dtype=np.int64).T
        if row.query_spans:
            start[b, q_pos], end[b, q_pos] = np.asarray(row.query_spans, dtype=np.int64).T
        if row.passages:
            passage[b] = passage_of(row.passages, start[b])
        passages.append(list(row.passages))
        length[b] = row.length
        contexts.append(row.context)
        prompts.append(row.prompt)
        questions.append(list(row.questions))
        used.append(domain)
        answers.extend(row.answer_texts)
    cols = common_columns(batch, start, end, passage if opts.passage_size else None, None, length, "text",
                          pa.array(answers, pa.string()))
    cols["context"] = pa.array(contexts, pa.string())
    cols["questions"] = pa.array(questions, pa.list_(pa.string()))
    cols["prompt"] = pa.array(prompts, pa.string())
    cols["tokenizer"] = pa.array([counter.name] * B, pa.string())
    cols["domain"] = pa.array(used, pa.string())
    cols["passages"] = pa.array(passages, pa.list_(pa.int32()))
    return pa.table(cols)
