"""Predictions files from someone else's model: deep nesting, huge integers, bad Unicode, gzip
bombs and absurd line numbers are one DataError (or a scored answer), never a crash of the
process, a traceback or gigabytes of memory."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from memgen.format.errors import DataError
from memgen.scorers.predictions import MAX_PREDICTIONS_BYTES, NOT_INT, read_predictions

ROW = '{"id": "e0", "qid": 0, "prediction": 1}\n'


@pytest.mark.parametrize("depth", [1_000, 10_000, 30_000])
def test_deep_nesting_is_one_data_error_in_a_process_that_survives(tmp_path, depth):
    """30,000 levels crashed the whole process inside Arrow's JSON reader (exit 139)."""
    path = tmp_path / "deep.jsonl"
    path.write_text(ROW + '{"id": "e1", "qid": 0, "prediction": ' + "[" * depth + "]" * depth + "}\n")
    code = ("import sys; from memgen.scorers.predictions import read_predictions\n"
            "from memgen.format.errors import DataError\n"
            f"try:\n    p = read_predictions({str(path)!r})\n"
            "except DataError as e:\n    print(e.message); sys.exit(3)\n"
            "print('read', len(p))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 3), proc.stderr[-500:]
    assert "Traceback" not in proc.stderr


def test_an_answer_nested_too_deeply_for_python_names_its_line(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text(ROW + '{"id": "e1", "qid": 0, "prediction": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.raises(DataError, match=r"deep.jsonl:2: nested too deeply"):
        read_predictions(path)


@pytest.mark.parametrize("number", ["9" * 5000, str(10 ** 30), str(-(10 ** 30))])
def test_integers_beyond_int64_are_not_token_ids(tmp_path, number):
    path = tmp_path / "big.jsonl"
    path.write_text('{"id": "e0", "qid": 0, "prediction": ' + number + "}\n")
    if len(number) > 4000:  # Python will not even convert it: the line is named
        with pytest.raises(DataError, match="big.jsonl:1: malformed JSON"):
            read_predictions(path)
    else:
        p = read_predictions(path)
        assert p.tokens.tolist() == [NOT_INT]


def test_a_uint64_column_at_its_maximum_is_not_wrapped_to_a_token(tmp_path):
    path = tmp_path / "preds.parquet"
    pq.write_table(pa.table({"id": ["e0", "e1"], "qid": [0, 0],
                             "prediction": pa.array([2 ** 64 - 1, 7], pa.uint64())}), path)
    p = read_predictions(path)
    assert p.tokens.tolist() == [NOT_INT, 7]


def test_a_lone_surrogate_in_an_id_is_one_line_and_in_an_answer_is_kept_readable(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "e\\udcff", "qid": 0, "prediction": "x"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1: 'id' is not valid Unicode"):
        read_predictions(path)
    path.write_text('{"id": "e0", "qid": 0, "prediction": "a\\udcffb"}\n{"id": "e1", "answer_block": "1: x"}\n')
    p = read_predictions(path)
    assert p.texts_at([0]).to_pylist() == ["a?b"]


def test_invalid_utf8_names_its_line(tmp_path):
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(ROW.encode() + b'{"id": "e1", "qid": 0, "prediction": "\xff"}\n')
    with pytest.raises(DataError, match="bytes.jsonl:2: malformed JSON"):
        read_predictions(path)


def test_an_answer_line_numbered_with_5000_digits_is_an_unnumbered_line(tmp_path):
    path = tmp_path / "block.jsonl"
    path.write_text(json.dumps({"id": "e0", "answer_block": "9" * 5000 + ": x\n1: y"}) + "\n")
    p = read_predictions(path)
    assert p.slots.tolist() == [0] and any("no question number" in n for n in p.notes)


def test_a_gzip_bomb_is_refused_before_it_fills_memory(tmp_path):
    path = tmp_path / "bomb.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        chunk = b" " * (1 << 20)
        for _ in range((MAX_PREDICTIONS_BYTES >> 20) + 8):
            f.write(chunk)
    assert path.stat().st_size < 2 << 20
    with pytest.raises(DataError, match="more than 256 MiB"):
        read_predictions(path)


def test_a_truncated_gzip_file_is_one_line(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    data = gzip.compress((ROW * 1000).encode())
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(DataError, match="truncated gzip"):
        read_predictions(path)
