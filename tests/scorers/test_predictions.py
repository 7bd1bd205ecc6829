"""Predictions in every format, and every bad input: one DataError naming the file and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scorer_helpers import VOCAB, surface

from memgen.format.codes import OUTCOMES
from memgen.format.errors import DataError, UsageError
from memgen.scorers.dataset import read_dataset
from memgen.scorers.predictions import read_predictions
from memgen.scorers.scoring import score

TOKEN_CFG = "mixed-token-128"
TEXT_CFG = "mixed-text-128"


def write_jsonl(path: Path, rows: list, raw_tail: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + raw_tail)
    return path


def oracle_rows(frame, config: str) -> list[dict]:
    """{"id", "qid", "prediction"} rows answering every query of ``config`` right."""
    rows = []
    ids = frame.ids.to_pylist()
    for i in range(frame.n_queries):
        r = frame.row[i]
        if frame.config[r] != config:
            continue
        a = int(frame.answer[i])
        pred = (VOCAB.absent_id if a < 0 else VOCAB.value_offset + a) if frame.rendering[r] == "token" \
            else frame.answer_text[i]
        rows.append({"id": ids[r], "qid": int(frame.qid[i]), "prediction": pred})
    return rows


@pytest.fixture()
def frame(hand_folder):
    return read_dataset(hand_folder)


# ---------------------------------------------------------------------------------------------
# formats


def test_jsonl_token_predictions_score_the_oracle_fully(hand_folder, frame, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", oracle_rows(frame, TOKEN_CFG))
    r = score(frame, path)
    assert r.accuracy == 1.0 and r.n == 21 and r.missing == 0
    assert any("left out: mixed-text-128" in n for n in r.notes)


def test_jsonl_rows_of_mixed_types_are_read_line_by_line(frame, tmp_path):
    rows = oracle_rows(frame, TOKEN_CFG)
    rows[0]["prediction"] = "not a token"
    rows[1]["prediction"] = None
    rows[2]["prediction"] = 3.5
    r = score(frame, write_jsonl(tmp_path / "p.jsonl", rows))
    assert [OUTCOMES[o] for o in r.outcome[:4]] == ["unparsed", "unparsed", "unparsed", "correct"]
    assert r.missing == 0


def test_gzipped_jsonl_is_read(frame, tmp_path):
    raw = "".join(json.dumps(r) + "\n" for r in oracle_rows(frame, TOKEN_CFG)).encode()
    path = tmp_path / "p.jsonl.gz"
    path.write_bytes(gzip.compress(raw))
    assert score(frame, path).accuracy == 1.0


def test_answer_blocks_are_split_by_line_number(frame, tmp_path):
    rows = []
    for ep in ("txt-0", "txt-1", "txt-2"):
        r = frame.ids.to_pylist().index(ep)
        q0, q1 = frame.q_offsets[r], frame.q_offsets[r + 1]
        lines = [f"{j + 1}: {frame.answer_text[q]}" for j, q in enumerate(range(q0, q1))]
        lines = ["Here are my answers:"] + lines[::-1] + ["9: extra"]
        rows.append({"id": ep, "answer_block": "\n".join(lines)})
    r = score(frame, write_jsonl(tmp_path / "blocks.jsonl", rows), value_surface=surface)
    assert r.accuracy == 1.0 and r.n == 21 and r.missing == 0
    assert any("carry no question number" in n for n in r.notes)
    assert any("beyond their episode's questions" in n for n in r.notes)


def test_answer_block_line_styles(frame, tmp_path):
    block = "**1.** blue crate 1100\nQ2) red crate 1,000\nQuestion 3 - red crate 1000\n4:\n"
    r = score(frame, write_jsonl(tmp_path / "b.jsonl", [{"id": "txt-0", "answer_block": block}]),
              value_surface=surface)
    q0 = frame.q_offsets[frame.ids.to_pylist().index("txt-0")]
    got = [OUTCOMES[o] for o in r.outcome[q0:q0 + 5]]
    assert got == ["correct", "correct", "correct", "unparsed", "unparsed"]
    # txt-0's questions without a line got an empty answer; the other episodes have no prediction
    assert r.missing == 21 - 7
    assert "3 questions have no numbered line in their episode's answer block (scored unparsed)" in r.notes


def test_lm_eval_sample_logs(frame, tmp_path):
    rows = []
    for n, p in enumerate(oracle_rows(frame, TEXT_CFG)):
        doc = {"id": p["id"], "qid": p["qid"], "question": "..."}
        for flt, resp in (("strict-match", p["prediction"]), ("none", "wrong")):
            rows.append({"doc_id": n, "doc": doc, "target": p["prediction"], "arguments": [["prompt", {}]],
                         "resps": [[f"The answer is {resp}"]], "filtered_resps": [resp], "filter": flt,
                         "metrics": ["exact_match"], "doc_hash": "h"})
    path = write_jsonl(tmp_path / "samples_memgen_2026-01-01T00-00-00.jsonl", rows)
    r = score(frame, path, value_surface=surface)
    assert r.accuracy == 1.0 and r.n == 21
    assert any("filter 'strict-match' scored; skipped none (21 rows)" in n for n in r.notes)
    other = score(frame, read_predictions(path, lm_eval_filter="none"), value_surface=surface)
    assert other.accuracy == 0.0


def test_lm_eval_whole_episode_docs_are_answer_blocks(frame, tmp_path):
    rows = []
    for ep in ("txt-0", "txt-1", "txt-2"):
        r = frame.ids.to_pylist().index(ep)
        block = "\n".join(f"{j + 1}. {frame.answer_text[q]}"
                          for j, q in enumerate(range(frame.q_offsets[r], frame.q_offsets[r + 1])))
        rows.append({"doc_id": r, "doc": {"id": ep, "questions": ["..."], "context": "..."},
                     "resps": [[block]], "filtered_resps": [[block]]})
    r = score(frame, write_jsonl(tmp_path / "samples_memgen_x.jsonl", rows), value_surface=surface)
    assert r.accuracy == 1.0 and r.n == 21


def test_predictions_from_a_list_column_aligned_with_queries(frame, tmp_path):
    ids = [i for i in frame.ids.to_pylist() if i.startswith("tok")]
    lists = []
    for ep in ids:
        r = frame.ids.to_pylist().index(ep)
        ans = frame.answer[frame.q_offsets[r]:frame.q_offsets[r + 1]]
        lists.append([int(VOCAB.absent_id if a < 0 else VOCAB.value_offset + a) for a in ans])
    path = tmp_path / "preds.parquet"
    pq.write_table(pa.table({"id": ids, "predictions": lists}), path)
    assert score(frame, path).accuracy == 1.0


def test_aligned_array_and_mapping_inputs(frame):
    tokens = np.where(frame.answer >= 0, frame.answer + VOCAB.value_offset, VOCAB.absent_id)
    r = score(frame, tokens.tolist()[:21] + frame.answer_text[21:], value_surface=surface)
    assert r.accuracy == 1.0 and r.n == 42
    with pytest.raises(UsageError, match="41 predictions for 42 queries"):
        score(frame, tokens[:41])


# ---------------------------------------------------------------------------------------------
# bad input


def test_unknown_id_names_file_and_line(frame, tmp_path):
    rows = oracle_rows(frame, TOKEN_CFG)
    rows[4]["id"] = "nope"
    with pytest.raises(DataError, match=r"p\.jsonl:5: id 'nope' is not in the dataset"):
        score(frame, write_jsonl(tmp_path / "p.jsonl", rows))


def test_unknown_qid_names_file_and_line(frame, tmp_path):
    rows = oracle_rows(frame, TOKEN_CFG)
    rows[2]["qid"] = 99
    with pytest.raises(DataError, match=r"p\.jsonl:3: qid 99 is not a query of id 'tok-0'"):
        score(frame, write_jsonl(tmp_path / "p.jsonl", rows))
    rows[2]["qid"] = -1
    with pytest.raises(DataError, match=r"p\.jsonl:3: qid -1 is not a query"):
        score(frame, write_jsonl(tmp_path / "p.jsonl", rows))


def test_duplicate_prediction_names_both_lines(frame, tmp_path):
    rows = oracle_rows(frame, TOKEN_CFG)
    rows.append(dict(rows[3]))
    with pytest.raises(DataError, match=r"p\.jsonl:22: a second prediction for id 'tok-0' qid 3 "
                                        r"\(first at line 4\)"):
        score(frame, write_jsonl(tmp_path / "p.jsonl", rows))


def test_malformed_json_names_the_line(frame, tmp_path):
    path = tmp_path / "p.jsonl"
    lines = [json.dumps(r) for r in oracle_rows(frame, TOKEN_CFG)]
    lines[6] = '{"id": "tok-0", "qid": 6, "prediction": }'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"p\.jsonl:7: malformed JSON"):
        read_predictions(path)


def test_truncated_file_is_named(frame, tmp_path):
    path = tmp_path / "p.jsonl"
    text = "".join(json.dumps(r) + "\n" for r in oracle_rows(frame, TOKEN_CFG))
    path.write_text(text[:-15])
    with pytest.raises(DataError, match=r"p\.jsonl:21: truncated file"):
        read_predictions(path)


def test_row_of_no_known_kind(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": "tok-0", "qid": 0, "prediction": 5}, {"id": "x", "answer": 3}])
    with pytest.raises(DataError, match=r"p\.jsonl:2: a row needs"):
        read_predictions(path)


def test_row_without_qid(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": "tok-0", "prediction": 5}])
    with pytest.raises(DataError, match=r"p\.jsonl:1: missing or non-integer 'qid'"):
        read_predictions(path)


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match="no predictions in the file"):
        read_predictions(tmp_path / "empty.jsonl")
    with pytest.raises(DataError, match="no such predictions file"):
        read_predictions(tmp_path / "absent.jsonl")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="not a readable Arrow/Parquet file"):
        read_predictions(tmp_path / "bad.parquet")


def test_other_configs_predictions_are_skipped_when_one_config_is_scored(hand_folder, tmp_path):
    full = read_dataset(hand_folder)
    rows = oracle_rows(full, TOKEN_CFG) + oracle_rows(full, TEXT_CFG)
    only_token = read_dataset(hand_folder, config=TOKEN_CFG)
    r = score(only_token, write_jsonl(tmp_path / "p.jsonl", rows))
    assert r.accuracy == 1.0 and r.n == 21
    assert any("21 predictions for rows outside the chosen config/split were skipped" in n for n in r.notes)


# ---------------------------------------------------------------------------------------------
# bad dataset folders


def test_missing_folder_and_manifest(tmp_path):
    with pytest.raises(DataError, match="no such dataset folder"):
        read_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="fails verification"):
        read_dataset(tmp_path / "empty")


def test_corrupted_shard_fails_verification(hand_folder):
    shard = next((hand_folder / "data" / TOKEN_CFG).glob("*.arrow"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError, match="fails verification: .*sha256 mismatch"):
        read_dataset(hand_folder)


def test_malformed_manifest(hand_folder):
    (hand_folder / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="fails verification: .*manifest.json: malformed JSON"):
        read_dataset(hand_folder)


def test_unknown_config_or_split_is_a_usage_error(hand_folder):
    with pytest.raises(UsageError, match="--config nope: not in"):
        read_dataset(hand_folder, config="nope")
    with pytest.raises(UsageError, match="--split train: no shards"):
        read_dataset(hand_folder, split="train")


def test_token_predictions_need_the_manifest_vocab(hand_folder, tmp_path):
    frame = read_dataset(hand_folder)
    frame.manifest = {k: v for k, v in frame.manifest.items() if k != "vocab"}
    with pytest.raises(DataError, match="no 'vocab'"):
        score(frame, write_jsonl(tmp_path / "p.jsonl", oracle_rows(frame, TOKEN_CFG)))


def test_extra_fields_in_prediction_rows_are_ignored(frame, tmp_path):
    rows = [dict(r, route="slot", active_chunks=2) for r in oracle_rows(frame, TOKEN_CFG)]
    assert score(frame, write_jsonl(tmp_path / "p.jsonl", rows)).accuracy == 1.0


def test_scorer_imports_without_torch():
    import subprocess
    import sys

    code = "import sys, memgen.scorers, memgen.cli.score; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_episodes_a_run_got_no_answer_for_take_its_outcome(tmp_path):
    """``memgen run`` records an episode it could not send (``overflow``) or that the server
    turned down (``refused``) as a row of its own: every question of it takes that outcome, is
    neither missing nor unparsed, and the report counts it."""
    from scorer_helpers import catalogue_episode, episodes_table

    from memgen.scorers.aggregate import report
    from memgen.scorers.frame import build_frame

    frame = build_frame(episodes_table([catalogue_episode(f"txt-{i}") for i in range(3)], rendering="text"))
    block = "\n".join(f"{j + 1}: {frame.answer_text[j]}" for j in range(7))
    p = write_jsonl(tmp_path / "run.jsonl", [
        {"id": "txt-0", "config": "c", "model": "m", "answer_block": block},
        {"id": "txt-1", "config": "c", "model": "m", "answer_block": None, "outcome": "overflow",
         "detail": "a prompt of 9,000 tokens plus 64 new ones exceeds the model's 8,192"},
        {"id": "txt-2", "config": "c", "model": "m", "answer_block": None, "outcome": "refused",
         "detail": "HTTP 400: context length exceeded"},
    ])
    r = score(frame, p, value_surface=surface)
    assert r.missing == 0 and not any("unparsed" in n for n in r.notes)
    assert [OUTCOMES[o] for o in r.outcome] == ["correct"] * 7 + ["overflow"] * 7 + ["refused"] * 7
    assert r.counts(lenient=True) == r.counts()
    m = report(r).models[0]
    assert (m["outcomes"]["overflow"], m["outcomes"]["refused"], m["overall"]["correct"]) == (7, 7, 7)
    assert "| probe | n | correct | overflow | refused |" in report(r).to_markdown()


@pytest.mark.parametrize(("row", "match"), [
    ({"id": "txt-1", "answer_block": None, "outcome": "exploded"}, r"run.jsonl:1: unknown 'outcome' 'exploded'"),
    ({"id": "txt-1", "answer_block": "1: x", "outcome": "overflow"},
     r"run.jsonl:1: an episode recorded as 'overflow' has no answer_block"),
])
def test_a_bad_run_outcome_is_one_data_error(tmp_path, row, match):
    with pytest.raises(DataError, match=match):
        read_predictions(write_jsonl(tmp_path / "run.jsonl", [row]))
