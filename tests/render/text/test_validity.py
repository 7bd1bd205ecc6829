"""Validity rules of the text rendering: facts are stated plainly, distractors never presuppose
a value, look-alikes name other entities, filler carries hard negatives, and a domain that
breaks a rule is refused when it loads."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from memgen.format.errors import UsageError
from memgen.ir.episode import Episode, Event, Query
from memgen.ir.replay import replay
from memgen.render.text.domain import (
    HEDGE_WORDS,
    PRESUPPOSING_WORDS,
    TEMPLATE_ROOT,
    available_domains,
    load_domain,
    words,
)
from memgen.render.text.episode import render_text
from memgen.render.text.filler import Others

DOMAINS = available_domains()


def _domain_with(tmp_path, monkeypatch, name: str, file: str, text: str, source: str = "travel"):
    root = tmp_path / "extra"
    shutil.copytree(TEMPLATE_ROOT / source, root / name)
    if file == "domain.yaml":
        cfg = (root / name / file).read_text()
        old, new = text
        assert old in cfg
        (root / name / file).write_text(cfg.replace(old, new))
    else:
        (root / name / file).write_text(text + "\n")
    monkeypatch.setenv("MEMGEN_TEMPLATE_PATH", str(root))
    return name


@pytest.mark.parametrize(("file", "line", "says"), [
    ("silent_write.j2", "Everyone in the office seemed to know that {{ key }} meant flight {{ value }}.",
     "hedged or hearsay wording (seemed)"),
    ("silent_write.j2", "{{ colleague }} skimmed the diff and saw {{ key }} on flight {{ value }}.", "(diff)"),
    ("write.j2", "Note: apparently {{ key }} is booked on flight {{ value }}.", "(apparently)"),
    ("lookalike.j2", "Update: {{ lookalike }} has been rebooked onto flight {{ value }}.", "must not presuppose"),
    ("rejected.j2", "A request to switch {{ key }} to flight {{ value }} was denied.", "(switch)"),
    ("unconfirmed.j2", "A colleague says {{ key }} is on flight {{ value }}.", "must say so with a word"),
    ("negated.j2", "The flight for {{ key }} differs from {{ value }}.", "must say so with a word"),
    ("hypothetical.j2", "Booking {{ key }} on {{ value }} costs too much.", "must say so with a word"),
    ("write.j2", "Note: {{ key }} is on flight {{ value }}, replacing {{ old }}.", "only overwrite phrasings"),
    ("negated.j2", "The flight for {{ key }} is not {{ value }} but {{ other }}.", "may use {{ other }}"),
    ("silent_write.j2", "{{ porter }} carried the bags of {{ key }} to flight {{ value }}.", "neither a variable"),
])
def test_a_phrasing_that_breaks_a_validity_rule_is_refused(tmp_path, monkeypatch, file, line, says):
    name = _domain_with(tmp_path, monkeypatch, "bad_" + file.split(".")[0], file, line)
    with pytest.raises(UsageError) as e:
        load_domain(name)
    assert file in e.value.message and says in e.value.message, e.value.message


@pytest.mark.parametrize(("old", "new", "says"), [
    ("    - part: city\n      mode: words\n",
     "    - part: last\n      mode: edit\n    - part: city\n      mode: words\n", "one-letter misspellings"),
    ("words: [Hamburg,", "words: [Lisbonn, Hamburg,", "near-misspelling of 'Lisbon'"),
    ("  fields:\n    tr_party:", "  slots:\n    tr_party:", "now called 'fields'"),
    ("  fields:\n    tr_party:", "  fields:\n    other_key: [somebody]\n    tr_party:", "memgen's own"),
])
def test_a_domain_yaml_that_breaks_a_rule_is_refused(tmp_path, monkeypatch, old, new, says):
    name = _domain_with(tmp_path, monkeypatch, "bad_yaml", "domain.yaml", (old, new))
    with pytest.raises(UsageError, match=re.escape(says)):
        load_domain(name)


def test_the_cli_refuses_such_a_domain_with_one_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from memgen.cli import main

    name = _domain_with(tmp_path, monkeypatch, "hearsay", "silent_write.j2",
                        "Rumour has it that {{ key }} is on flight {{ value }}.")
    r = CliRunner().invoke(main, ["generate", "--family", "write", "--rendering", "text", "--domain", name,
                                  "--length", "1024", "--episodes", "1", "--out", str(tmp_path / "ds")])
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and "Traceback" not in r.output and "unconfirmed.j2" in r.output
    assert not (tmp_path / "ds" / "data").exists()


@pytest.mark.parametrize("domain", DOMAINS)
def test_facts_are_never_hedged_and_first_statements_never_presuppose(domain):
    dom = load_domain(domain)
    rng = np.random.default_rng(0)
    others = Others(dom.keys, dom.values, rng)
    for cat in ("write", "overwrite", "silent_write", "delete", "lookalike"):
        for _ in range(60):
            text = dom.render(cat, rng, key="KEY", value="VAL", lookalike="LOOK", old="OLD", other=others.value(),
                              other2=others.value())
            assert not set(words(text)) & HEDGE_WORDS, text
    for cat in ("write", "silent_write", "lookalike", "negated", "hypothetical", "unconfirmed", "rejected"):
        for line in dom.sources[cat]:
            assert not set(words(re.sub(r"\{\{.*?\}\}", " ", line))) & PRESUPPOSING_WORDS, line


@pytest.mark.parametrize("domain", DOMAINS)
def test_lookalikes_name_another_entity_never_a_misspelling(domain):
    from memgen.render.text.domain import _edit_distance

    dom = load_domain(domain)
    for key_id in range(0, 4000, 97):
        key, look = dom.key_surface(key_id), dom.lookalike_surface(key_id, key_id * 7 + 1)
        changed = [(a, b) for a, b in zip(key.split(), look.split(), strict=True) if a != b]
        assert len(changed) == 1, (key, look)
        a, b = changed[0]
        # another code (a letter of a sample code, an initial, a host number) or another word,
        # never a typo of one
        code = any(c.isdigit() for c in a + b) or len(a.rstrip(".")) == 1
        assert code or _edit_distance(a.lower(), b.lower()) >= 3, (key, look)


def test_two_fields_of_one_list_never_name_the_same_person_in_a_sentence():
    from memgen.render.text.tokenizers import load_tokenizer

    dom = load_domain("travel")
    people = set(dom.filler.fields["person"].tolist()) | set(dom.filler.fields["colleague"].tolist())
    texts, _, _ = dom.filler.sample(np.random.default_rng(1), 4000, dom.filler.counts(load_tokenizer("cl100k")))
    for t in texts:
        named = [p for p in people if len(re.findall(rf"\b{re.escape(p.lower())}\b", t.lower())) > 1]
        assert not named, t


def _episode() -> Episode:
    events = tuple(Event("write", k, 10 + k) for k in range(6))
    events += (Event("write", 7, 30, signal=False), Event("write", 1, 31), Event("distractor", 2, 40, kind="negated"))
    return replay(Episode("v", "mixed", events, tuple(Query(i, k, after=len(events) - 1)
                                                     for i, k in enumerate((0, 1, 2, 7)))))


@pytest.mark.parametrize("domain", DOMAINS)
def test_filler_holds_hard_negatives_of_the_episode_shapes_but_never_its_surfaces(domain):
    dom = load_domain(domain)
    ep = _episode()
    row = render_text(ep, target_length=4096, tokenizer="cl100k", domain=domain, seed=11)
    ours = {dom.key_surface(k) for k in range(8)} | {dom.value_surface(e.value) for e in ep.events}
    spans = sorted(row.event_spans)
    filler = " ".join(row.context[a:b] for a, b in zip([0] + [e for _, e in spans], [s for s, _ in spans] + [None],
                                                       strict=True))
    keys, values = dom.keys.pattern().findall(filler), dom.values.pattern().findall(filler)
    assert len(keys) >= 20 and len(values) >= 20  # other travellers, hosts, samples ... and their codes
    assert not (set(keys) | set(values)) & ours
    assert not any(s.lower() in filler.lower() for s in ours)
    sentences = re.split(r"(?<=[.!?])(?<! [A-Z]\.)\s+", filler)
    with_value = sum(bool(dom.values.pattern().search(t)) for t in sentences)
    assert with_value / len(sentences) > 0.3  # a digit (a code) no longer tells an event from filler


def test_colleagues_of_passing_mentions_also_come_and_go_in_filler():
    dom = load_domain("lab_notebook")
    colleagues = set(dom.filler.fields["colleague"].tolist())
    assert any("colleague" in t.fields for t in dom.phrasings["silent_write"])
    assert any("colleague" in t.fields for t in dom.filler.templates)
    for seed in range(40):  # an episode whose passing mention names a colleague
        row = render_text(_episode(), target_length=6000, tokenizer="cl100k", domain="lab_notebook", seed=seed)
        silent = row.context[slice(*row.event_spans[6])]
        if any(re.search(rf"\b{c}\b", silent) for c in colleagues):
            break
    else:
        pytest.fail("no passing mention named a colleague in 40 episodes")
    rest = row.context[:row.event_spans[0][0]] + row.context[row.event_spans[-1][1]:]
    assert any(re.search(rf"\b{c}\b", rest) for c in colleagues)
