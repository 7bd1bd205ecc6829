"""memgen bridge train / eval / encode end to end with a tiny random BERT, then memgen score."""

import json

import pytest
from click.testing import CliRunner

from memgen.cli import main
from memgen.pipeline.job import generate
from memgen.pipeline.request import make_request


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds") / "ds"
    generate(make_request(("overwrite", "discard"), renderings="text", lengths=1024, episodes=2, queries=3, seed=9),
             root)
    return root


@pytest.fixture(scope="module")
def head(tiny_bert, tmp_path_factory):
    path = tmp_path_factory.mktemp("head") / "oracle-replay.pt"
    cache = path.parent / "cache"
    with pytest.raises(SystemExit) as done:
        main(["bridge", "train", "--encoder", str(tiny_bert), "--episodes", "1", "--family", "overwrite,version",
              "--steps", "3", "--batch", "2", "--cache", str(cache), "--out", str(path), "--quiet"])
    assert done.value.code == 0
    return path


@pytest.mark.slow
def test_train_writes_a_head_and_its_sidecar(head):
    meta = json.loads(head.with_suffix(".json").read_text())
    assert meta["command"].startswith("memgen bridge train --mode oracle --head replay")
    assert meta["training"]["held_out_domain"] == "lab_notebook" and meta["steps"] == 3
    assert len(meta["sha256"]) == 64 and meta["params"] > 1000


@pytest.mark.slow
def test_eval_predictions_are_scored_by_memgen_score(head, tiny_bert, dataset, tmp_path, capsys):
    out = tmp_path / "rep"
    with pytest.raises(SystemExit) as done:
        main(["bridge", "eval", "--dataset", str(dataset), "--head-file", str(head), "--encoder", str(tiny_bert),
              "--cache", str(tmp_path / "cache"), "--out", str(out), "--quiet"])
    assert done.value.code == 0
    assert "overwrite-text-1024" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "oracle-replay.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and all(isinstance(r["prediction"], str) for r in rows)
    breakdown = json.loads((out / "breakdown.json").read_text())["oracle-replay"]
    assert breakdown["queries"] == 12
    assert breakdown["correct"] + sum(breakdown["errors"].values()) == 12
    with pytest.raises(SystemExit) as done:
        main(["score", "--dataset", str(dataset), "--predictions", str(out / "oracle-replay.jsonl"),
              "--format", "json"])
    assert done.value.code == 0
    report = json.loads(capsys.readouterr().out)
    assert report  # memgen score read every prediction


@pytest.mark.slow
def test_encode_fills_the_cache_once(tiny_bert, dataset, tmp_path, capsys):
    for _ in range(2):
        with pytest.raises(SystemExit) as done:
            main(["bridge", "encode", "--dataset", str(dataset), "--encoder", str(tiny_bert), "--cache",
                  str(tmp_path / "c"), "--quiet"])
        assert done.value.code == 0
    assert len(list((tmp_path / "c").glob("*.pt"))) == 2  # one entry per config, not per run


@pytest.mark.parametrize("args, message", [
    (["eval", "--dataset", "{ds}", "--head-file", "{tmp}/none.pt", "--out", "{tmp}/o"], "needs the file"),
    (["eval", "--dataset", "{tmp}/nothing", "--mode", "oracle", "--out", "{tmp}/o"], "no such dataset folder"),
    (["train", "--out", "{tmp}/h.txt"], "ends in .pt"),
    (["train", "--steps", "0", "--out", "{tmp}/h.pt"], "at least 1"),
    (["train", "--mode", "text", "--piece-dropout", "1.5", "--out", "{tmp}/h.pt"], "--piece-dropout"),
    (["train", "--mode", "text", "--surrogates", "-1", "--out", "{tmp}/h.pt"], "--surrogates"),
    (["train", "--readers", "{tmp}/none.pt", "--out", "{tmp}/h.pt"], "--readers is for a text-mode head"),
    (["train", "--mode", "text", "--readers", "{tmp}/none.pt", "--out", "{tmp}/h.pt"], "needs the file"),
    (["encode", "--dataset", "{ds}", "--encoder", "{tmp}", "--layers", "1"], "missing"),
])
def test_bad_input_is_one_line_and_a_nonzero_exit(args, message, dataset, tmp_path, capfd):
    args = [a.format(ds=dataset, tmp=tmp_path) for a in args]
    with pytest.raises(SystemExit) as done:
        main(["bridge", *args])
    assert done.value.code in (1, 2)
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("memgen: error:")


