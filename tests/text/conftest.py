import pytest


@pytest.fixture(scope="session")
def hf_tokenizer(tmp_path_factory):
    """A BPE tokenizer trained here on memgen's own text (filler and events of every domain),
    saved as tokenizer.json: a local Hugging Face tokenizer, no download."""
    import numpy as np
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from memgen.render.text.domain import available_domains, load_domain

    corpus = []
    rng = np.random.default_rng(0)
    for name in available_domains():
        dom = load_domain(name)
        corpus += dom.filler.sample(rng, 400, dom.filler.counts(_Chars()))[0]
        for temps in dom.phrasings.values():
            corpus += [t.render(key=dom.key_surface(3), value=dom.value_surface(5), lookalike="x",
                                ordinal="second", k=2) for t in temps]
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=800, special_tokens=["[UNK]"]))
    folder = tmp_path_factory.mktemp("hf_tok")
    tok.save(str(folder / "tokenizer.json"))
    return folder


class _Chars:
    """A stand-in counter (characters) to sample filler before any tokenizer exists."""

    name = "chars"

    def count_many(self, texts):
        return [len(t) for t in texts]
