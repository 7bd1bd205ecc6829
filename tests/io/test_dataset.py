"""Dataset folders: golden bytes, Hub loading, verification, atomic writes and resume."""

import filecmp
import json
import shutil
from pathlib import Path

import pytest

from memgen.format.errors import MemgenError, UsageError
from memgen.io.dataset import Dataset, verify
from memgen.pipeline.job import generate
from memgen.pipeline.request import Request, load_request

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "golden"


def test_golden_dataset_regenerates_byte_identical(tmp_path):
    """data/golden was made by `make golden`; the same command must give the same bytes."""
    req = load_request(GOLDEN)
    out = tmp_path / "again"
    generate(req, out)
    golden_files = sorted(p.relative_to(GOLDEN) for p in GOLDEN.rglob("*") if p.is_file())
    new_files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert golden_files == new_files
    for rel in golden_files:
        assert filecmp.cmp(GOLDEN / rel, out / rel, shallow=False), rel


def test_load_dataset_round_trip_offline(small_dataset):
    import datasets

    ds = Dataset.open(small_dataset)
    for name in ("overwrite-token-1024", "mixed-chunk-1024", "discard-bridge-1024"):
        hf = datasets.load_dataset(str(small_dataset), name, split="test")
        ours = ds.table(name)
        assert hf.num_rows == ours.num_rows == 6
        assert hf[0]["id"] == ours.column("id")[0].as_py()
        assert hf[0]["queries"] == ours.slice(0, 1).to_pylist()[0]["queries"]
        assert hf[2]["input_ids"] == ours.column("input_ids")[2].as_py()


