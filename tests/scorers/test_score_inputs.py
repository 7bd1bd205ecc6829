"""Every kind of predictions ``score()`` accepts scores the same answers the same way, and
anything else is one UsageError, never a silent 0% (issue 15, item 1)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scorer_helpers import VOCAB, surface
from test_predictions import TEXT_CFG, TOKEN_CFG, oracle_rows, write_jsonl

from memgen.format.codes import OUTCOMES
from memgen.format.errors import DataError, UsageError
from memgen.scorers.dataset import read_dataset
from memgen.scorers.scoring import score


@pytest.fixture()
def frame(hand_folder):
    return read_dataset(hand_folder)


def test_list_of_records_read_from_a_jsonl_file_scores_as_the_file(frame, tmp_path):
    path = write_jsonl(tmp_path / "model-a.jsonl", oracle_rows(frame, TOKEN_CFG) + oracle_rows(frame, TEXT_CFG))
    records = [json.loads(line) for line in path.read_text().splitlines()]
    from_file = score(frame, path, value_surface=surface)
    from_list = score(frame, records, value_surface=surface)
    assert from_file.accuracy == 1.0
    assert from_list.accuracy == 1.0 and from_list.n == 42 and from_list.missing == 0
    assert (from_list.outcome == from_file.outcome).all()


def test_list_of_answer_block_records(frame):
    records = []
    for ep in ("txt-0", "txt-1", "txt-2"):
        r = frame.ids.to_pylist().index(ep)
        q = range(frame.q_offsets[r], frame.q_offsets[r + 1])
        records.append({"id": ep, "answer_block": "\n".join(f"{j + 1}: {frame.answer_text[i]}"
                                                            for j, i in enumerate(q))})
    r = score(frame, records, value_surface=surface)
    assert r.accuracy == 1.0 and r.n == 21


def test_a_generator_of_records_is_read_as_records(frame):
    r = score(frame, (row for row in oracle_rows(frame, TOKEN_CFG)))
    assert r.accuracy == 1.0 and r.n == 21


def test_dict_keyed_by_id_and_qid(frame):
    preds = {(row["id"], row["qid"]): row["prediction"] for row in oracle_rows(frame, TOKEN_CFG)}
    assert score(frame, preds).accuracy == 1.0
    # numpy scalars as keys and answers (taken from arrays) are the same ids and answers
    preds = {(k[0], np.int64(k[1])): np.int64(v) for k, v in preds.items()}
    assert score(frame, preds).accuracy == 1.0


def test_pandas_dataframe_of_predictions(frame):
    rows = oracle_rows(frame, TOKEN_CFG) + oracle_rows(frame, TEXT_CFG)
    r = score(frame, pd.DataFrame(rows), value_surface=surface)  # token ids and texts in one column
    assert r.accuracy == 1.0 and r.n == 42
    tokens = pd.DataFrame(oracle_rows(frame, TOKEN_CFG))
    assert score(frame, tokens).accuracy == 1.0
    # an integer column with a gap is stored as floats by pandas: the ids are still ids
    tokens.loc[0, "prediction"] = None
    r = score(frame, tokens.astype({"prediction": float}))
    assert r.correct == 20 and OUTCOMES[r.outcome[0]] == "unparsed" and r.missing == 0


def test_pandas_dataframe_of_answer_blocks(frame):
    r = frame.ids.to_pylist().index("txt-0")
    block = "\n".join(f"{j + 1}: {frame.answer_text[i]}"
                      for j, i in enumerate(range(frame.q_offsets[r], frame.q_offsets[r + 1])))
    res = score(frame, pd.DataFrame([{"id": "txt-0", "answer_block": block}]), value_surface=surface)
    assert res.correct == 7 and res.missing == 14


def test_aligned_plain_answers_keep_working(frame):
    tokens = np.where(frame.answer >= 0, frame.answer + VOCAB.value_offset, VOCAB.absent_id)
    answers = tokens.tolist()[:21] + frame.answer_text[21:]
    assert score(frame, answers, value_surface=surface).accuracy == 1.0
    assert score(frame, tuple(answers), value_surface=surface).accuracy == 1.0
    assert score(frame, pd.Series(answers, dtype=object), value_surface=surface).accuracy == 1.0
    # numpy scalars from iterating an array are answers, not unparsed objects
    assert score(frame, list(tokens[:21]) + list(np.array(frame.answer_text[21:])),
                 value_surface=surface).accuracy == 1.0


@pytest.mark.parametrize("bad, match", [
    (b"1\n2\n", "cannot read predictions from a bytes"),
    ({"id": "tok-0", "qid": 0, "prediction": 5}, r"keyed by \(id, qid\) pairs"),
    ({1, 2, 3}, "cannot read predictions from a set"),
    (3.5, "cannot read predictions from a float"),
    ([[1000, 1001]] * 42, "an answer of type list"),
    ([{"id": "tok-0", "qid": 0, "prediction": 1000}] + [1000] * 41, "records and plain answers mixed"),
])
def test_anything_else_is_one_usage_error(frame, bad, match):
    with pytest.raises(UsageError, match=match):
        score(frame, bad)


def test_bad_record_names_its_position(frame):
    rows = oracle_rows(frame, TOKEN_CFG)
    del rows[3]["qid"]
    with pytest.raises(DataError, match=r"<records>:4: missing or non-integer 'qid'"):
        score(frame, rows)
    rows = oracle_rows(frame, TOKEN_CFG)
    rows[1]["id"] = "nope"
    with pytest.raises(DataError, match=r"<records>:2: id 'nope' is not in the dataset"):
        score(frame, rows)


def test_arrow_array_of_aligned_answers(frame):
    tokens = np.where(frame.answer >= 0, frame.answer + VOCAB.value_offset, VOCAB.absent_id)
    answers = pa.array([str(t) for t in tokens[:21]] + frame.answer_text[21:])
    r = score(frame, answers, value_surface=surface)
    assert r.n == 42 and r.correct == 21  # the texts; a token query needs an integer id


# ---------------------------------------------------------------------------------------------
# empty answers are answers (issue 15, item 2)


def _lm_eval_rows(frame, responses: dict[str, str]) -> list[dict]:
    """lm-eval samples of whole-episode docs (the response is an answer block)."""
    return [{"doc_id": n, "doc": {"id": ep, "questions": ["..."], "context": "..."},
             "resps": [[resp]], "filtered_resps": [resp], "filter": "none"}
            for n, (ep, resp) in enumerate(responses.items())]


def test_lm_eval_samples_whose_responses_are_all_empty_score_unparsed(frame, tmp_path):
    path = write_jsonl(tmp_path / "samples_memgen_2026-01-01T00-00-00.jsonl",
                       _lm_eval_rows(frame, {"txt-0": "", "txt-1": "", "txt-2": ""}))
    r = score(frame, path, value_surface=surface)
    assert r.n == 21 and r.correct == 0 and r.missing == 0
    assert r.counts()["unparsed"] == 21
    assert any("configs without any prediction left out: mixed-token-128" in n for n in r.notes)


def test_empty_answers_of_every_kind_are_read(frame, tmp_path):
    rows = [{"id": "txt-0", "answer_block": ""}, {"id": "txt-1", "answer_block": None},
            {"id": "txt-2", "answer_block": "I cannot answer these."}]
    r = score(frame, write_jsonl(tmp_path / "blocks.jsonl", rows), value_surface=surface)
    assert r.n == 21 and r.counts()["unparsed"] == 21 and r.missing == 0
    per_query = [{"id": row["id"], "qid": row["qid"], "prediction": ""} for row in oracle_rows(frame, TEXT_CFG)]
    r = score(frame, write_jsonl(tmp_path / "p.jsonl", per_query), value_surface=surface)
    assert r.n == 21 and r.counts()["unparsed"] == 21 and r.missing == 0


def test_an_empty_block_for_an_unknown_id_names_its_line(frame, tmp_path):
    rows = [{"id": "txt-0", "answer_block": ""}, {"id": "nope", "answer_block": ""}]
    with pytest.raises(DataError, match=r"blocks\.jsonl:2: id 'nope' is not in the dataset"):
        score(frame, write_jsonl(tmp_path / "blocks.jsonl", rows))


def test_only_a_file_without_rows_is_an_error(frame, tmp_path):
    from memgen.scorers.predictions import read_predictions

    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="no predictions in the file"):
        read_predictions(tmp_path / "empty.jsonl")
    path = write_jsonl(tmp_path / "samples.jsonl", _lm_eval_rows(frame, {"txt-0": ""}))
    with pytest.raises(DataError, match=r"no rows of lm-eval filter 'strict' \(the file has none\)"):
        read_predictions(path, lm_eval_filter="strict")
