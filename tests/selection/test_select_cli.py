"""``memgen select`` end to end on generated data, ``--select`` on ``run`` and ``export``, full
context against selected context scored side by side, and bad specs refused in one line."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from eco_helpers import one_error_line

from memgen.cli import main
from memgen.io.dataset import Dataset
from memgen.selection.metrics import KS


def _invoke(*args: str):
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def text_ds(tmp_path_factory):
    root = tmp_path_factory.mktemp("sel") / "text"
    code, _, err = _invoke("generate", "--family", "mixed", "--rendering", "text", "--length", "2048",
                           "--episodes", "3", "--seed", "2", "--chunk-size", "128", "--quiet", "--out", str(root))
    assert code == 0, err
    return root


@pytest.fixture(scope="module")
def plain_ds(tmp_path_factory):
    root = tmp_path_factory.mktemp("sel") / "plain"
    code, _, err = _invoke("generate", "--family", "write", "--rendering", "text", "--rendering", "token",
                           "--length", "1024", "--episodes", "1", "--quiet", "--out", str(root))
    assert code == 0, err
    return root


@pytest.mark.slow
def test_select_reports_recall_mrr_and_traps_per_probe(text_ds, tmp_path):
    out = tmp_path / "sel"
    code, stdout, err = _invoke("select", "--dataset", str(text_ds), "--select", "bm25:k=4", "--select", "tfidf",
                                "--select", "recency", "--select", "oracle", "--out", str(out), "--quiet")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["queries.jsonl", "recall.png", "report.json", "report.md",
                                                     "traps.png"]
    rep = json.loads((out / "report.json").read_text())
    cells = {(c["selector"], c["probe"]): c for c in rep["cells"]}
    oracle = cells["oracle:k=8", "all"]
    assert oracle["n"] > 0 and all(oracle[f"recall@{k}"] == 1.0 for k in KS[1:]) and oracle["mrr"] == 1.0
    for c in rep["cells"]:
        assert sum(c["traps"].values()) == c["n"]
        assert all(c[f"recall@{a}"] <= c[f"recall@{b}"] for a, b in zip(KS, KS[1:], strict=False))
    assert cells["recency:k=8", "all"]["traps"]["none"] < cells["bm25:k=4", "all"]["traps"]["none"]
    rows = [json.loads(line) for line in (out / "queries.jsonl").read_text().splitlines()]
    assert len(rows) == 4 * rep["queries"] and {len(r["top"]) <= 8 for r in rows} == {True}
    assert "| bm25:k=4 | overwrite |" in (out / "report.md").read_text() or rep["queries"] < 10


def test_select_on_the_chunk_rendering_attributes_the_sparse_model_s_failures(tmp_path):
    root = tmp_path / "chunks"
    assert _invoke("generate", "--family", "overwrite", "--rendering", "chunk", "--length", "4096",
                   "--episodes", "2", "--quiet", "--out", str(root))[0] == 0
    code, stdout, err = _invoke("select", "--dataset", str(root), "--select", "sparse:k=2", "--select", "bm25",
                                "--out", str(tmp_path / "sel"), "--no-plots")
    assert code == 0, err
    assert "selection (evidence not kept) or reading" in stdout
    rep = json.loads((tmp_path / "sel" / "report.json").read_text())
    cell = next(c for c in rep["cells"] if c["selector"] == "sparse:k=2" and c["probe"] == "all")
    assert sum(cell["attribution"].values()) == cell["n"] + cell["no_evidence"]
    assert cell["attribution"]["reading"] + cell["attribution"]["selection"] > 0  # overwrite: sparse reads stale


@pytest.mark.parametrize("spec,words", [("nope:k=2", ["unknown selector 'nope'"]),
                                        ("bm25:k=0", ["k must be 1"]), ("bm25:k=-3", ["k must be 1"]),
                                        ("bm25:k=two", ["is not an integer"]), ("sparse", ["chunk rendering"])])
@pytest.mark.parametrize("command", ["select", "run", "export"])
def test_bad_select_specs_get_one_line_and_write_nothing(text_ds, tmp_path, command, spec, words):
    out = tmp_path / "out"
    args = {"select": ["select", "--dataset", str(text_ds), "--out", str(out)],
            "run": ["run", "--dataset", str(text_ds), "--openai-base-url", "http://127.0.0.1:9/v1", "--model", "m",
                    "--out", str(out)],
            "export": ["export", str(text_ds), "--format", "jsonl", "--out", str(out)]}[command]
    code, _, err = _invoke(*args, "--select", spec)
    assert code == 2
    one_error_line(err, *words)
    assert not out.exists()


@pytest.mark.parametrize("command", ["select", "export"])
def test_a_rendering_without_passages_is_refused(plain_ds, tmp_path, command):
    out = tmp_path / "out"
    if command == "select":
        for config, words in (("write-text-1024", "--chunk-size"), ("write-token-1024", "no passages")):
            code, _, err = _invoke("select", "--dataset", str(plain_ds), "--config", config, "--select", "bm25",
                                   "--out", str(out))
            assert code == 2
            one_error_line(err, words)
        code, _, err = _invoke("select", "--dataset", str(plain_ds), "--select", "bm25", "--out", str(out))
        assert code == 2
        one_error_line(err, "no config with passages")
    else:
        code, _, err = _invoke("export", str(plain_ds), "--format", "jsonl", "--select", "bm25", "--out", str(out))
        assert code == 2
        one_error_line(err, "--chunk-size")
    assert not out.exists()


def test_export_with_select_keeps_only_the_selected_passages(text_ds, tmp_path):
    from memgen.selection.contexts import kept_passages
    from memgen.selection.episodes import iter_selection_episodes
    from memgen.selection.registry import parse_select

    full, cut = tmp_path / "full.jsonl", tmp_path / "cut.jsonl"
    assert _invoke("export", str(text_ds), "--format", "jsonl", "--unit", "episode", "--out", str(full))[0] == 0
    code, _, err = _invoke("export", str(text_ds), "--format", "jsonl", "--unit", "episode", "--select",
                           "bm25:k=1", "--out", str(cut))
    assert code == 0, err
    a = [json.loads(x) for x in full.read_text().splitlines()]
    b = [json.loads(x) for x in cut.read_text().splitlines()]
    ds = Dataset.open(text_ds)
    eps = list(iter_selection_episodes(ds, ds.configs[0]))
    for ra, rb, ep in zip(a, b, eps, strict=True):
        assert (ra["id"], ra["answer"]) == (rb["id"], rb["answer"]) and len(rb["prompt"]) < len(ra["prompt"])
        kept = kept_passages(ep, parse_select("bm25:k=1"))
        off, ctx = ep.row["passages"], ep.row["context"]
        for p in range(ep.n_passages):
            assert (ctx[off[p]:off[p + 1]].strip() in rb["prompt"]) == (p in kept)
        assert rb["prompt"].endswith(ra["prompt"][ra["prompt"].rfind("</log>"):])  # the questions, unchanged


class _Reader:
    """A loopback OpenAI-compatible server whose "model" answers a question with its gold value
    when every evidence passage of the question is in the prompt, and "unknown" otherwise."""

    def __init__(self, root):
        ds = Dataset.open(root)
        self.episodes = []
        for c in ds.configs:
            for row in ds.table(c).to_pylist():
                off, ctx = row["passages"], row["context"]
                need = [[ctx[off[p]:off[p + 1]].strip() for p in q["evidence"]] for q in row["queries"]]
                self.episodes.append((row["prompt"][row["prompt"].rfind("</log>"):], row["queries"], need))
        reader = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                data = json.dumps({"choices": [{"index": 0, "message": {
                    "role": "assistant", "content": reader.answer(body["messages"][-1]["content"])}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, prompt: str) -> str:
        tail, queries, need = next(e for e in self.episodes if prompt.endswith(e[0]))
        return "\n".join(f"{n}: {q['answer_text'] if all(t in prompt for t in ts) else 'unknown'}"
                         for n, (q, ts) in enumerate(zip(queries, need, strict=True), start=1))


@pytest.mark.slow
def test_full_and_selected_context_runs_are_scored_side_by_side(text_ds, tmp_path):
    reader = _Reader(text_ds)
    try:
        for name, extra in (("full", []), ("bm25", ["--select", "bm25:k=1"])):
            code, _, err = _invoke("run", "--dataset", str(text_ds), "--openai-base-url", reader.url, "--model", "m",
                                   "--out", str(tmp_path / f"{name}.jsonl"), "--quiet", *extra)
            assert code == 0, err
    finally:
        reader.httpd.shutdown()
        reader.httpd.server_close()
    models = {json.loads(x)["model"] for x in (tmp_path / "bm25.jsonl").read_text().splitlines()}
    assert models == {"openai:m select=bm25:k=1"}
    code, stdout, err = _invoke("score", "--dataset", str(text_ds), "--predictions", str(tmp_path / "full.jsonl"),
                                "--predictions", str(tmp_path / "bm25.jsonl"), "--out", str(tmp_path / "rep"))
    assert code == 0, err
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    overall = {m["name"]: m["overall"] for m in rep["models"]}
    assert overall["full"]["correct"] == overall["full"]["total"]
    # the selected run gets right exactly the questions whose evidence the cut prompt kept (and
    # those whose answer is unknown: the reader's guess without evidence)
    from memgen.selection.contexts import kept_passages
    from memgen.selection.episodes import iter_selection_episodes
    from memgen.selection.registry import parse_select

    ds = Dataset.open(text_ds)
    kept = [set(e.tolist()) <= set(kept_passages(ep, parse_select("bm25:k=1"))) or q["answer_text"] == "unknown"
            for ep in iter_selection_episodes(ds, ds.configs[0]) for q, e in zip(ep.row["queries"], ep.evidence,
                                                                                  strict=True)]
    assert overall["bm25"]["correct"] == sum(kept) < overall["bm25"]["total"]
    assert "| **all** | 100.0%" in (tmp_path / "rep" / "report.md").read_text()
