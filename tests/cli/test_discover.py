"""``memgen list`` (what this install can make and run), ``memgen info DIR`` (what a folder holds
and the knob values it was made with) and ``memgen show`` on the text rendering (sentences and
questions, not ids and spans)."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner
from eco_helpers import one_error_line

from memgen.cli import main


def invoke(*args: str, width: int = 400):
    """``memgen ARGS`` in this process, on a terminal ``width`` columns wide (no wrapping)."""
    return CliRunner(env={"COLUMNS": str(width)}).invoke(main, list(args))


def test_list_names_every_registry_with_knobs_and_defaults():
    from memgen.evaluation.zoo import available_models
    from memgen.generators.registry import FAMILIES
    from memgen.render.text.domain import available_domains

    res = invoke("list", "--json", "--length", "1024")
    assert res.exit_code == 0, res.output
    cat = json.loads(res.stdout)
    assert set(cat["families"]) == set(FAMILIES)
    ow = cat["families"]["overwrite"]["knobs"]
    assert (ow["keys"], ow["overwrites"], ow["queries"], ow["deletes"]) == (4, 8, 4, 0)  # defaults at 1K tokens
    assert cat["families"]["discard"]["knobs"]["deletes"] == 2
    assert "overwritten" in cat["families"]["overwrite"]["description"]
    assert {"token", "chunk", "bridge", "text"} <= set(cat["renderings"])
    assert all(cat["renderings"].values())  # every rendering says what it is
    assert list(cat["domains"]) == available_domains() and "lab_notebook" in cat["domains"]
    assert {"cl100k", "o200k"} <= set(cat["tokenizers"])
    assert list(cat["models"]) == available_models()
    assert cat["models"]["fixed_state"]["knobs"] == {"d": 128, "threshold": 0.5}
    assert cat["selectors"]["bm25"]["knobs"] == {"k": 8, "k1": 1.5, "b": 0.75}
    assert cat["selectors"]["bm25"]["renderings"] == ["text", "chunk"]
    # the defaults scale with length
    big = json.loads(invoke("list", "families", "--json", "--length", "65536").stdout)
    assert set(big) == {"length", "families"} and big["families"]["overwrite"]["knobs"]["keys"] == 256


def test_list_prints_tables_a_person_can_read():
    res = invoke("list", width=160)
    assert res.exit_code == 0, res.output
    for words in ("families", "overwrite", "keys=16, overwrites=32", "renderings", "domains", "lab_notebook",
                  "tokenizers", "cl100k", "models", "fixed_state", "d=128, threshold=0.5", "selectors", "bm25"):
        assert words in res.stdout, words


def test_list_refuses_an_unknown_section():
    res = CliRunner().invoke(main, ["list", "widgets"])
    assert res.exit_code == 2
    one_error_line(res.stderr, "widgets")


def test_info_gives_configs_counts_and_the_resolved_knobs(text_dataset, tmp_path):
    res = invoke("info", str(text_dataset), "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["status"] == "complete" and info["command"].startswith("memgen generate")
    assert list(info["configs"]) == ["overwrite-text-1024", "discard-text-1024"]
    ow, dc = info["configs"]["overwrite-text-1024"], info["configs"]["discard-text-1024"]
    assert ow["episodes"] == 3 and ow["shards"] >= 1 and ow["bytes"] > 0
    assert None not in ow["knobs"].values() and None not in dc["knobs"].values()  # resolved, never null
    assert (ow["knobs"]["keys"], ow["knobs"]["overwrites"], dc["knobs"]["deletes"]) == (4, 8, 2)
    assert ow["domains"] and set(ow["domains"]) <= set(json.loads(invoke("list", "domains", "--json").stdout)
                                                        ["domains"])
    table = invoke("info", str(text_dataset)).stdout
    assert "overwrite-text-1024" in table and "keys=4, overwrites=8" in table and "deletes=2" in table


def test_info_resolves_the_knobs_of_a_manifest_that_stored_none(text_dataset, tmp_path):
    """A folder written before the manifest stored resolved knobs: the family's defaults at the
    config's length fill them in, the same values."""
    from memgen.cli.discover import dataset_info

    old = tmp_path / "old"
    shutil.copytree(text_dataset, old)
    manifest = json.loads((old / "manifest.json").read_text())
    for c in manifest["configs"].values():
        c.pop("knobs", None)
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert dataset_info(old)["configs"] == dataset_info(text_dataset)["configs"]


def test_info_on_a_folder_that_is_no_dataset_is_one_line(tmp_path):
    res = CliRunner().invoke(main, ["info", str(tmp_path)])
    assert res.exit_code == 1
    one_error_line(res.stderr, "not a memgen dataset")


def test_show_prints_each_events_sentence_and_each_question(text_dataset):
    from memgen.io.dataset import Dataset

    row = Dataset.open(text_dataset).table("discard-text-1024").slice(1, 1).to_pylist()[0]
    res = invoke("show", str(text_dataset), "--config", "discard-text-1024", "--index", "1")
    assert res.exit_code == 0, res.output
    text = res.stdout
    for e in row["events"]:
        assert " ".join(row["context"][e["start"]:e["end"]].split()) in text
    for question in row["questions"]:
        assert question in text
    for q in row["queries"]:
        assert q["answer_text"] in text
    assert "-1--1" not in text and "span" not in text
    assert "stale #" in text or "deleted #" in text  # traps named by the events that stated them


def test_show_places_an_interleaved_question_in_the_log(tmp_path):
    from memgen.generators.knobs import Knobs
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import Request

    root = tmp_path / "inter"
    generate(Request(families=("overwrite",), renderings=("text",), lengths=(1024,), episodes=1, seed=2,
                     knobs=Knobs(query_position="interleaved")), root)
    res = invoke("show", str(root))
    assert res.exit_code == 0, res.output
    assert "(in the log at char" in res.stdout


def test_show_keeps_ids_and_spans_for_token_renderings(tmp_path):
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import Request

    root = tmp_path / "tok"
    generate(Request(families=("overwrite",), renderings=("token",), lengths=(512,), episodes=1, seed=2), root)
    res = invoke("show", str(root))
    assert res.exit_code == 0, res.output
    assert "span (tokens)" in res.stdout and "answer slot" in res.stdout


def test_list_leaves_selectors_out_when_selection_is_not_installed(monkeypatch):
    import sys

    from memgen.cli.discover import catalogue

    monkeypatch.setitem(sys.modules, "memgen.selection", None)  # import memgen.selection raises ImportError
    cat = catalogue(1024, ("models", "selectors"))
    assert "models" in cat and "selectors" not in cat
