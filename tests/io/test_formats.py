"""Shard formats: Parquet by default, Arrow IPC on request; the same rows, the same guarantees
(same bytes on every run and for any worker count, checksums, resume) and every reader reads
both; the card's default config, size category and the text rows' answers and prompt."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from eco_helpers import cli, one_error_line
from scale_helpers import tree_digest

from memgen.format.errors import UsageError
from memgen.io.dataset import Dataset, verify
from memgen.io.shards import read_shard, shard_info
from memgen.pipeline.job import generate, run_task
from memgen.pipeline.request import Request, tasks

REQ = Request(families=("mixed", "discard"), renderings=("token", "chunk"), lengths=(1024,), episodes=6, seed=2,
              shard_size=3)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """REQ written as Parquet and as Arrow."""
    root = tmp_path_factory.mktemp("formats")
    generate(REQ, root / "parquet")
    generate(Request(**{**REQ.__dict__, "format": "arrow"}), root / "arrow")
    return root


def test_parquet_is_the_default_and_arrow_is_asked_for(both):
    for fmt in ("parquet", "arrow"):
        files = sorted(p.name for p in (both / fmt / "data" / "mixed-token-1024").iterdir())
        assert files == [f"test-00000-of-00002.{fmt}", f"test-00001-of-00002.{fmt}"]
        assert verify(both / fmt) == []
    shard = next((both / "parquet" / "data").rglob("*.parquet"))
    meta = pq.ParquetFile(shard).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_both_formats_hold_the_same_rows(both):
    a, b = Dataset.open(both / "parquet"), Dataset.open(both / "arrow")
    for name in a.configs:
        assert a.table(name).equals(b.table(name)), name


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_same_bytes_on_every_run_and_for_any_worker_count(both, tmp_path, monkeypatch, fmt):
    monkeypatch.setenv("MEMGEN_CORES", "8")  # two worker processes even on a 2-core machine
    req = Request(**{**REQ.__dict__, "format": fmt})
    generate(req, tmp_path / "again", workers=2)
    assert tree_digest(tmp_path / "again") == tree_digest(both / fmt)


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_a_flipped_byte_fails_verify_and_a_rerun_rebuilds_it(both, tmp_path, fmt):
    import shutil

    root = shutil.copytree(both / fmt, tmp_path / "c")
    shard = next((root / "data").rglob(f"*.{fmt}"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0x40
    shard.write_bytes(bytes(data))
    assert any("sha256" in p for p in verify(root))
    manifest = json.loads((root / "manifest.json").read_text())
    recorded = {s["path"]: s for c in manifest["configs"].values() for s in c["shards"]}
    task = next(t for t in tasks(Request(**{**REQ.__dict__, "format": fmt})) if root / t.path == shard)
    entry = run_task(Request(**{**REQ.__dict__, "format": fmt}), task, root, recorded[task.path])
    assert entry == recorded[task.path] and verify(root) == []


def test_readers_read_columns_of_either_format(both):
    for fmt in ("parquet", "arrow"):
        shard = next((both / fmt / "data" / "mixed-chunk-1024").iterdir())
        schema, rows = shard_info(shard)
        assert rows == 3 and "input_ids" in schema.names
        part = read_shard(shard, columns=["id", "queries"])
        assert part.column_names == ["id", "queries"] and part.num_rows == 3


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_load_dataset_needs_no_config_name(both, fmt):
    import datasets

    hf = datasets.load_dataset(str(both / fmt), split="test")
    first = next(iter(Dataset.open(both / fmt).configs))
    assert hf.num_rows == 6 and hf[0]["id"] == f"{first}-0000000"


def test_the_card_marks_one_default_config_and_a_size_category(both):
    from memgen.io.card import card_front

    front = card_front((both / "parquet" / "README.md").read_text())
    assert [c["config_name"] for c in front["configs"] if c.get("default")] == ["mixed-token-1024"]
    assert front["size_categories"] == ["n<1K"]
    assert all(c["data_files"][0]["path"].endswith("/test-*.parquet") for c in front["configs"])


def test_the_manifest_records_the_knobs_each_config_was_made_with(both):
    configs = json.loads((both / "parquet" / "manifest.json").read_text())["configs"]
    knobs = configs["discard-token-1024"]["knobs"]
    assert knobs["keys"] == 4 and knobs["deletes"] == 2 and knobs["overwrites"] == 2 and knobs["queries"] == 4
    assert None not in knobs.values()


def test_an_unknown_format_is_one_line(tmp_path):
    rc, out, err = cli("generate", "--family", "write", "--length", "256", "--episodes", "1", "--format", "csv",
                       "--out", str(tmp_path / "x"))
    assert rc == 2 and not (tmp_path / "x").exists()
    one_error_line(err, "--format")
    with pytest.raises(UsageError, match="--format"):
        generate(Request(families=("write",), lengths=(256,), episodes=1, format="csv"), tmp_path / "y")


def test_text_rows_store_the_context_once_and_readers_get_the_prompt_back(text_dataset):
    ds = Dataset.open(text_dataset)
    name = ds.configs[0]
    shard = ds.shard_paths(name)[0]
    stored = read_shard(shard, prompt=False)
    assert "prompt" not in stored.column_names and {"prompt_head", "prompt_tail", "answers"} <= set(stored.column_names)
    table = ds.table(name)
    for row, raw in zip(table.to_pylist(), stored.to_pylist(), strict=False):
        assert row["prompt"] == raw["prompt_head"] + row["context"] + raw["prompt_tail"]
        assert "</log>" in raw["prompt_tail"] and row["context"] not in raw["prompt_head"]
        assert row["answers"] == [q["answer_text"] for q in row["queries"]]
    assert table.num_rows == 3
