"""Domains: template folders that keep the write-signal and no-digit promises; adding one is
adding a folder."""

from __future__ import annotations

import shutil

import pytest

from memgen.format.errors import UsageError
from memgen.ir.episode import Episode, Event, Query
from memgen.ir.replay import replay
from memgen.render.text.domain import CATEGORIES, CUE_WORDS, TEMPLATE_ROOT, available_domains, has_cue, load_domain
from memgen.render.text.episode import render_text

DOMAINS = available_domains()


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_category_has_at_least_three_phrasings(domain):
    dom = load_domain(domain)
    for c in CATEGORIES:
        assert len(dom.sources[c]) >= 3, (domain, c)


@pytest.mark.parametrize("domain", DOMAINS)
def test_explicit_writes_carry_a_cue_and_silent_writes_never_do(domain):
    dom = load_domain(domain)
    key, value = dom.key_surface(11), dom.value_surface(22)
    for c in ("write", "overwrite"):
        for t in dom.phrasings[c]:
            assert has_cue(t.render(key=key, value=value)), t
    for t in dom.phrasings["silent_write"]:
        text = t.render(key=key, value=value)
        assert not has_cue(text), text
    assert {"note", "remember", "update", "record", "log", "set", "change"} <= CUE_WORDS


@pytest.mark.parametrize("domain", DOMAINS)
def test_filler_grammar_rarely_repeats_a_sentence(domain):
    import numpy as np

    from memgen.render.text.tokenizers import load_tokenizer

    dom = load_domain(domain)
    texts, _, _ = dom.filler.sample(np.random.default_rng(0), 3000, dom.filler.counts(load_tokenizer("cl100k")))
    assert len(set(texts)) / len(texts) > 0.97
    assert not any(has_cue(t) for t in texts)


def _copy_domain(tmp_path, name: str, source: str = "inventory"):
    root = tmp_path / "extra"
    shutil.copytree(TEMPLATE_ROOT / source, root / name)
    return root


def test_a_new_domain_is_a_new_folder(tmp_path, monkeypatch):
    root = _copy_domain(tmp_path, "depot_copy")
    monkeypatch.setenv("MEMGEN_TEMPLATE_PATH", str(root))
    assert "depot_copy" in available_domains()
    ep = replay(Episode("e", "write", (Event("write", 1, 2),), (Query(0, 1, after=0),)))
    row = render_text(ep, target_length=1024, tokenizer="cl100k", domain="depot_copy", seed=0)
    assert row.answer_texts == (load_domain("depot_copy").value_surface(2),)


@pytest.mark.parametrize(("file", "line", "words"), [
    ("silent_write.j2", "Note: the {{ key }} are in bin {{ value }}.", "must not use a write-signal word"),
    ("write.j2", "The {{ key }} are in bin {{ value }}.", "needs a write-signal word"),
    ("negated.j2", "The {{ key }} are not in bin number seven.", "must use {{ value }}"),
    ("delete.j2", "Drop the {{ key }} from bin {{ value }}.", "must not use {{ value }}"),
    ("latest.j2", "Which of the {{ key }} bins is bin {{ k }}?", "without digits"),
    ("lookalike.j2", "Note: {{ key }} in bin {{ value }}.", "must use {{ lookalike }}"),
    ("version.j2", "Which bin held the {{ key|cap }} {{ ordinal }}?", "must use {{ key }}"),
])
def test_a_broken_phrasing_names_its_file_and_the_fix(tmp_path, monkeypatch, file, line, words):
    name = "broken_" + file.split(".")[0]
    root = _copy_domain(tmp_path, name)
    (root / name / file).write_text(line + "\n")
    monkeypatch.setenv("MEMGEN_TEMPLATE_PATH", str(root))
    with pytest.raises(UsageError) as e:
        load_domain(name)
    assert file in e.value.message and words in e.value.message


def test_filler_that_could_spell_a_key_is_refused(tmp_path, monkeypatch):
    name = "leaky_filler"
    root = _copy_domain(tmp_path, name)
    cfg = (root / name / "domain.yaml").read_text()
    # every material and item word appears in filler: only the finish (which the lookalike
    # alters) is left to tell a key apart from prose
    words = [cfg.split(f"    {part}: [", 1)[1].split("]", 1)[0].replace("\n", " ") for part in ("material", "item")]
    cfg = cfg.replace("    vehicle: [forklift,", f"    vehicle: [{', '.join(words)}, forklift,")
    (root / name / "domain.yaml").write_text(cfg)
    monkeypatch.setenv("MEMGEN_TEMPLATE_PATH", str(root))
    with pytest.raises(UsageError, match="filler shares words"):
        load_domain(name)


def test_unknown_domain_lists_the_choices():
    with pytest.raises(UsageError, match="choose from: .*inventory"):
        load_domain("no_such_domain")
