"""The top-level Python API: memgen.generate / load / score, the same library as the command
(issue 15, item 16)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

import memgen
from memgen.cli import main
from memgen.format.errors import UsageError
from memgen.pipeline.request import Request, validate
from memgen.scorers.answers import TokenVocab

SMALL = {"lengths": 512, "episodes": 3, "seed": 4}


def oracle_records(table: pa.Table) -> list[dict]:
    """{"id", "qid", "prediction"} records answering every query of a token table right."""
    vocab = TokenVocab.from_manifest(json.loads(table.schema.metadata[memgen.MANIFEST_KEY]))
    return [{"id": row["id"], "qid": q["qid"],
             "prediction": vocab.absent_id if q["answer"] < 0 else vocab.value_offset + q["answer"]}
            for row in table.select(["id", "queries"]).to_pylist() for q in row["queries"]]


def test_request_takes_one_family_name_as_a_tuple_of_one():
    req = Request(families="overwrite")
    assert req.families == ("overwrite",)
    validate(req)  # not "unknown family 'o'"
    req = Request(families="overwrite,discard", renderings="text", lengths=2048)
    assert (req.families, req.renderings, req.lengths) == (("overwrite", "discard"), ("text",), (2048,))
    assert Request(families=["write"], lengths=[512, 1024]) == Request(families=("write",), lengths=(512, 1024))
    assert Request(families="overwrite").to_dict() == Request(families=("overwrite",)).to_dict()


def test_generate_to_a_folder_writes_the_commands_bytes(tmp_path):
    path = memgen.generate("mixed", out=tmp_path / "api", overwrites=4, distractor_kinds="negated", **SMALL)
    assert path == tmp_path / "api"
    res = CliRunner().invoke(main, ["generate", "--family", "mixed", "--length", "512", "--episodes", "3",
                                    "--seed", "4", "--overwrites", "4", "--distractor-kinds", "negated",
                                    "--out", str(tmp_path / "cli"), "--quiet"])
    assert res.exit_code == 0, res.output
    files = sorted(p.relative_to(path) for p in path.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "cli") for p in (tmp_path / "cli").rglob("*") if p.is_file())
    for f in files:
        assert (path / f).read_bytes() == (tmp_path / "cli" / f).read_bytes(), f


def test_generate_in_memory_returns_tables():
    table = memgen.generate("overwrite", **SMALL)
    assert isinstance(table, pa.Table) and table.num_rows == 3
    assert set(table.column("family").to_pylist()) == {"overwrite"}
    both = memgen.generate(("overwrite", "discard"), renderings="chunk", **SMALL)
    assert sorted(both) == ["discard-chunk-512", "overwrite-chunk-512"]
    assert all(t.num_rows == 3 for t in both.values())


def test_generate_refuses_an_unknown_option_before_writing(tmp_path):
    with pytest.raises(UsageError, match="unknown generate option.*overwirtes"):
        memgen.generate("overwrite", out=tmp_path / "ds", overwirtes=3)
    assert not (tmp_path / "ds").exists()


def test_load_and_score_a_folder_and_its_table(tmp_path):
    root = memgen.generate("overwrite,discard", out=tmp_path / "ds", **SMALL)
    with pytest.raises(UsageError, match="name a config; it has: overwrite-token-512, discard-token-512"):
        memgen.load(root)
    table = memgen.load(root, "overwrite-token-512")
    assert table.num_rows == 3 and set(table.column("family").to_pylist()) == {"overwrite"}
    assert memgen.load(root, "overwrite-token-512", split="test").equals(table)
    with pytest.raises(UsageError, match="no shards of split 'dev'"):
        memgen.load(root, "overwrite-token-512", split="dev")
    records = oracle_records(table)
    from_table = memgen.score(table, records)  # the token vocabulary comes with the table
    assert from_table.accuracy == 1.0 and from_table.n == len(records)
    from_folder = memgen.score(root, records, name="oracle")
    assert from_folder.accuracy == 1.0 and from_folder.name == "oracle"
    assert any("left out: discard-token-512" in n for n in from_folder.notes)


def test_import_memgen_stays_light():
    code = ("import sys, memgen; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('memgen', 'numpy', 'pyarrow', 'click', 'rich', 'pandas')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['memgen']"


def test_version_is_the_literal_setuptools_reads():
    import importlib.util

    from setuptools.config.expand import StaticModule

    # setuptools' own reader of ``version = {attr = "memgen.__version__"}``, without importing memgen
    static = StaticModule("memgen", importlib.util.find_spec("memgen"))
    assert static.__version__ == memgen.__version__ == "0.1.0"
    tree = ast.parse(Path(memgen.__file__).read_text())
    assert any(isinstance(s, ast.Assign) and s.targets[0].id == "__version__" and isinstance(s.value, ast.Constant)
               for s in tree.body)


@pytest.fixture(scope="module")
def travel_table() -> pa.Table:
    return memgen.generate("overwrite,discard", renderings="text", lengths=1024, episodes=2, seed=3,
                           domain="travel")["overwrite-text-1024"]


def test_score_renders_its_report_in_a_notebook(travel_table):
    golds = [q["answer_text"] for row in travel_table.column("queries").to_pylist() for q in row]
    answers = [f"The flight is {g}." if i % 2 else g for i, g in enumerate(golds)]
    r = memgen.score(travel_table, answers, name="<script>alert(1)</script>")
    assert r.correct == (len(golds) + 1) // 2 and r.lenient_correct == len(golds)
    html = r._repr_html_()
    assert html == r.report()._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert ">strict</th>" in html and ">lenient</th>" in html
    assert ">overwrite</td>" in html and ">100.0% [" in html  # lenient: every answer right
    assert 'title="hallucinated' in html and 'title="correct' in html  # the outcome mix bars
    assert "generator " + json.loads(travel_table.schema.metadata[memgen.MANIFEST_KEY])["generator_version"] in html


def test_generate_as_datasets_returns_a_dataset_that_scores():
    datasets = pytest.importorskip("datasets")
    ds = memgen.generate("overwrite", renderings="text", as_datasets=True, lengths=1024, episodes=2, seed=3)
    assert isinstance(ds, datasets.Dataset) and ds.num_rows == 2 and ds.info.config_name == "overwrite-text-1024"
    golds = [q["answer_text"] for row in ds["queries"] for q in row]
    assert memgen.score(ds, golds).accuracy == 1.0
    one = ds.select([1])  # a selection scores its own rows
    assert memgen.score(one, [q["answer_text"] for q in ds[1]["queries"]]).n == len(ds[1]["queries"])
    both = memgen.generate("overwrite,discard", as_datasets=True, **SMALL)
    assert isinstance(both, datasets.DatasetDict) and sorted(both) == ["discard-token-512", "overwrite-token-512"]


def test_score_refuses_what_is_no_dataset():
    with pytest.raises(UsageError, match="cannot score against a dict; pass a dataset folder, a table"):
        memgen.score({"id": ["a"]}, ["x"])
