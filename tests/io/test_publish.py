"""``memgen publish``: offline validation, the dry-run listing, refusals, and the upload call."""

from __future__ import annotations

import hashlib
import shutil
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from eco_helpers import cli, one_error_line

from memgen.cli import main
from memgen.io.card import render_card
from memgen.io.dataset import Dataset


@pytest.fixture()
def no_network(monkeypatch):
    """Every outgoing connection attempt is recorded and refused."""
    attempts: list = []

    def refuse(self, address, *a, **k):
        attempts.append(address)
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))
    return attempts


@pytest.mark.parametrize("which", ["token", "text"])
def test_dry_run_lists_every_file_with_size_sha256_and_the_cards_configs(which, small_dataset, text_dataset,
                                                                         no_network):
    root = small_dataset if which == "token" else text_dataset
    res = CliRunner().invoke(main, ["publish", str(root), "--repo-id", "my-lab/memgen-episodes", "--dry-run"])
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert no_network == []
    assert "would publish" in out and "https://huggingface.co/datasets/my-lab/memgen-episodes (public)" in out
    ds = Dataset.open(root)
    listed = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and len(parts[0]) == 64:
            listed[parts[2]] = (int(parts[1].replace(",", "")), parts[0])
    expected = ["README.md", "manifest.json"] + [s["path"] for c in ds.configs for s in ds.config(c)["shards"]]
    assert sorted(listed) == sorted(expected)
    for rel, (size, sha) in listed.items():
        data = (root / rel).read_bytes()
        assert size == len(data) and sha == hashlib.sha256(data).hexdigest(), rel
    for name in ds.configs:
        line = next(x for x in out.splitlines() if x.strip().startswith(name + " "))
        assert f"data/{name}/test-*.parquet" in line and f"({ds.config(name)['rows']:,} rows)" in line


@pytest.fixture()
def copy_of(tmp_path, text_dataset):
    def make() -> Path:
        dst = tmp_path / "copy"
        shutil.copytree(text_dataset, dst)
        return dst
    return make


@pytest.mark.parametrize("edit, words", [
    (lambda t: t.replace("configs:", "configs: [", 1), ["README.md", "YAML"]),
    (lambda t: t.replace("tags:\n- long-context", "tags: long-context\nx:\n- long-context", 1),
     ["card YAML is invalid", "'tags' must be a list of strings"]),
    (lambda t: t.replace("  data_files:\n  - split: test\n    path: data/overwrite",
                         "  datafiles:\n  - split: test\n    path: data/overwrite", 1),
     ["fails verification", "overwrite-text-1024", "data_files"]),
    (lambda t: t.replace("    path: data/discard-text-1024/test-*.parquet", "    path: data/nowhere/test-*.parquet", 1),
     ["fails verification", "discard-text-1024", "data/nowhere/test-*.parquet", "not a pattern inside"]),
], ids=["broken-yaml", "tags-not-a-list", "config-without-data-files", "data-files-match-nothing"])
def test_a_card_that_fails_validation_is_refused_with_one_line(copy_of, edit, words):
    root = copy_of()
    card = root / "README.md"
    text = card.read_text()
    edited = edit(text)
    assert edited != text
    card.write_text(edited)
    rc, out, err = cli("publish", str(root), "--repo-id", "a/b", "--dry-run")
    assert rc == 1 and out == ""
    one_error_line(err, *words)


@pytest.mark.parametrize("repo_id, words", [
    ("no-namespace", ["use ORG/NAME"]),
    ("a/b/c", ["use ORG/NAME"]),
    ("my lab/x", ["Repo id must use alphanumeric"]),
    ("a/-bad-", ["Repo id must use alphanumeric"]),
])
def test_a_bad_repo_id_is_refused_before_anything_else(small_dataset, repo_id, words):
    rc, out, err = cli("publish", str(small_dataset), "--repo-id", repo_id, "--dry-run")
    assert rc == 2 and out == ""
    one_error_line(err, "--repo-id", *words)


