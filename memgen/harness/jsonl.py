"""The plain JSONL export (``memgen export --format jsonl``): one row per query (``prompt``
asking that one question, ``answer``, ``id``, ``qid``, ``probe``, ...) or one row per episode,
from a dataset folder that passes ``memgen verify``, written atomically (docs/ecosystem.md)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from memgen.format.errors import UsageError
from memgen.harness.lm_eval import Export, single_question_prompt
from memgen.harness.text_dataset import TextEpisode, iter_episodes, open_text_dataset
from memgen.io.atomic import TMP_MARK, output_file
from memgen.io.dataset import Dataset


def query_rows(ep: TextEpisode) -> Iterator[dict]:
    """One row per question of ``ep``: its own prompt, the bare gold ``answer``, and the
    ``target`` line in the prompt's answer format."""
    for n, (qid, probe, ask, answer) in enumerate(zip(ep.qids, ep.probes, ep.asks, ep.answers, strict=True),
                                                  start=1):
        yield {"id": ep.id, "qid": qid, "probe": probe, "ask": ask, "config": ep.config, "family": ep.family,
               "question": ep.questions[n - 1], "prompt": single_question_prompt(ep, n), "answer": answer,
               "target": f"{n}: {answer}"}


def episode_rows(ep: TextEpisode) -> Iterator[dict]:
    """One row for the whole episode: the prompt with every question and the answer block."""
    yield {"id": ep.id, "config": ep.config, "family": ep.family, "n_questions": len(ep.answers),
           "probes": list(ep.probes), "qids": list(ep.qids), "prompt": ep.prompt, "answer": ep.target}


def export_jsonl(dataset: str | Path, out: str | Path, *, configs: Sequence[str] | None = None,
                 unit: str = "query",
                 episodes: Callable[[Dataset, str], Iterable[TextEpisode]] = iter_episodes) -> Export:
    """Write the text configs of ``dataset`` as one JSONL file ``out`` (atomically).

    ``unit="query"``: one row per question, ``{"id", "qid", "probe", "ask", "config", "family",
    "question", "prompt", "answer", "target"}``, the prompt asking that question alone;
    ``unit="episode"``: one row per episode with every question and the answer block.
    ``episodes(ds, config)`` yields the episodes to write (:func:`iter_episodes` by default)."""
    make = {"query": query_rows, "episode": episode_rows}.get(unit)
    if make is None:
        raise UsageError(f"--unit {unit!r}: choose query or episode")
    ds, text, other = open_text_dataset(dataset, configs)
    out = Path(out).expanduser()
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder; give a file name (e.g. {out / 'memgen.jsonl'})")
    out = output_file(out)
    result = Export(out=out, skipped=other)
    tmp = out.with_name(f".{out.name}{TMP_MARK}{os.getpid()}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            for config in text:
                n = 0
                for ep in episodes(ds, config):
                    for row in make(ep):
                        f.write(json.dumps(row, ensure_ascii=False) + "\n")
                        n += 1
                result.rows[config] = n
        os.replace(tmp, out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return result
