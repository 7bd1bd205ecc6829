"""``memgen generate --rendering text``: rows per the schema, exact lengths, same bytes twice,
and one clear line for a bad tokenizer or domain."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow as pa
import pytest
from click.testing import CliRunner

from memgen.cli import main
from memgen.format.schema import schema_for
from memgen.render.text.episode import tolerance


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memgen.cli", *args], capture_output=True, text=True)


@pytest.mark.parametrize(("extra", "words"), [
    (["--tokenizer", "gpt9"], "unknown tokenizer 'gpt9'"),
    (["--tokenizer", "/nowhere/tok"], "tokenizer"),
    (["--domain", "atlantis"], "unknown domain 'atlantis'"),
    (["--length", "200"], "too short"),
])
def test_bad_text_options_get_one_line_and_exit_2(tmp_path, extra, words):
    p = _run("generate", "--family", "mixed", "--rendering", "text", "--episodes", "2",
             "--out", str(tmp_path / "ds"), "--quiet", *(["--length", "2048"] if "--length" not in extra else []),
             *extra)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in p.stderr


def test_generate_text_rows_follow_the_schema_and_repeat_byte_for_byte(tmp_path):
    from memgen.io.shards import read_shard

    args = ["generate", "--family", "mixed,no_write_signal", "--rendering", "text", "--length", "2048",
            "--episodes", "5", "--seed", "4", "--shard-size", "2", "--quiet", "--out"]
    res = CliRunner().invoke(main, [*args, str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    # another process, another string-hash seed, two workers: the same bytes
    p = subprocess.run([sys.executable, "-m", "memgen.cli", *args, str(tmp_path / "b"), "--workers", "2"],
                       capture_output=True, text=True,
                       env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert p.returncode == 0, p.stderr
    outs = [json.loads((tmp_path / n / "manifest.json").read_text()) for n in ("a", "b")]
    sha = lambda m: [s["sha256"] for c in m["configs"].values() for s in c["shards"]]  # noqa: E731
    assert sha(outs[0]) == sha(outs[1])
    for cfg in outs[0]["configs"].values():
        for shard in cfg["shards"]:
            t: pa.Table = read_shard(tmp_path / "a" / shard["path"], prompt=False)  # as stored
            assert t.schema.equals(schema_for("text"), check_metadata=False)
            for row in t.to_pylist():
                assert 2048 - tolerance(2048) <= row["length"] <= 2048
                assert row["tokenizer"] == "cl100k_base" and row["domain"]
                assert len(row["questions"]) == len(row["queries"])
                for e in row["events"]:
                    assert 0 <= e["start"] < e["end"] <= len(row["context"])
                for q in row["queries"]:
                    assert q["answer_text"] == "unknown" or q["answer_text"] in row["context"]
