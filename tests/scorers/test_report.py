"""Reports: Wilson and clustered intervals, the slices (depth, updates, distractors), JSON, Markdown, plots."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scorer_helpers import VOCAB, catalogue_episode, episodes_table, oracle_tokens

from memgen.ir.episode import Episode, Event, Query
from memgen.scorers.aggregate import fmt_cell, report, wilson
from memgen.scorers.frame import build_frame
from memgen.scorers.plots import write_plots
from memgen.scorers.scoring import score


def test_wilson_matches_known_intervals():
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson(10, 10)
    assert lo == pytest.approx(0.7225, abs=1e-4) and hi == 1.0
    lo, hi = wilson(595, 600)
    assert lo == pytest.approx(0.98058, abs=1e-4) and hi == pytest.approx(0.99644, abs=1e-4)
    assert all(math.isnan(x) for x in wilson(0, 0))


def test_cell_format_shows_interval_and_counts():
    from memgen.scorers.aggregate import cell

    assert fmt_cell(cell(595, 600)) == "99.2% [98.1, 99.6] 595/600"
    assert fmt_cell(cell(291, 300), ci=False) == "97.0% 291/300"
    assert fmt_cell(cell(0, 0)) == "–"


@pytest.fixture(scope="module")
def frame():
    return build_frame(episodes_table([catalogue_episode()]))


def test_slices_of_the_catalogue_episode(frame):
    # events sit at 100 * i in a context of 1200 tokens; queries come after every event
    assert frame.length[0] == 1200
    assert frame.n_updates.tolist() == [2, 2, 2, 1, 1, 0, 2]
    assert frame.n_distractors.tolist() == [1, 1, 1, 0, 0, 1, 0]
    depth = frame.depth
    assert depth[0] == pytest.approx(200 / 1200)  # the overwrite to 11
    assert depth[1] == 0.0 and depth[2] == 0.0  # version 1 and previous: the first write
    assert depth[3] == pytest.approx(500 / 1200)  # absent: the delete of key 2
    assert depth[4] == pytest.approx(600 / 1200)  # the silent write
    assert math.isnan(depth[5])  # key 4 was never written
    assert depth[6] == pytest.approx(1000 / 1200)  # absent: the delete of key 6


def test_interleaved_query_counts_only_what_came_before():
    ev = (Event("write", 1, 10), Event("distractor", 1, 12, kind="rejected"), Event("overwrite", 1, 11),
          Event("distractor", 1, 13, kind="negated"))
    qs = (Query(0, 1, after=0), Query(1, 1, after=2), Query(2, 1, "version", version=1, after=3))
    f = build_frame(episodes_table([Episode("e", "overwrite", ev, qs)]))
    assert f.answer.tolist() == [10, 11, 10]
    assert f.n_updates.tolist() == [1, 2, 2]
    assert f.n_distractors.tolist() == [0, 1, 2]
    assert f.depth.tolist() == [0.0, 200 / 500, 0.0]


def noisy(frame) -> np.ndarray:
    preds = oracle_tokens(frame)
    preds[0] = VOCAB.value_offset + 10  # stale
    preds[5] = VOCAB.absent_id + 0  # correct (absent)
    preds[3] = VOCAB.value_offset + 20  # resurrected
    return preds


def test_report_json_counts_add_up(frame):
    rep = report([score(frame, oracle_tokens(frame), vocab=VOCAB, name="oracle"),
                  score(frame, noisy(frame), vocab=VOCAB, name="noisy")])
    data = json.loads(rep.to_json())
    oracle, model = data["models"]
    assert oracle["overall"]["accuracy"] == 1.0
    assert model["overall"]["correct"] == 5 and model["overall"]["total"] == 7
    assert model["outcomes"]["stale"] == 1 and model["outcomes"]["resurrected"] == 1
    for m in data["models"]:
        assert sum(c["total"] for c in m["by_probe"].values()) == 7
        for c in m["by_probe"].values():
            assert sum(c["outcomes"].values()) == c["total"]
        for key in ("by_length", "by_depth", "by_updates", "by_distractors"):
            assert sum(c["total"] for c in m[key].values()) == 7
    assert model["by_probe"]["distractor"]["outcomes"]["stale"] == 1  # q0 probes the distractor
    assert model["by_depth"]["n/a"]["total"] == 1
    # one episode: its clustering cannot be measured, so the interval is the per-question Wilson
    assert model["by_updates"]["2"] == {"correct": 3, "total": 4, "accuracy": 0.75, "ci95": list(wilson(3, 4)),
                                        "design_effect": 1.0, "episodes": 1,
                                        "lenient": {"correct": 3, "accuracy": 0.75, "ci95": list(wilson(3, 4)),
                                                    "design_effect": 1.0}}
    for m in data["models"]:
        cells = [c for row in m["depth_by_length"].values() for c in row.values()]
        assert sum(c["total"] for c in cells) == 7  # n per heatmap cell, every query in one


def test_markdown_puts_models_side_by_side(frame):
    a = score(frame, oracle_tokens(frame), vocab=VOCAB, name="m")
    b = score(frame, noisy(frame), vocab=VOCAB, name="m")
    md = report([a, b]).to_markdown()
    assert "| probe | m | m#2 |" in md
    assert "| **all** | 100.0% [64.6, 100.0] 7/7 | 71.4% [35.9, 91.8] 5/7 |" in md
    assert "Lenient scoring is strict scoring for token answers" in md  # token answers: one score
    assert "## Outcomes by probe (share of the probe's queries): m#2" in md
    assert "## Accuracy by values the key had before the query" in md


def test_plots_are_written(frame, tmp_path):
    rep = report([score(frame, oracle_tokens(frame), vocab=VOCAB, name="oracle"),
                  score(frame, noisy(frame), vocab=VOCAB, name="noisy")])
    paths = write_plots(rep, tmp_path / "plots")
    assert [p.name for p in paths] == ["heatmap.png", "length.png", "depth.png", "updates.png", "outcomes.png"]
    for p in paths:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_notebook_rendering_of_token_answers(frame):
    rep = report([score(frame, oracle_tokens(frame), vocab=VOCAB, name="oracle"),
                  score(frame, noisy(frame), vocab=VOCAB, name="noisy")])
    html = rep._repr_html_()
    assert html.count("<table") == 2 and ">lenient</th>" not in html  # ids: one score
    assert "Lenient scoring is strict scoring for token answers." in html
    assert ">71.4% [35.9, 91.8] 5/7</td>" in html  # the noisy model's overall, as in the Markdown
    assert 'title="stale 14.3% (1)"' in html  # one of its 7 answers is stale


def test_printed_tables_escape_control_characters_in_model_names(small_dataset, tmp_path):
    """A predictions file named with a terminal escape prints as the escape's text."""
    from click.testing import CliRunner

    from memgen.cli import main
    from memgen.evaluation.predict import evaluate, write_predictions

    write_predictions(evaluate(small_dataset, ["oracle"], config="write-token-1024"), tmp_path / "preds")
    hostile = tmp_path / "m\x1b[31mred.jsonl"
    hostile.write_bytes((tmp_path / "preds" / "oracle.jsonl").read_bytes())
    res = CliRunner().invoke(main, ["score", "--dataset", str(small_dataset), "--config", "write-token-1024",
                                    "--predictions", str(hostile)])
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output and "\\x1b" in res.output