def test_a_tampered_head_file_is_refused(head, tiny_bert, dataset, tmp_path, capfd):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(head.read_bytes()[:-10])
    (tmp_path / "bad.json").write_text(head.with_suffix(".json").read_text())
    with pytest.raises(SystemExit) as done:
        main(["bridge", "eval", "--dataset", str(dataset), "--head-file", str(bad), "--encoder", str(tiny_bert),
              "--out", str(tmp_path / "o")])
    assert done.value.code == 1 and "sha256" in capfd.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_dataset_of_the_training_seed_is_refused(tmp_path):
    from memgen.bridge.episodes import TRAIN_SEED, dataset_episodes
    from memgen.format.errors import UsageError

    root = tmp_path / "ds"
    generate(make_request(("write",), renderings="text", lengths=1024, episodes=1, seed=TRAIN_SEED), root)
    with pytest.raises(UsageError, match="training seed"):
        dataset_episodes(root)


@pytest.mark.slow
def test_text_head_trains_with_renamed_questions_and_piece_dropout(tiny_bert, tmp_path):
    path = tmp_path / "text-replay.pt"
    with pytest.raises(SystemExit) as done:
        main(["bridge", "train", "--mode", "text", "--encoder", str(tiny_bert), "--episodes", "1", "--family",
              "overwrite", "--steps", "3", "--batch", "2", "--surrogates", "1", "--piece-dropout", "0.5",
              "--cache", str(tmp_path / "cache"), "--out", str(path), "--quiet"])
    assert done.value.code == 0
    meta = json.loads(path.with_suffix(".json").read_text())
    assert "--surrogates 1 --piece-dropout 0.5" in meta["command"]
    assert meta["training"]["surrogate_copies"] == 1 and meta["piece_dropout"] == 0.5


@pytest.mark.slow
def test_text_head_with_fixed_readers_learns_only_its_matcher(head, tiny_bert, tmp_path, capfd):
    """--readers copies an oracle head's readers and keeps them: the text head's readers are the
    oracle head's, bit for bit, and its sidecar names the file they came from."""
    import torch

    from memgen.bridge.train import load_head

    path = tmp_path / "text-replay.pt"
    base = ["bridge", "train", "--mode", "text", "--encoder", str(tiny_bert), "--episodes", "1", "--family",
            "overwrite,version", "--steps", "3", "--batch", "2", "--surrogates", "1",
            "--cache", str(tmp_path / "cache"), "--quiet"]
    with pytest.raises(SystemExit) as done:
        main([*base, "--readers", str(head), "--out", str(path)])
    assert done.value.code == 0
    text, meta = load_head(path)
    oracle, oracle_meta = load_head(head)
    assert meta["readers"]["sha256"] == oracle_meta["sha256"] and "--readers oracle-replay.pt" in meta["command"]
    assert meta["readers_fixed"] is True
    for name, value in oracle.head.state_dict().items():
        assert torch.equal(text.head.state_dict()[name], value), name
    torch.manual_seed(0)  # train_head's --seed 0: the weights it started from
    start = type(text)("text", "replay", text.matcher.tag.in_features)
    for part in ("tag", "tag_df", "out"):
        before, after = getattr(start.matcher, part).state_dict(), getattr(text.matcher, part).state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before), part  # the matcher did train
    capfd.readouterr()
    with pytest.raises(SystemExit) as done:
        main([*base, "--head", "transformer", "--readers", str(head), "--out", str(tmp_path / "t.pt")])
    assert done.value.code == 2 and "needs a transformer one" in capfd.readouterr().err
    with pytest.raises(SystemExit) as done:  # one layer of the encoder: other states than the readers read
        main([*base, "--layers", "1", "--readers", str(head), "--out", str(tmp_path / "l.pt")])
    assert done.value.code == 2 and "another encoder" in capfd.readouterr().err
    assert not (tmp_path / "t.pt").exists() and not (tmp_path / "l.pt").exists()
