"""memgen audit: shortcut classifiers and no-memory heuristics over a text dataset."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from memgen.audit.classify import classify
from memgen.audit.heuristics import answers
from memgen.audit.report import MAX_AUC, Audit, audit_dataset
from memgen.audit.units import FILLER, KEY_MASK, units
from memgen.cli import main
from memgen.render.text.domain import load_domain


def _row(context: str, events: list[dict], queries: list[dict], domain: str = "travel") -> dict:
    return {"context": context, "domain": domain, "events": events, "queries": queries}


def _event(op, key, value, start, end, kind="", alias=-1):
    return {"op": op, "key": key, "value": value, "kind": kind, "alias": alias, "start": start, "end": end}


def test_sentences_are_labelled_by_op_and_kind_with_keys_masked():
    dom = load_domain("accounts")
    key, other = dom.key_surface(3), dom.key_surface(900)
    write = f"Note: the username of {key} is {dom.value_surface(1)}."
    negated = f"The username of {key} is not {dom.value_surface(2)}."
    filler = f"Quinn reset the desk phone of {other} and then sighed. It rained."
    ctx = f"{write}\n\n{filler}\n\n{negated}"
    a, b = ctx.index(negated), len(ctx)
    row = _row(ctx, [_event("write", 3, 1, 0, len(write)), _event("distractor", 3, 2, a, b, "negated")],
               [], "accounts")
    got = units(row, 0)
    assert [u.label for u in got] == ["write", FILLER, FILLER, "negated"]
    # a middle initial does not end a sentence; every key-shaped string is masked, the episode's or not
    assert got[1].text == f"Quinn reset the desk phone of {KEY_MASK} and then sighed."
    assert KEY_MASK in got[0].text and key not in got[0].text


def test_heuristics_read_the_first_and_last_value_named_with_the_key():
    dom = load_domain("travel")
    key = dom.key_surface(5)
    v1, v2, v3 = (dom.value_surface(i) for i in (1, 2, 3))
    s1 = f"Note: {key} is booked on flight {v1}."
    s2 = f"Update: {key} is on flight {v2} instead of {v3}."
    ctx = f"{s1}\n\n{s2}"
    row = _row(ctx, [_event("write", 5, 1, 0, len(s1)), _event("overwrite", 5, 2, len(s1) + 2, len(ctx))],
               [{"key": 5, "start": -1, "end": -1, "probe": "overwrite", "answer_text": v2},
                {"key": 6, "start": -1, "end": -1, "probe": "write", "answer_text": "unknown"}])
    got = answers(row, units(row, 0))
    assert got[0] == {"last": v3, "first": v1, "unknown": "unknown"}
    assert got[1]["last"] == got[1]["first"] == "unknown"


def test_a_separable_task_scores_near_one_and_a_random_one_near_a_half():
    pos = [f"note the flight {i}" for i in range(200)]
    neg = [f"the cat sat {i}" for i in range(200)]
    eps = [i % 20 for i in range(200)]
    sharp = classify("t", pos, eps, neg, eps, "notes", "cats")
    assert sharp.auc > 0.99 and "w:note" in sharp.toward_positive
    blur = classify("t", pos, eps, pos, eps, "a", "b")
    assert abs(blur.auc - 0.5) < 0.1


def test_too_few_episodes_give_no_auc_rather_than_a_wrong_one():
    assert classify("t", ["a b"], [0], ["c d"], [0], "x", "y").auc is None


def test_misses_name_each_target_that_is_not_met():
    from memgen.audit.classify import TaskResult

    t = TaskResult("events_vs_filler", "events", "filler", 10, 5, MAX_AUC + 0.1, (), ())
    audit = Audit("ds", ("c",), 1, {}, (t,), {"overwrite": {"last": 0.9, "first": 0.1, "unknown": 0.0},
                                             "write": {"last": 1.0, "first": 1.0, "unknown": 0.0}},
                  {"overwrite": 10, "write": 10})
    assert audit.misses() == ["events_vs_filler: AUC 0.900 > 0.8",
                              "overwrite: heuristic 'last' reaches 90.0% > 50%"]


@pytest.mark.slow
def test_audit_of_a_generated_dataset_reports_every_task_and_probe(generated_text):
    result = audit_dataset(generated_text)
    names = [t.name for t in result.tasks]
    assert names[:2] == ["events_vs_filler", "silent_write_vs_filler"]
    assert {f"{k}_vs_writes" for k in ("negated", "hypothetical", "unconfirmed", "rejected", "lookalike")} <= set(names)
    assert all(t.auc is None or 0.0 <= t.auc <= 1.0 for t in result.tasks)
    assert set(result.heuristics) == set(result.queries) and "overwrite" in result.heuristics
    assert result.sentences[FILLER] > result.sentences["write"]


@pytest.mark.slow
def test_cli_prints_the_tables_and_writes_json_and_a_plot(generated_text, tmp_path):
    out, png = tmp_path / "audit.json", tmp_path / "audit.png"
    r = CliRunner().invoke(main, ["audit", str(generated_text), "--config", "mixed-text-2048", "--json", str(out),
                                  "--plot", str(png)])
    assert r.exit_code == 0, r.output
    assert "| events vs filler |" in r.output and "| probe | queries | last | first | unknown | best |" in r.output
    data = json.loads(out.read_text())
    assert data["configs"] == ["mixed-text-2048"] and data["tasks"][0]["name"] == "events_vs_filler"
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_refuses_a_token_dataset_and_a_missing_folder_with_one_line(generated_text, tmp_path):
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import Request

    tok = tmp_path / "tok"
    generate(Request(families=("write",), renderings=("token",), lengths=(1024,), episodes=2, seed=1), tok)
    for args, code, says in ((["audit", str(tok)], 2, "reads text configs"),
                             (["audit", str(tmp_path / "nothing")], 1, "no such dataset folder"),
                             (["audit", str(generated_text), "--config", "nope"], 2, "not in")):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == code and says in r.output and r.output.count("\n") == 1, r.output
