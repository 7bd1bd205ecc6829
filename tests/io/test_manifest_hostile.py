"""A manifest edited by hand or by an attacker: everything a scorer or a model reads from it is
checked (names, renderings, vocabulary, row counts, shard paths), so a one-bit edit that would
change scores fails ``verify``, and no command crashes or writes outside its output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from eco_helpers import cli, one_error_line

from memgen.io.dataset import verify

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "golden"


@pytest.fixture()
def ds(tmp_path) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(GOLDEN, root)
    return root


def _edit(root: Path, change) -> None:
    m = json.loads((root / "manifest.json").read_text())
    change(m)
    (root / "manifest.json").write_text(json.dumps(m))


def _first(m: dict) -> dict:
    return next(iter(m["configs"].values()))


def _rename_config(m: dict, new: str) -> None:
    old = next(iter(m["configs"]))
    cfg = m["configs"].pop(old)
    m["configs"][new] = cfg


@pytest.mark.parametrize(("change", "words"), [
    (lambda m: m["vocab"].update(value_offset=m["vocab"]["value_offset"] + 1), "vocab entries 'value_offset'"),
    (lambda m: m["vocab"].update(vocab_size="4096"), "vocab 'vocab_size'"),
    (lambda m: m["vocab"].update(key_tokens=True), "vocab 'key_tokens'"),
    (lambda m: m["vocab"].update(values=10 ** 30), "vocab 'values'"),
    (lambda m: _first(m).update(rendering="pixel"), "rendering 'pixel'"),
    (lambda m: _first(m).update(rows=_first(m)["rows"] + 500), "not the sum of its shards' rows"),
    (lambda m: _first(m)["shards"].append(dict(_first(m)["shards"][0])), "listed twice"),
    (lambda m: _first(m)["shards"][0].update(path="data/../../escaped.arrow"), "is not data/"),
    (lambda m: _first(m)["shards"][0].update(path="/etc/passwd"), "is not data/"),
    (lambda m: _rename_config(m, "../../../escaped"), "is not <family>-<rendering>-<length>"),
    (lambda m: _rename_config(m, "write-token-256\x1b[31m"), "is not <family>-<rendering>-<length>"),
])
def test_a_manifest_edit_that_changes_what_is_read_fails_verify(ds, change, words):
    _edit(ds, change)
    problems = verify(ds)
    assert problems and words in problems[0], problems


def test_the_untouched_golden_folder_verifies(ds):
    assert verify(ds) == []


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"configs": {}, "n": ' + "9" * 5000 + "}",
                                  '{"configs": {}, "status": "complete", "x": "\udcff"}'])
def test_a_manifest_that_is_not_json_we_can_read_is_one_line_for_every_command(ds, tmp_path, text):
    (ds / "manifest.json").write_text(text, errors="surrogateescape")
    for args in (["verify", str(ds)], ["show", str(ds)],
                 ["generate", "--family", "write", "--length", "256", "--episodes", "1", "--out", str(ds)]):
        rc, _, err = cli(*args, timeout=120)
        assert rc in (1, 2), (args, err)
        one_error_line(err)


def test_a_link_in_the_data_folder_fails_verify(ds):
    shard = next((ds / "data").rglob("*.parquet"))
    (shard.parent / "test-00009-of-00009.arrow").symlink_to(shard)
    problems = verify(ds)
    assert any("a link" in p for p in problems), problems


def test_a_shard_replaced_by_a_link_fails_verify(ds, tmp_path):
    shard = next((ds / "data").rglob("*.parquet"))
    outside = tmp_path / "outside.arrow"
    shutil.move(shard, outside)
    shard.symlink_to(outside)
    problems = verify(ds)
    assert any("not a plain file" in p for p in problems), problems


def test_export_of_an_escaping_config_name_writes_nothing_outside(ds, tmp_path):
    _edit(ds, lambda m: _rename_config(m, "../../../escaped"))
    out = tmp_path / "out" / "deep"
    rc, _, err = cli("export", str(ds), "--format", "jsonl", "--out", str(out / "x.jsonl"), timeout=120)
    assert rc != 0
    one_error_line(err)
    assert not list(tmp_path.rglob("escaped*"))


def test_a_fifo_in_place_of_a_shard_is_one_line_even_unverified(ds):
    import os

    shard = next((ds / "data").rglob("*.parquet"))
    config = shard.parent.name
    shard.unlink()
    os.mkfifo(shard)
    rc, _, err = cli("score", "--dataset", str(ds), "--config", config, "--predictions", str(ds / "none.jsonl"),
                     "--no-verify", timeout=60)  # a reader that opened the FIFO would block until the timeout
    assert rc in (1, 2)
    one_error_line(err)


@pytest.mark.parametrize("pattern", ["/etc/*", "data/../../*", "../outside/*.arrow", "data/other-token-256/*.arrow"])
def test_card_data_files_outside_their_config_folder_are_refused_by_publish(ds, pattern):
    card = ds / "README.md"
    text = card.read_text()
    first = text.split("path: ", 1)[1].split("\n", 1)[0]
    card.write_text(text.replace(f"path: {first}", f"path: '{pattern}'", 1))
    rc, out, err = cli("publish", str(ds), "--repo-id", "a/b", "--dry-run", timeout=120)
    assert rc == 1 and out == ""
    one_error_line(err, "data_files")
