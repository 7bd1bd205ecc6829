"""Report and eval folders are written whole: a failure while writing (here: the plots fail
halfway, as a full disk or a kill would stop them) leaves the earlier folder exactly as it was;
a folder holding someone else's files is refused; two model names that would write one file
are refused."""

from __future__ import annotations

import os
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


# ---- disk faults: one line, no traceback, nothing half-written --------------------------------


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """Writes to files under ``tmp_path/out*`` (and its temporary sibling ``.out*``) fail as the
    kernel says ``errno`` (ENOSPC by default; set ``full_disk.errno``): every writer in the
    process is held to it, whoever opens the file."""
    import builtins
    import errno as codes

    real_open = builtins.open

    class Fault:
        errno = codes.ENOSPC

    class Failing:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            raise OSError(Fault.errno, os.strerror(Fault.errno))

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    def fake_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        ours = str(file).startswith((str(tmp_path / "out"), str(tmp_path / ".out")))
        if ours and any(m in mode for m in "wax"):
            return Failing(f)
        return f

    import io

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)  # pathlib's write_text / write_bytes open through io
    return Fault


def _leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".tmp-" in p.name)


@pytest.mark.parametrize("code, words", [(28, "no space left on"), (27, "file too large")])
def test_generate_on_a_full_disk_is_one_line_and_leaves_no_half_file(tmp_path, full_disk, code, words):
    full_disk.errno = code
    r = CliRunner().invoke(main, ["generate", "--family", "write", "--length", "256", "--episodes", "2",
                                  "--quiet", "--out", str(tmp_path / "out")])
    assert r.exit_code in (1, 2) and "Traceback" not in r.output
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("memgen: error: ") and words in lines[0].lower(), r.stderr
    assert not _leftovers(tmp_path) and not (tmp_path / "out" / "README.md").exists()


def test_score_out_on_a_full_disk_leaves_no_report(hand_folder, tmp_path, full_disk):
    r = _score(hand_folder, predictions_file(hand_folder, tmp_path / "a.jsonl"), tmp_path / "out")
    assert r.exit_code in (1, 2) and "no space left" in r.stderr.lower() and "Traceback" not in r.output
    assert not (tmp_path / "out").exists() and not _leftovers(tmp_path)


@pytest.mark.parametrize("target", ["folder", "fifo"])
def test_a_json_output_that_is_a_folder_or_a_special_file_is_refused_and_left_alone(tmp_path, target):
    """(A FIFO of the test's own stands for a device: a test must never risk a real /dev node.)"""
    import stat

    from memgen.io.atomic import atomic_write_text

    path = tmp_path / "report.json"
    path.mkdir() if target == "folder" else os.mkfifo(path)
    with pytest.raises(UsageError, match="is a folder|not a regular file"):
        atomic_write_text(path, "{}")
    assert path.is_dir() if target == "folder" else stat.S_ISFIFO(path.stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_stress_json_into_a_folder_is_one_line(tmp_path):
    (tmp_path / "r.json").mkdir()
    r = CliRunner().invoke(main, ["stress", "--length", "4096", "--episodes", "1", "--model", "oracle", "--quiet",
                                  "--json", str(tmp_path / "r.json")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "r.json: is a folder" in r.stderr and (tmp_path / "r.json").is_dir()


@pytest.mark.parametrize("fmt, name", [("jsonl", "out.jsonl"), ("lm-eval", "out")])
def test_export_on_a_full_disk_is_one_line_and_leaves_no_output(text_dataset, tmp_path, full_disk, fmt, name):
    r = CliRunner().invoke(main, ["export", str(text_dataset), "--format", fmt, "--out", str(tmp_path / name)])
    assert r.exit_code in (1, 2) and "Traceback" not in r.output, r.output
    assert "no space left on" in r.stderr.lower() and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / name).exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_eval_out_on_a_full_disk_leaves_no_predictions(model_dataset, tmp_path, full_disk):
    r = CliRunner().invoke(main, ["eval", "--dataset", str(model_dataset), "--config", "mixed-chunk-2048",
                                  "--model", "oracle", "--out", str(tmp_path / "out"), "--quiet"])
    assert r.exit_code in (1, 2) and "Traceback" not in r.output and "no space left" in r.stderr.lower(), r.output
    assert not (tmp_path / "out").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
