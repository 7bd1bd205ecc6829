"""``memgen score`` through click: output formats, comparison, --out, and one-line errors
(through the ``memgen`` group, which turns MemgenError into one line and an exit code)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from scorer_helpers import VOCAB

from memgen.cli import main
from memgen.cli.score import score
from memgen.format.errors import DataError, UsageError
from memgen.scorers.dataset import read_dataset

CFG = "mixed-token-128"


def predictions_file(folder: Path, path: Path, wrong: int = 0) -> Path:
    """Token predictions for the token config, the first ``wrong`` of them answered 'unknown'."""
    f = read_dataset(folder, config=CFG)
    ids = f.ids.to_pylist()
    with open(path, "w") as fh:
        for i in range(f.n_queries):
            a = int(f.answer[i])
            t = VOCAB.absent_id if a < 0 or i < wrong else VOCAB.value_offset + a
            fh.write(json.dumps({"id": ids[f.row[i]], "qid": int(f.qid[i]), "prediction": t}) + "\n")
    return path


def test_markdown_report_on_stdout(hand_folder, tmp_path):
    p = predictions_file(hand_folder, tmp_path / "model.jsonl")
    r = CliRunner().invoke(score, ["--dataset", str(hand_folder), "--predictions", str(p), "--config", CFG])
    assert r.exit_code == 0, r.output
    assert "| **all** | 100.0% [84.5, 100.0] 21/21 |" in r.stdout
    assert "## Accuracy by depth of the deciding event" in r.stdout


def test_json_report_on_stdout(hand_folder, tmp_path):
    p = predictions_file(hand_folder, tmp_path / "model.jsonl", wrong=3)
    r = CliRunner().invoke(score, ["--dataset", str(hand_folder), "--predictions", str(p), "--format", "json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    (m,) = data["models"]
    assert m["name"] == "model" and m["queries"] == 21
    assert m["outcomes"]["false_absent"] == 3 and m["outcomes"]["correct"] == 18  # q0..q2 hold values
    assert "left out: mixed-text-128" in r.stderr


def test_two_models_side_by_side_and_out_folder(hand_folder, tmp_path):
    a = predictions_file(hand_folder, tmp_path / "a.jsonl")
    b = predictions_file(hand_folder, tmp_path / "b.jsonl", wrong=7)
    out = tmp_path / "report"
    r = CliRunner().invoke(score, ["--dataset", str(hand_folder), "--config", CFG, "--predictions", str(a),
                                   "--predictions", str(b), "--name", "slots", "--name", "sparse",
                                   "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "| probe | slots | sparse |" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "depth.png", "heatmap.png", "length.png", "outcomes.png", "queries-slots.parquet", "queries-sparse.parquet",
        "report.json", "report.md", "updates.png"]
    assert json.loads((out / "report.json").read_text())["models"][1]["name"] == "sparse"


def test_bad_predictions_raise_data_error(hand_folder, tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"id": "tok-0", "qid": 0, "prediction": 1011}\n{"id": "tok-0", "qid": 1, "predic')
    r = CliRunner().invoke(score, ["--dataset", str(hand_folder), "--predictions", str(p)])
    assert isinstance(r.exception, DataError)
    assert r.exception.message == f"{p}:2: truncated file (the last line is incomplete JSON)"


def test_name_count_must_match(hand_folder, tmp_path):
    p = predictions_file(hand_folder, tmp_path / "m.jsonl")
    r = CliRunner().invoke(score, ["--dataset", str(hand_folder), "--predictions", str(p), "--name", "a",
                                   "--name", "b"])
    assert isinstance(r.exception, UsageError)


def test_errors_are_one_line_and_an_exit_code(hand_folder, tmp_path):
    p = predictions_file(hand_folder, tmp_path / "m.jsonl")
    lines = p.read_text().splitlines()
    lines[4] = lines[4].replace('"tok-', '"zzz-')
    p.write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(main, ["score", "--dataset", str(hand_folder), "--predictions", str(p)])
    assert r.exit_code == 1
    assert r.stderr == f"memgen: error: {p}:5: id 'zzz-0' is not in the dataset {hand_folder}\n"
    assert r.stdout == ""

    r = CliRunner().invoke(main, ["score", "--dataset", str(hand_folder), "--predictions", str(p),
                                  "--config", "nope"])
    assert r.exit_code == 2 and r.stderr.startswith("memgen: error: --config nope: not in")


def test_no_verify_skips_checksums(hand_folder, tmp_path):
    p = predictions_file(hand_folder, tmp_path / "m.jsonl")
    (hand_folder / "data" / CFG / "stray.txt").write_text("not listed in the manifest")
    args = ["--dataset", str(hand_folder), "--predictions", str(p), "--format", "json"]
    r = CliRunner().invoke(score, args)
    assert isinstance(r.exception, DataError) and "fails verification" in r.exception.message
    r = CliRunner().invoke(score, args + ["--no-verify"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["models"][0]["overall"]["accuracy"] == 1.0


def chatty_predictions(frame, path: Path) -> tuple[int, int]:
    """Answers to every question of a generated text dataset, in four styles by question: the
    gold; the gold after the domain's type word ("flight BA 3792"); a sentence holding it; the
    gold and another value of the episode.  Absent golds: "unknown", or a sentence.  Returns the
    (strict, lenient) number of correct answers the styles call for."""
    from memgen.render.text.domain import load_domain, value_surface

    ids = frame.ids.to_pylist()
    strict = lenient = 0
    with open(path, "w") as fh:
        for i in range(frame.n_queries):
            r, gold, style = int(frame.row[i]), frame.answer_text[i], i % 4
            domain = frame.domain[r]
            if frame.answer[i] < 0:
                answer = "unknown" if style < 2 else "It no longer exists: that record was removed."
                strict, lenient = strict + (style < 2), lenient + 1
            elif style == 0:
                answer, strict, lenient = gold, strict + 1, lenient + 1
            elif style == 1:
                answer, strict, lenient = f"{load_domain(domain).thing_value} {gold}", strict + 1, lenient + 1
            elif style == 2:
                answer, lenient = f"I think it is {gold} now.", lenient + 1
            else:
                other = next(v for v in frame.event_values.row(r).tolist() if v != frame.answer[i])
                answer = f"{gold} or {value_surface(domain, other)}"
            fh.write(json.dumps({"id": ids[r], "qid": int(frame.qid[i]), "prediction": answer}) + "\n")
    return strict, lenient


@pytest.mark.slow
def test_strict_and_lenient_side_by_side_with_provenance(generated_text, tmp_path):
    """End to end on a generated text dataset (every family and domain): the report puts strict
    and lenient accuracy side by side, its figures come with the versions and checksums they
    were made from, and the paper's plots are written."""
    frame = read_dataset(generated_text)
    p = tmp_path / "chatty.jsonl"
    want_strict, want_lenient = chatty_predictions(frame, p)
    out = tmp_path / "report"
    r = CliRunner().invoke(main, ["score", "--dataset", str(generated_text), "--predictions", str(p),
                                  "--out", str(out), "--format", "json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data == json.loads((out / "report.json").read_text())
    (m,) = data["models"]
    assert (m["overall"]["correct"], m["overall"]["lenient"]["correct"]) == (want_strict, want_lenient)
    assert m["text_queries"] == m["queries"] == frame.n_queries
    assert sum(m["by_probe"][p]["lenient"]["correct"] for p in m["by_probe"]) == want_lenient
    rows = pq.read_table(out / "queries-chatty.parquet")
    assert rows.column("lenient_outcome").to_pylist().count("correct") == want_lenient

    prov = data["provenance"]
    manifest = json.loads((generated_text / "manifest.json").read_text())
    assert prov["manifest_sha256"] == hashlib.sha256((generated_text / "manifest.json").read_bytes()).hexdigest()
    assert prov["generator_version"] == manifest["generator_version"]
    assert prov["schema_version"] == manifest["schema_version"]
    from memgen import __version__

    assert prov["memgen_version"] == __version__
    assert prov["predictions"] == [{"name": "chatty", "source": str(p),
                                    "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}]
    assert m["sha256"] == prov["predictions"][0]["sha256"]
    assert prov["intervals"]["seed"] == 0 and prov["intervals"]["resamples"] == 1000

    md = (out / "report.md").read_text()
    assert "| probe | chatty | chatty (lenient) |" in md
    assert "## Accuracy by depth of the deciding event x target length" in md
    for name in ("length.png", "depth.png", "heatmap.png", "updates.png", "outcomes.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_out_without_matplotlib_is_one_line_or_no_plots(hand_folder, tmp_path, monkeypatch):
    p = predictions_file(hand_folder, tmp_path / "m.jsonl")
    args = ["score", "--dataset", str(hand_folder), "--predictions", str(p), "--config", CFG]
    r = CliRunner().invoke(main, args + ["--out", str(tmp_path / "a"), "--no-plots"])
    assert r.exit_code == 0, r.output
    assert sorted(f.name for f in (tmp_path / "a").iterdir()) == ["queries-m.parquet", "report.json", "report.md"]
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the [plots] extra were not installed
    r = CliRunner().invoke(main, args + ["--out", str(tmp_path / "b")])
    assert r.exit_code == 2 and not (tmp_path / "b").exists()
    assert r.stderr == ("memgen: error: --out writes plots, which need matplotlib: pip install "
                        "'memgen-bench[plots]', or pass --no-plots\n")