def test_a_missing_or_corrupted_dataset_is_refused(tmp_path, copy_of):
    rc, _, err = cli("publish", str(tmp_path / "nothing"), "--repo-id", "a/b", "--dry-run")
    assert rc == 1
    one_error_line(err, "no such dataset folder")
    root = copy_of()
    shard = next((root / "data").rglob("*.parquet"))
    shard.write_bytes(shard.read_bytes()[:-7] + b"garbage")
    rc, _, err = cli("publish", str(root), "--repo-id", "a/b", "--dry-run")
    assert rc == 1
    one_error_line(err, "fails verification", "sha256 mismatch")


class FakeApi:
    """Records what publish asks of huggingface_hub.HfApi."""

    calls: list = []

    def __init__(self, token=None):
        FakeApi.calls.append(("init", token))

    def create_repo(self, repo_id, **kw):
        FakeApi.calls.append(("create_repo", repo_id, kw))

    def upload_folder(self, **kw):
        FakeApi.calls.append(("upload_folder", kw))

        class Info:
            commit_url = f"https://huggingface.co/datasets/{kw['repo_id']}/commit/abc"
        return Info()


def test_publish_creates_the_repo_and_uploads_exactly_the_planned_files(text_dataset, monkeypatch):
    import huggingface_hub

    FakeApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    res = CliRunner().invoke(main, ["publish", str(text_dataset), "--repo-id", "my-lab/eps", "--private"])
    assert res.exit_code == 0, res.output
    assert "published" in res.stdout and "my-lab/eps/commit/abc" in res.stdout
    assert [c[0] for c in FakeApi.calls] == ["init", "create_repo", "upload_folder"]
    _, repo_id, kw = FakeApi.calls[1]
    _, up = FakeApi.calls[2]
    assert repo_id == "my-lab/eps" and kw == {"repo_type": "dataset", "private": True, "exist_ok": True}
    ds = Dataset.open(text_dataset)
    shards = [s["path"] for c in ds.configs for s in ds.config(c)["shards"]]
    assert up["repo_type"] == "dataset" and up["repo_id"] == "my-lab/eps"
    assert Path(up["folder_path"]) == text_dataset
    assert sorted(up["allow_patterns"]) == sorted(["README.md", "manifest.json", *shards])


@pytest.mark.parametrize("env, code, words", [
    ({"HF_HUB_OFFLINE": "1", "HF_TOKEN": "hf_x"}, 2, ["HF_HUB_OFFLINE is set"]),
    ({"HF_HUB_OFFLINE": "0", "HF_TOKEN": "", "HF_HOME": "{tmp}/hf"}, 2, ["no Hugging Face token"]),
    ({"HF_HUB_OFFLINE": "0", "HF_TOKEN": "hf_x", "HF_ENDPOINT": "http://127.0.0.1:{port}"}, 1,
     ["upload to https://huggingface.co/datasets/a/b failed", "Connect"]),
], ids=["offline", "no-token", "unreachable-hub"])
def test_an_upload_that_cannot_happen_fails_with_one_line(text_dataset, tmp_path, env, code, words):
    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v.replace("{tmp}", str(tmp_path)).replace("{port}", str(port)) for k, v in env.items()}
    rc, out, err = cli("publish", str(text_dataset), "--repo-id", "a/b", env=env)
    assert rc == code and out == ""
    one_error_line(err, *words)


def test_the_card_is_a_real_card(small_dataset, text_dataset):
    token = (small_dataset / "README.md").read_text()
    assert render_card(Dataset.open(small_dataset).manifest) == token
    for section in ("## Configs", "| probe | what it tests |", "| family | episodes |", "## Token vocabulary",
                    "## Generation", "memgen generate", "Seed 3", "## Schema", "## Scoring", "memgen score",
                    "## Citation", "@software{memgen", "license: apache-2.0", "configs:", "dataset_info:"):
        assert section in token, section
    for family in ("write", "overwrite", "version", "distractor", "no_write_signal", "discard", "mixed"):
        assert f"| `{family}` |" in token
    text = (text_dataset / "README.md").read_text()
    assert "## Text rendering" in text and "language:\n- en" in text and "## Token vocabulary" not in text
    assert "memgen export" in text and "memgen run" in text
