"""Report and eval folders are written whole: a failure while writing (here: the plots fail
halfway, as a full disk or a kill would stop them) leaves the earlier folder exactly as it was;
a folder holding someone else's files is refused; two model names that would write one file
are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from test_score_command import predictions_file

from memgen.cli import main
from memgen.format.errors import UsageError


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _score(folder, preds, out, *extra):
    return CliRunner().invoke(main, ["score", "--dataset", str(folder), "--predictions", str(preds),
                                     "--config", "mixed-token-128", "--out", str(out), *extra])


def test_a_report_that_fails_halfway_leaves_the_earlier_report_whole(hand_folder, tmp_path, monkeypatch):
    out = tmp_path / "report"
    first = _score(hand_folder, predictions_file(hand_folder, tmp_path / "a.jsonl"), out)
    assert first.exit_code == 0, first.output
    before = _tree(out)

    import memgen.scorers.plots as plots

    def half(rep, folder):
        (Path(folder) / "heatmap.png").write_bytes(b"half a png")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plots, "write_plots", half)
    again = _score(hand_folder, predictions_file(hand_folder, tmp_path / "b.jsonl", wrong=5), out)
    assert again.exit_code == 2 and "nothing was changed" in again.output
    assert _tree(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_folder_with_foreign_files_is_refused(hand_folder, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    r = _score(hand_folder, predictions_file(hand_folder, tmp_path / "a.jsonl"), out)
    assert r.exit_code == 2 and "did not write" in r.output
    assert _tree(out) == {"thesis.tex": b"precious"}


def test_two_names_that_would_write_one_file_are_refused(hand_folder, tmp_path):
    p = predictions_file(hand_folder, tmp_path / "a.jsonl")
    r = CliRunner().invoke(main, ["score", "--dataset", str(hand_folder), "--predictions", str(p),
                                  "--predictions", str(p), "--name", "a/b", "--name", "a_b",
                                  "--config", "mixed-token-128", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "same file" in r.output
    assert not (tmp_path / "r").exists()


def test_eval_predictions_folder_is_written_whole(model_dataset, tmp_path, monkeypatch):
    from memgen.evaluation import predict

    out = tmp_path / "preds"
    ev = predict.evaluate(model_dataset, ["hybrid"], config="mixed-chunk-2048", out=out)
    before = _tree(out)

    def broken_summary(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(predict.Evaluation, "summary", broken_summary)
    with pytest.raises(UsageError, match="nothing was changed"):
        predict.write_predictions(ev, out)
    assert _tree(out) == before
