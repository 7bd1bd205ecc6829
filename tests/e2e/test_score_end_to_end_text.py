"""End to end on generated text data (every family, the domains in turn): answer blocks as the
prompt asks for them, the oracle at 100%, "unknown" at the share of absent answers, and trap
surfaces from ``memgen.render.text.domain.value_surface`` landing where the precedence says."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scorer_helpers import reference

from memgen.format.codes import ABSENT, ASKS, OUTCOMES
from memgen.generators.registry import FAMILIES
from memgen.render.text.domain import value_surface
from memgen.scorers.dataset import read_dataset
from memgen.scorers.scoring import score

TRAPS = ("stale", "distractor", "other_keys", "deleted")


@pytest.fixture(scope="module")
def frame(generated_text):
    return read_dataset(generated_text)


def blocks(frame, answer) -> list[dict]:
    """One answer block per episode, "<number>: <answer>" per line, as the prompt asks."""
    ids = frame.ids.to_pylist()
    out = []
    for r, i in enumerate(ids):
        lines = [f"{n + 1}: {answer(q)}" for n, q in enumerate(range(frame.q_offsets[r], frame.q_offsets[r + 1]))]
        out.append({"id": i, "answer_block": "\n".join(lines)})
    return out


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_prompt_asks_for_numbered_lines(generated_text):
    from memgen.io.dataset import Dataset

    ds = Dataset.open(generated_text)
    row = ds.table(ds.configs[0]).slice(0, 1).to_pylist()[0]
    assert 'one line each, as "<number>: <answer>"' in row["prompt"]


def test_oracle_answer_blocks_score_100_percent(frame, tmp_path):
    assert set(frame.family) == set(FAMILIES) and set(frame.rendering) == {"text"}
    r = score(frame, write(tmp_path / "oracle.jsonl", blocks(frame, lambda q: frame.answer_text[q])))
    assert r.missing == 0 and r.accuracy == 1.0
    assert not [n for n in r.notes if "no known surface" in n]


def test_restyled_gold_answers_are_correct(frame, tmp_path):
    def restyle(q: int) -> str:
        t = frame.answer_text[q]
        return "Unknown." if t == "unknown" else f"The answer is {t.upper()}."

    assert score(frame, write(tmp_path / "r.jsonl", blocks(frame, restyle))).accuracy == 1.0


def test_constant_unknown_scores_the_share_of_absent_answers(frame, tmp_path):
    r = score(frame, write(tmp_path / "u.jsonl", blocks(frame, lambda q: "unknown")))
    absent = frame.answer == ABSENT
    assert r.correct == int(absent.sum()) and 0 < absent.sum() < frame.n_queries
    assert set(np.asarray(OUTCOMES)[r.outcome[~absent]]) == {"false_absent"}


@pytest.mark.parametrize("trap", TRAPS)
def test_trap_surfaces_land_where_the_precedence_says(frame, trap):
    rag = getattr(frame.traps, trap)
    has = np.diff(rag.offsets) > 0
    if trap != "deleted":
        assert has.any()
    doms = frame.domain[frame.row]
    preds, values = {}, {}
    ids = frame.ids.to_pylist()
    for q in range(frame.n_queries):
        key = (ids[frame.row[q]], int(frame.qid[q]))
        if has[q]:
            v = int(rag.row(q)[0])
            values[q] = v
            preds[key] = value_surface(doms[q], v)
        else:
            preds[key] = frame.answer_text[q]
    r = score(frame, preds)
    for q, v in values.items():
        traps = {f: getattr(frame.traps, f).row(q).tolist() for f in TRAPS}
        assert OUTCOMES[r.outcome[q]] == reference(v, int(frame.answer[q]), ASKS[frame.ask[q]], traps)


def test_slices_agree_between_text_and_token_renderings_of_the_same_episodes(tmp_path):
    """The same seed gives the same IR in every rendering, so the number of updates and of
    distractors before each query are equal, and depth (characters in text, tokens in the
    token rendering; each rendering lays events out its own way) orders the deciding events of
    an episode the same way."""
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import Request

    generate(Request(families=("mixed",), renderings=("token", "text"), lengths=(2048,), episodes=8, seed=11),
             tmp_path / "twin")
    tok = read_dataset(tmp_path / "twin", config="mixed-token-2048")
    txt = read_dataset(tmp_path / "twin", config="mixed-text-2048")
    assert (tok.answer == txt.answer).all() and (tok.probe == txt.probe).all()
    assert (tok.n_updates == txt.n_updates).all() and tok.n_updates.max() >= 2
    assert (tok.n_distractors == txt.n_distractors).all() and tok.n_distractors.max() >= 1
    both = ~np.isnan(tok.depth)
    assert (np.isnan(txt.depth) == ~both).all()
    assert ((txt.depth[both] >= 0) & (txt.depth[both] < 1)).all()
    for r in range(tok.n_rows):
        sel = np.arange(tok.q_offsets[r], tok.q_offsets[r + 1])
        sel = sel[both[sel]]
        a, b = tok.depth[sel], txt.depth[sel]
        assert (np.sign(a[:, None] - a[None, :]) == np.sign(b[:, None] - b[None, :])).all()
