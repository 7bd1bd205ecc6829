"""The command line: one clear line and an exit code for every bad input, never a traceback."""

import inspect
import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from memgen.cli import main
from memgen.format.vocab import Vocab
from memgen.generators.knobs import Knobs
from memgen.io.dataset import Dataset
from memgen.pipeline.request import Request
from memgen.render.registry import RenderOptions


def run(*args):
    p = subprocess.run([sys.executable, "-m", "memgen.cli", *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.parametrize("args, code, words", [
    (["generate", "--family", "bogus", "--out", "{tmp}/o"], 2, "unknown family 'bogus'"),
    (["generate", "--family", "write", "--rendering", "vhs", "--out", "{tmp}/o"], 2, "unknown rendering"),
    (["generate", "--family", "overwrite", "--length", "512", "--keys", "200", "--out", "{tmp}/o"], 2,
     "needs at least"),
    (["generate", "--family", "write", "--episodes", "0", "--out", "{tmp}/o"], 2, "--episodes"),
    (["generate", "--family", "write", "--length", "1000", "--rendering", "chunk", "--out", "{tmp}/o"], 2,
     "multiple of --chunk-size"),
    (["generate", "--family", "write", "--out", "/proc/memgen-cannot-write"], 2, "cannot write"),
    (["generate", "--family", "write", "--depth", "0.9,0.1", "--out", "{tmp}/o"], 2, "--depth"),
    (["verify", "{tmp}/nothing"], 1, "not a memgen dataset"),
])
def test_bad_input_gets_one_line_and_an_exit_code(tmp_path, args, code, words):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    rc, out, err = run(*args)
    assert rc == code, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("memgen: error:") and words in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*.parquet"))


def test_generate_verify_show_end_to_end(tmp_path):
    r = CliRunner()
    out = str(tmp_path / "ds")
    res = r.invoke(main, ["generate", "--family", "overwrite,discard", "--rendering", "chunk", "--length", "2048",
                          "--episodes", "3", "--out", out, "--quiet"])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["verify", out])
    assert res.exit_code == 0 and "all checksums match" in res.output
    res = r.invoke(main, ["show", out, "--config", "discard-chunk-2048", "--index", "2"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "delete" in res.output and "discard" in res.output and "evidence" in res.output


def _default(param: click.Parameter):
    """The option's default as its command sees it (None where it has none)."""
    default = param.to_info_dict()["default"]
    return None if default == () else default


def _shown(default) -> str:
    """How click prints an option's default in --help."""
    if isinstance(default, (tuple, list)):
        return ", ".join(str(d) for d in default)
    return str(default)


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_answers_help_with_its_real_defaults(name):
    cmd = main.commands[name]
    res = CliRunner().invoke(main, [name, "--help"], terminal_width=100)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())  # help wraps lines anywhere
    assert f"main {name} [OPTIONS]" in text and " ".join(cmd.help.split("\n")[0].split()) in text
    for param in cmd.params:
        if not isinstance(param, click.Option):
            continue
        assert param.opts[0] in text, param.opts[0]
        if param.show_default and not param.is_flag and _default(param) is not None:
            # show_default may name the default in words instead ("a blank line")
            shown = f"({param.show_default})" if isinstance(param.show_default, str) else _shown(_default(param))
            # a range type adds its bounds after the default: "[default: 4096; 1<=x<=...]"
            assert f"[default: {shown}]" in text or f"[default: {shown};" in text, param.opts[0]


def test_generate_defaults_are_the_librarys(tmp_path):
    """Every generate option left out lands on the library's own default Request."""
    out = tmp_path / "ds"
    res = CliRunner().invoke(main, ["generate", "--family", "write", "--episodes", "2", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    config = json.loads((out / "manifest.json").read_text())["config"]
    assert config == Request(families=("write",), episodes=2).to_dict()


# every generate option that decides the output, set away from its default
GENERATE_ARGS = ["--family", "discard,mixed", "--rendering", "chunk", "--length", "2048", "--episodes", "3",
                 "--seed", "7", "--split", "dev", "--shard-size", "2", "--keys", "6", "--overwrites", "4",
                 "--distractors", "3", "--distractor-kinds", "negated,rejected", "--silent-share", "0.5",
                 "--deletes", "2", "--rewrite-share", "0.5", "--absent-keys", "1", "--queries", "5",
                 "--query-position", "interleaved", "--max-version", "40", "--depth", "0.1,0.9",
                 "--spacing", "powerlaw", "--alpha", "1.5", "--chunk-size", "64", "--layout-chunk", "32",
                 "--segments", "2", "--vocab-size", "8192", "--key-tokens", "128", "--key-length", "3",
                 "--values", "512", "--tokenizer", "o200k", "--domain", "inventory", "--format", "arrow"]


def test_every_generate_option_reaches_the_request_and_the_output(tmp_path):
    out = tmp_path / "ds"
    res = CliRunner().invoke(main, ["generate", *GENERATE_ARGS, "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    expected = Request(
        families=("discard", "mixed"), renderings=("chunk",), lengths=(2048,), episodes=3, seed=7, split="dev",
        shard_size=2,
        knobs=Knobs(keys=6, overwrites=4, distractors=3, distractor_kinds=("negated", "rejected"), silent_share=0.5,
                    deletes=2, rewrite_share=0.5, absent_keys=1, queries=5, query_position="interleaved",
                    max_version=40),
        render=RenderOptions(vocab=Vocab(vocab_size=8192, key_tokens=128, key_length=3, values=512, max_version=40),
                             chunk_size=64, layout_chunk=32, segments=2, depth=(0.1, 0.9), spacing="powerlaw",
                             alpha=1.5, tokenizer="o200k", domain="inventory"),
        format="arrow")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"] == expected.to_dict()
    assert fields_left_at_default(expected) == []
    shards = manifest["configs"]["discard-chunk-2048"]["shards"]
    assert [Path(s["path"]).name for s in shards] == ["dev-00000-of-00002.arrow", "dev-00001-of-00002.arrow"]
    rows = Dataset.open(out).table("discard-chunk-2048").to_pylist()
    assert len(rows) == 3 and {r["chunk_size"] for r in rows} == {64}
    assert all(len(r["queries"]) == 5 for r in rows)
    assert max(t for r in rows for t in r["input_ids"]) >= Vocab().vocab_size  # ids past the default vocab


def test_generate_passes_where_to_run_to_the_job(monkeypatch):
    """--workers, --engine and --address never change the bytes (so the manifest does not record
    them): they reach ``generate()`` as given, and are left to its defaults when left out."""
    from memgen.pipeline import engines, job

    signature = inspect.signature(job.generate)
    calls = []
    monkeypatch.setattr(engines, "prestart", lambda *a: None)
    monkeypatch.setattr(job, "generate", lambda *a, **kw: calls.append(signature.bind(*a, **kw).arguments) or {})
    for args in ([], ["--workers", "3", "--engine", "ray", "--address", "h:1"]):
        res = CliRunner().invoke(main, ["generate", "--family", "write", "--out", "o", "--quiet", *args])
        assert res.exit_code == 0, res.output
    default, given = calls
    # no --workers is None: "local: 1 process; ray: the cluster's CPUs", as --help says
    assert [default[k] for k in ("workers", "engine", "address")] == [
        None, signature.parameters["engine"].default, signature.parameters["address"].default]
    assert [given[k] for k in ("workers", "engine", "address")] == [3, "ray", "h:1"]


def fields_left_at_default(req: Request) -> list[str]:
    """The fields of ``req`` equal to the library's default: none for GENERATE_ARGS, so the test
    above sees any option that never reached the request (``passage_size`` is ``--chunk-size``
    of a text rendering, which this vocabulary cannot render: tests/render/text/test_passages.py
    covers it)."""
    default = Request(families=("write",))
    parts = [("", req, default, [f for f in fields(Request) if f.name not in ("families", "knobs", "render")]),
             ("knobs.", req.knobs, default.knobs, fields(Knobs)),
             ("render.", req.render, default.render,
              [f for f in fields(RenderOptions) if f.name not in ("vocab", "passage_size")]),
             ("vocab.", req.render.vocab, default.render.vocab, fields(Vocab))]
    return [prefix + f.name for prefix, a, b, fs in parts for f in fs if getattr(a, f.name) == getattr(b, f.name)]


@pytest.mark.parametrize("command, library", [("eval", "memgen.evaluation.predict:evaluate"),
                                               ("stress", "memgen.evaluation.stress:stress")])
def test_model_command_defaults_are_the_librarys(command, library, monkeypatch):
    """What ``memgen eval`` / ``memgen stress`` pass when an option is left out is the library
    function's own default, and a given option reaches it."""
    import importlib

    module_name, fn_name = library.split(":")
    module = importlib.import_module(module_name)
    signature = inspect.signature(getattr(module, fn_name))
    calls = []

    def fake(*args, **kwargs):
        calls.append(signature.bind(*args, **kwargs).arguments)
        raise click.exceptions.Exit(0)

    monkeypatch.setattr(module, fn_name, fake)
    base = ["--dataset", "ds"] if command == "eval" else []
    res = CliRunner().invoke(main.commands[command], [*base, "--quiet"])
    assert res.exit_code == 0, res.output
    (got,) = calls
    cmd = main.commands[command]
    for param in cmd.params:
        if param.name in signature.parameters and param.name != "dataset":
            want = signature.parameters[param.name].default
            assert got.get(param.name, want) == _default(param) == want, param.name

    given = {"eval": ["--dataset", "ds", "--model", "sparse:k=2", "--model", "hybrid", "--config", "c",
                      "--out", "o", "--workers", "2", "--engine", "ray", "--address", "h:1"],
             "stress": ["--length", "4096", "--episodes", "3", "--seed", "9", "--model", "hybrid",
                        "--dataset", "d", "--out", "o"]}[command]
    calls.clear()
    assert CliRunner().invoke(cmd, [*given, "--quiet"]).exit_code == 0
    (got,) = calls
    want = {"eval": {"dataset": Path("ds"), "models": ("sparse:k=2", "hybrid"), "config": "c", "out": Path("o"),
                     "workers": 2, "engine": "ray", "address": "h:1"},
            "stress": {"length": 4096, "episodes": 3, "seed": 9, "models": ("hybrid",), "dataset": Path("d"),
                       "out": Path("o")}}[command]
    assert {k: got[k] for k in want} == want


@pytest.mark.parametrize("module, extra, command", [
    ("matplotlib", "plots", lambda ds, tmp: ["score", "--dataset", str(ds), "--predictions", str(tmp / "p.jsonl"),
                                             "--out", str(tmp / "report")]),
    ("huggingface_hub", "hub", lambda ds, tmp: ["publish", str(ds), "--repo-id", "a/b", "--dry-run"]),
])
def test_a_missing_extra_is_one_line_naming_it(small_dataset, tmp_path, monkeypatch, module, extra, command):
    """The base install leaves out plotting and the Hub: a command that needs them says which extra."""
    from memgen.evaluation.predict import evaluate, write_predictions

    write_predictions(evaluate(small_dataset, ["oracle"], config="write-token-1024"), tmp_path / "preds")
    (tmp_path / "p.jsonl").write_bytes((tmp_path / "preds" / "oracle.jsonl").read_bytes())
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # what import sees when the package is not installed
    res = CliRunner().invoke(main, command(small_dataset, tmp_path))
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("memgen: error: ") and module in line and f"pip install 'memgen-bench[{extra}]'" in line
    assert not (tmp_path / "report").exists()
