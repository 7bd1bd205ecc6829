"""Passages of the text rendering (--chunk-size): cut on sentence boundaries, no event split,
each event's chunk its passage and each query's evidence the passages of its deciding events,
for every family and domain; the text itself is the same with or without passages."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from memgen.cli import main
from memgen.generators.registry import FAMILIES
from memgen.pipeline.build import build_shard
from memgen.pipeline.request import make_request, tasks
from memgen.render.columns import with_prompt
from memgen.render.text.domain import available_domains
from memgen.render.text.passages import cut_passages, passage_of, passage_texts
from memgen.render.text.tokenizers import load_tokenizer

SIZE = 128
SETS = ("write", "overwrite", "silent_write")


def _rows(family: str, domain: str, chunk_size: int | None, episodes: int = 1, length: int = 1536) -> list[dict]:
    opts = {"chunk_size": chunk_size} if chunk_size else {}
    req = make_request(family, renderings="text", lengths=length, episodes=episodes, seed=11, domain=domain, **opts)
    return with_prompt(build_shard(req, tasks(req)[0])).to_pylist()


def _deciding(row: dict, q: dict) -> list[dict]:
    """The events that decide ``q``'s answer: its gold write (and the current value's write
    for version/previous asks), or the delete that emptied the key."""
    before = [e for e in row["events"] if q["start"] < 0 or e["end"] <= q["start"]]
    mine = [e for e in before if e["key"] == q["key"] and e["op"] in (*SETS, "delete")]
    if q["answer"] >= 0:
        out = [e for e in mine if e["op"] in SETS and e["value"] == q["answer"]]
        if q["ask"] != "latest":
            out.append([e for e in mine if e["op"] in SETS][-1])
        return out
    return [e for e in mine[-1:] if e["op"] == "delete"]


@pytest.mark.parametrize("domain", available_domains())
@pytest.mark.parametrize("family", list(FAMILIES))
def test_passages_never_split_an_event_and_evidence_holds_the_deciding_span(family, domain):
    counter = load_tokenizer("cl100k")
    for row in _rows(family, domain, SIZE):
        ctx, off = row["context"], row["passages"]
        assert off[0] == 0 and off[-1] == len(ctx) and all(a < b for a, b in zip(off, off[1:], strict=False))
        for cut in off[1:-1]:  # on a sentence boundary: a separator after a unit's last character
            assert ctx[cut] in " \n" and not ctx[cut - 1].isspace()
        assert max(counter.count_many(passage_texts(ctx, off))) <= SIZE
        for e in row["events"]:
            p = passage_of(off, [e["start"], e["end"] - 1]).tolist()
            assert p == [e["chunk"], e["chunk"]], e
        for q in row["queries"]:
            for e in _deciding(row, q):
                assert e["chunk"] in q["evidence"]
                p = q["evidence"][q["evidence"].index(e["chunk"])]
                assert off[p] <= e["start"] < e["end"] <= off[p + 1]
            assert sorted(set(q["evidence"])) == q["evidence"]
            if q["answer"] < 0 and not _deciding(row, q):
                assert q["evidence"] == []  # never written: nothing decides it


def test_without_chunk_size_the_text_is_the_same_and_carries_no_passages():
    with_p = _rows("mixed", "travel", 256, episodes=2, length=4096)
    without = _rows("mixed", "travel", None, episodes=2, length=4096)
    for a, b in zip(with_p, without, strict=True):
        assert (a["context"], a["prompt"], a["questions"]) == (b["context"], b["prompt"], b["questions"])
        assert b["passages"] == [] and all(e["chunk"] == -1 for e in b["events"])
        assert all(q["evidence"] == [] for q in b["queries"])
        assert len(a["passages"]) > 2


def test_a_unit_longer_than_the_size_is_a_passage_of_its_own():
    counter = load_tokenizer("cl100k")
    ctx = "Short one. " + "word " * 40 + "end. Tail here."
    spans = [(0, 10), (11, 11 + 5 * 40 + 4), (11 + 5 * 40 + 5, len(ctx))]
    off = cut_passages(counter, ctx, spans, 8)
    assert off == (0, 10, spans[1][1], len(ctx))
    assert "".join(passage_texts(ctx, off)) == ctx


def test_chunk_size_below_one_is_refused_for_text(tmp_path):
    res = CliRunner().invoke(main, ["generate", "--family", "write", "--rendering", "text", "--length", "1024",
                                    "--episodes", "1", "--chunk-size", "0", "--out", str(tmp_path / "d")])
    assert res.exit_code == 2 and "--chunk-size" in res.output
    assert not (tmp_path / "d").exists()
