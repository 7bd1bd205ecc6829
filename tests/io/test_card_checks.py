"""``verify`` covers the card as well: the manifest's content checksum it records, its
``data_files`` patterns (inside their config's folder, matching exactly the listed shards) and
its row counts; ``publish --dry-run`` on a folder named like a ``datasets`` builder; names from
files are printed escaped."""

from __future__ import annotations

import json
import shutil

import pytest
from eco_helpers import cli

from memgen.io.dataset import verify
from memgen.pipeline.job import generate
from memgen.pipeline.request import Request


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("card") / "ds"
    generate(Request(families=("write", "discard"), lengths=(256,), episodes=2, seed=1), root)
    return root


@pytest.fixture
def ds(clean, tmp_path):
    return shutil.copytree(clean, tmp_path / "ds")


def _edit_card(root, old, new):
    card = root / "README.md"
    text = card.read_text()
    assert old in text
    card.write_text(text.replace(old, new, 1))


def test_a_manifest_edit_that_keeps_its_own_rules_fails_the_card_checksum(ds):
    manifest = json.loads((ds / "manifest.json").read_text())
    manifest["config"]["seed"] = 2  # well-formed, passes every field check, changes what was made
    (ds / "manifest.json").write_text(json.dumps(manifest, indent=1))
    problems = verify(ds)
    assert len(problems) == 1 and "content checksum is different" in problems[0]


def test_the_checksum_ignores_how_the_manifest_is_formatted(ds):
    manifest = json.loads((ds / "manifest.json").read_text())
    (ds / "manifest.json").write_text(json.dumps(manifest, indent=4, sort_keys=True))
    assert verify(ds) == []


def test_a_damaged_checksum_fails_and_a_hand_made_card_without_one_is_held_to_the_other_rules(ds):
    card = ds / "README.md"
    text = card.read_text()
    card.write_text(text.replace("manifest content sha256: `", "manifest content sha256: `0", 1))
    assert any("checksum is different" in p for p in verify(ds))
    card.write_text("\n".join(ln for ln in text.splitlines() if "manifest content sha256" not in ln) + "\n")
    assert verify(ds) == []


@pytest.mark.parametrize("pattern", ["/etc/*", "data/../../*", "../outside/*.parquet", "data/discard-token-256/*",
                                     "data/write-token-256/../../x"])
def test_card_data_files_outside_their_config_folder_fail_verify(ds, pattern):
    _edit_card(ds, "path: data/write-token-256/test-*.parquet", f"path: '{pattern}'")
    problems = verify(ds)
    assert problems and all("README.md: config write-token-256: data_files" in p for p in problems), problems


def test_card_data_files_that_miss_a_shard_fail_verify(ds):
    _edit_card(ds, "path: data/write-token-256/test-*.parquet", "path: data/write-token-256/nothing-*")
    problems = verify(ds)
    assert len(problems) == 1 and "match 0 files, not the 1 shards the manifest lists" in problems[0]


def test_card_row_counts_must_be_the_manifests(ds):
    _edit_card(ds, "num_examples: 2", "num_examples: 500")
    problems = verify(ds)
    assert len(problems) == 1 and "500 rows in dataset_info" in problems[0]
    rc, _, err = cli("verify", str(ds))
    assert rc == 1 and "500 rows" in err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["json", "csv", "parquet", "text"])
def test_publish_dry_run_of_a_folder_named_like_a_builder_loads_its_own_shards(clean, tmp_path, name, monkeypatch):
    shutil.copytree(clean, tmp_path / name)
    (tmp_path / "data").mkdir()  # a sibling the json builder would read
    (tmp_path / "data" / "rows.json").write_text('{"id": "elsewhere"}\n')
    monkeypatch.chdir(tmp_path)
    rc, out, err = cli("publish", name, "--repo-id", "a/b", "--dry-run", timeout=300)
    assert rc == 0, err
    assert "dry run" in out and "write-token-256  split test" in out


def test_control_characters_in_names_from_files_are_printed_escaped(ds):
    stray = ds / "data" / "write-token-256" / "evil\x1b[2J\x07.parquet"
    stray.write_bytes(b"x")
    rc, out, err = cli("verify", str(ds))
    assert rc == 1 and "\x1b" not in err and "\x07" not in err and "\\x1b[2J\\x07" in err
    assert all(line.startswith("memgen: ") for line in err.splitlines())