def test_same_command_same_bytes(tmp_path):
    req = Request(families=("mixed",), renderings=("chunk",), lengths=(2048,), episodes=5, seed=9, shard_size=2)
    a = generate(req, tmp_path / "a")
    b = generate(req, tmp_path / "b")
    assert a == b
    for s in a["configs"]["mixed-chunk-2048"]["shards"]:
        assert (tmp_path / "a" / s["path"]).read_bytes() == (tmp_path / "b" / s["path"]).read_bytes()


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_verify_names_a_flipped_byte(small_dataset, tmp_path):
    assert verify(small_dataset) == []
    root = _copy(small_dataset, tmp_path / "c")
    shard = sorted((root / "data" / "write-token-1024").iterdir())[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    problems = verify(root)
    assert len(problems) == 1 and shard.name in problems[0] and "sha256" in problems[0]


def test_verify_catches_missing_extra_and_truncated_files(small_dataset, tmp_path):
    root = _copy(small_dataset, tmp_path / "c")
    shards = sorted((root / "data").rglob("*.parquet"))
    shards[0].unlink()
    shards[1].write_bytes(shards[1].read_bytes()[:100])
    (root / "data" / "stray.arrow").write_bytes(b"x")
    problems = "\n".join(verify(root))
    assert "missing" in problems and "size" in problems and "stray.arrow" in problems


def test_verify_catches_a_broken_card(small_dataset, tmp_path):
    root = _copy(small_dataset, tmp_path / "c")
    card = root / "README.md"
    card.write_text(card.read_text().replace("configs:", "configs: [", 1))
    assert any("README.md" in p for p in verify(root))


def test_interrupted_run_resumes_to_the_same_bytes(tmp_path, monkeypatch):
    from memgen.pipeline import job

    req = Request(families=("overwrite", "discard"), lengths=(1024,), episodes=6, seed=4, shard_size=2)
    full = generate(req, tmp_path / "full")

    real = job.build_blocks
    calls = {"n": 0}

    def crash_on_fourth(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(job, "build_blocks", crash_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        generate(req, tmp_path / "cut")
    monkeypatch.setattr(job, "build_blocks", real)
    with pytest.raises(MemgenError):  # an unfinished folder is not a dataset yet
        Dataset.open(tmp_path / "cut")
    assert not list((tmp_path / "cut").rglob("*.tmp-*"))  # no half shard left behind
    resumed = generate(req, tmp_path / "cut")
    assert resumed == full
    for s in full["configs"]["discard-token-1024"]["shards"]:
        assert (tmp_path / "cut" / s["path"]).read_bytes() == (tmp_path / "full" / s["path"]).read_bytes()


def test_a_failed_write_stops_the_run_and_a_rerun_resumes(tmp_path, monkeypatch):
    """With one worker the writer thread writes shard i while shard i+1 is built: its error
    (here a full disk in the third shard) still reaches the caller, nothing half-written stays,
    and the same command then finishes with the bytes of an uninterrupted run."""
    from memgen.io import store as store_mod

    req = Request(families=("overwrite",), lengths=(1024,), episodes=12, seed=2, shard_size=2)
    full = generate(req, tmp_path / "full")
    real = store_mod.LocalStore.open_pending
    opened = {"n": 0}

    def disk_full_in_third(self, rel):
        opened["n"] += 1
        out = real(self, rel)
        if opened["n"] == 3:
            def write(data):
                raise OSError(28, "No space left on device")
            out.write = write
        return out

    monkeypatch.setattr(store_mod.LocalStore, "open_pending", disk_full_in_third)
    with pytest.raises(OSError, match="No space left"):
        generate(req, tmp_path / "cut")
    assert opened["n"] <= 4  # the run stopped at the failed write (one shard ahead at most), not after all six
    monkeypatch.setattr(store_mod.LocalStore, "open_pending", real)
    assert not list((tmp_path / "cut").rglob("*.tmp-*"))
    assert generate(req, tmp_path / "cut") == full
    for s in full["configs"]["overwrite-token-1024"]["shards"]:
        assert (tmp_path / "cut" / s["path"]).read_bytes() == (tmp_path / "full" / s["path"]).read_bytes()


def test_folder_with_another_dataset_is_refused(small_dataset, tmp_path):
    root = _copy(small_dataset, tmp_path / "c")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    with pytest.raises(UsageError, match="another dataset"):
        generate(Request(families=("write",), episodes=2), root)
    assert before == {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_manifest_records_versions_vocab_and_checksums(small_dataset):
    m = json.loads((small_dataset / "manifest.json").read_text())
    assert {"memgen_version", "generator_version", "schema_version", "shard_writer", "config", "vocab",
            "configs"} <= set(m)
    assert m["vocab"]["value_offset"] > m["vocab"]["key_offset"] > m["vocab"]["ask_version_offset"]
    assert set(m["vocab"]["distractor_markers"]) == {"negated", "hypothetical", "unconfirmed", "rejected",
                                                      "lookalike"}
    assert all(len(s["sha256"]) == 64 for c in m["configs"].values() for s in c["shards"])
    assert m["command"].startswith("memgen generate")


@pytest.mark.parametrize(("vocab_size", "dtype"), [(4096, "uint16"), (70_000, "int32")])
def test_input_ids_type_follows_the_vocabulary(tmp_path, vocab_size, dtype):
    """uint16 ids while the vocabulary fits 16 bits, int32 beyond; verify, the card and
    `datasets` all agree with the shards, and the ids are the same numbers either way."""
    import datasets
    import pyarrow as pa

    from memgen.format.vocab import Vocab
    from memgen.render.registry import RenderOptions

    req = Request(families=("overwrite",), renderings=("token",), lengths=(512,), episodes=3, seed=4,
                  render=RenderOptions(vocab=Vocab(vocab_size=vocab_size)))
    out = tmp_path / "ds"
    generate(req, out)
    assert verify(out) == []
    table = Dataset.open(out).table("overwrite-token-512")
    assert table.schema.field("input_ids").type == pa.list_(getattr(pa, dtype)())
    ids = table.column("input_ids").combine_chunks().flatten().to_numpy()
    assert ids.max() < vocab_size and (ids >= vocab_size - 100).sum() > 0  # filler reaches the top
    hf = datasets.load_dataset(str(out), "overwrite-token-512", split="test")
    assert hf.features["input_ids"].feature.dtype == dtype
    assert hf[1]["input_ids"] == table.column("input_ids")[1].as_py()


def test_a_shard_of_several_blocks_reads_like_one(tmp_path, monkeypatch):
    """Blocks are row groups of their shard: readers see the same rows as from a shard
    built in one block (the bytes differ; the episodes do not)."""
    import datasets
    import pyarrow.parquet as pq

    from memgen.pipeline import build

    req = Request(families=("mixed",), lengths=(2048,), episodes=40, seed=3)
    generate(req, tmp_path / "one")
    monkeypatch.setattr(build, "BLOCK_ITEMS", 500)
    generate(req, tmp_path / "many")
    shard = next((tmp_path / "many" / "data").rglob("*.parquet"))
    assert pq.ParquetFile(shard).num_row_groups > 1
    assert verify(tmp_path / "many") == []
    one = Dataset.open(tmp_path / "one").table("mixed-token-2048")
    many = Dataset.open(tmp_path / "many").table("mixed-token-2048")
    assert one.combine_chunks().equals(many.combine_chunks())
    hf = datasets.load_dataset(str(tmp_path / "many"), "mixed-token-2048", split="test")
    assert hf.num_rows == 40 and hf[7]["queries"] == many.slice(7, 1).to_pylist()[0]["queries"]
