"""``memgen export``: JSONL rows and lm-evaluation-harness task folders that score end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from eco_helpers import cli, one_error_line, outcomes_of, queries, tiny_model_outcomes
from lm_eval_helpers import task_yaml

from memgen import scorers
from memgen.cli import main
from memgen.harness.lm_eval import (
    block_answers,
    doc_to_target,
    doc_to_text,
    lm_eval_process_results,
    question_accuracy,
    single_question_prompt,
)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]




def test_jsonl_has_one_row_per_query_with_its_own_prompt_and_answer(text_dataset, tmp_path):
    out = tmp_path / "rows.jsonl"
    res = CliRunner().invoke(main, ["export", str(text_dataset), "--format", "jsonl", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = read_jsonl(out)
    qs = queries(text_dataset)
    assert [(r["id"], r["qid"]) for r in rows] == [(q["id"], q["qid"]) for q in qs]
    for r, q in zip(rows, qs, strict=True):
        assert {"prompt", "answer", "id", "qid", "probe"} <= set(r)
        assert r["answer"] == q["answer_text"] and r["probe"] == q["probe"]
        n = q["n"] + 1
        assert r["target"] == f"{n}: {q['answer_text']}"
        assert r["prompt"].endswith(f'Answer this question on one line, as "{n}: <answer>".\n')
        assert f"\n{n}. {r['question']}\n" in r["prompt"] and "</log>" in r["prompt"]
        assert q["answer_text"] == "unknown" or q["answer_text"] in r["prompt"].rsplit("\n</log>", 1)[0]
    # the bare answers, given back as predictions, are all correct
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": r["id"], "qid": r["qid"], "prediction": r["answer"]}) + "\n"
                             for r in rows))
    result = scorers.score(text_dataset, preds)
    assert result.n == len(qs) and result.correct == len(qs)


def test_jsonl_per_episode_holds_every_question_and_the_answer_block(text_dataset, tmp_path):
    out = tmp_path / "eps.jsonl"
    res = CliRunner().invoke(main, ["export", str(text_dataset), "--format", "jsonl", "--unit", "episode",
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = read_jsonl(out)
    assert len(rows) == 6
    blocks = tmp_path / "blocks.jsonl"
    blocks.write_text("".join(json.dumps({"id": r["id"], "answer_block": r["answer"]}) + "\n" for r in rows))
    result = scorers.score(text_dataset, blocks)
    assert result.correct == result.n == len(queries(text_dataset))


def test_single_question_prompt_keeps_an_interleaved_question_in_place(tmp_path):
    from memgen.generators.knobs import Knobs
    from memgen.harness.text_dataset import iter_episodes
    from memgen.io.dataset import Dataset
    from memgen.pipeline.job import generate
    from memgen.pipeline.request import Request

    root = tmp_path / "inter"
    generate(Request(families=("overwrite",), renderings=("text",), lengths=(1024,), episodes=2, seed=2,
                     knobs=Knobs(query_position="interleaved")), root)
    ds = Dataset.open(root)
    inline = [(ep, n) for ep in iter_episodes(ds, ds.configs[0]) for n in range(1, len(ep.inline) + 1)
              if ep.inline[n - 1]]
    assert inline, "interleaved episodes ask some questions inside the log"
    ep, n = inline[0]
    p = single_question_prompt(ep, n)
    assert p.endswith(f'Answer question {n}, asked inside the log above on one line, as "{n}: <answer>".\n')
    assert f"Question {n}: {ep.questions[n - 1]}" in p.rsplit("\n</log>", 1)[0]


def test_lm_eval_export_writes_one_task_and_docs_that_map_back_to_queries(text_dataset, tmp_path):
    out = tmp_path / "tasks"
    res = CliRunner().invoke(main, ["export", str(text_dataset), "--format", "lm-eval", "--out", str(out),
                                    "--max-gen-toks", "24"])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["README.md", "data", "memgen.yaml", "memgen_export.json", "utils.py"]
    task = task_yaml(out / "memgen.yaml")
    assert task["task"] == "memgen" and task["tag"] == ["longcxt"]
    assert task["output_type"] == "generate_until"
    assert task["doc_to_text"] == "{{prompt}}" and task["doc_to_target"] == "{{target}}"
    # no stop string: "Here are the answers:\n\n1: ..." keeps its answers
    assert task["generation_kwargs"] == {"until": [], "max_gen_toks": 24, "do_sample": False}
    assert task["metadata"]["version"] == 2.0
    assert task["dataset_path"] == "json" and task["test_split"] == "test"
    assert task["custom_dataset"] == "!function utils.load_docs"
    files = task["dataset_kwargs"]["data_files"]["test"]
    assert files == ["data/overwrite-text-1024.jsonl", "data/discard-text-1024.jsonl"]  # relative to the folder
    assert task["process_results"] == "!function utils.process_results"
    metrics = [m["metric"] for m in task["metric_list"]]
    assert metrics[0] == "query_accuracy" and "probe_discard" in metrics and metrics[-1] == "length_1024"
    assert {m["aggregation"] for m in task["metric_list"]} == {"!function utils.question_accuracy"}
    for f in files:
        docs = read_jsonl(out / f)
        assert len(docs) == 3 and all("qid" not in d for d in docs)
    # lm-eval's sample log of a model that answers every doc with its target scores 100%
    samples = tmp_path / "samples.jsonl"
    with open(samples, "w") as f:
        for i, doc in enumerate(d for p in sorted((out / "data").glob("*.jsonl")) for d in read_jsonl(p)):
            f.write(json.dumps({"doc_id": i, "doc": doc, "target": doc["target"], "arguments": [],
                                "resps": [[doc["target"]]], "filtered_resps": [doc["target"]],
                                "filter": "none", "metrics": ["query_accuracy"],
                                "query_accuracy": [len(doc["answers"])] * 2}) + "\n")
    result = scorers.score(text_dataset, samples)
    assert result.correct == result.n == len(queries(text_dataset)) and result.missing == 0


def test_lm_eval_docs_load_from_the_task_folder_only(text_dataset, tmp_path):
    from memgen.format.errors import DataError
    from memgen.harness.lm_eval import load_docs

    out = tmp_path / "tasks"
    rc, _, err = cli("export", str(text_dataset), "--format", "lm-eval", "--out", str(out))
    assert rc == 0, err
    docs = load_docs(out, {"test": ["data/discard-text-1024.jsonl"]}, version=2.0)
    assert docs["test"].num_rows == 3
    (tmp_path / "outside.jsonl").write_text((out / "data" / "discard-text-1024.jsonl").read_text())
    for bad in ("../outside.jsonl", str(tmp_path / "outside.jsonl"), "data/none.jsonl"):
        with pytest.raises(DataError):
            load_docs(out, {"test": [bad]})
    with pytest.raises(DataError, match="must map a split"):
        load_docs(out, ["data/discard-text-1024.jsonl"])


def test_the_lm_eval_metric_counts_questions_as_memgen_score_does():
    doc = {"answers": ["271.5", "unknown", "AB-12", "9"]}
    reply = "1: 271.50\n2: It was deleted\nsomething else\n3: ab 12\n1: 0"
    assert block_answers(reply, 4) == ["271.50", "It was deleted", "ab 12", None]
    doc["probes"] = ["overwrite", "discard", "write", "overwrite"]
    doc["target_length"] = 2048
    got = lm_eval_process_results(doc, [reply], probes=("write", "overwrite", "discard"), lengths=(1024, 2048))
    assert got == {"query_accuracy": [3, 4], "probe_write": [1, 1], "probe_overwrite": [1, 2],
                   "probe_discard": [1, 1], "length_1024": [0, 0], "length_2048": [3, 4]}
    assert lm_eval_process_results(doc, [""], probes=(), lengths=())["query_accuracy"] == [0, 4]
    # the aggregation counts questions: 3 of 4 and 0 of 2 are 3 of 6, not the mean of 75% and 0%
    assert question_accuracy([[3, 4], [0, 2]]) == 0.5
    assert question_accuracy([[0, 0], [0, 0]]) == -1.0


def test_the_lm_eval_metric_reads_a_row_as_the_hub_serves_it():
    row = {"id": "x", "target_length": 1024, "prompt_head": "H:", "context": "the log", "prompt_tail": ":T",
           "queries": [{"answer_text": "271.5", "probe": "write"}, {"answer_text": "unknown", "probe": "discard"}]}
    assert doc_to_text(row) == "H:the log:T"
    assert doc_to_target(row) == "1: 271.5\n2: unknown"
    got = lm_eval_process_results(row, ["1: 271.5\n2: 3"], probes=("write", "discard"), lengths=(1024,))
    assert got == {"query_accuracy": [1, 2], "probe_write": [1, 1], "probe_discard": [0, 1], "length_1024": [1, 2]}


@pytest.mark.parametrize("args, code, words", [
    (["export", "{small}", "--format", "jsonl", "--out", "{tmp}/o.jsonl"], 2, ["no text config"]),
    (["export", "{tmp}/none", "--format", "lm-eval", "--out", "{tmp}/o"], 1, ["no such dataset folder"]),
    (["export", "{text}", "--format", "lm-eval", "--out", "{tmp}/o", "--config", "nope"], 2, ["no config 'nope'"]),
    (["export", "{text}", "--format", "lm-eval", "--out", "{tmp}/o", "--name", "bad name"], 2, ["--name"]),
    (["export", "{text}", "--format", "lm-eval", "--out", "{tmp}/full"], 2, ["memgen export did not write"]),
    (["export", "{text}", "--format", "jsonl", "--out", "/proc/memgen-no/x.jsonl"], 2, ["cannot write"]),
])
def test_bad_export_input_gets_one_line_and_writes_nothing(small_dataset, text_dataset, tmp_path, args, code,
                                                           words):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep me")
    args = [a.replace("{small}", str(small_dataset)).replace("{text}", str(text_dataset))
            .replace("{tmp}", str(tmp_path)) for a in args]
    rc, out, err = cli(*args)
    assert rc == code, err
    one_error_line(err, *words)
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.jsonl").exists()
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep me"
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_export_again_replaces_an_earlier_export(text_dataset, tmp_path):
    out = tmp_path / "tasks"
    for config in ("overwrite-text-1024", "discard-text-1024"):
        res = CliRunner().invoke(main, ["export", str(text_dataset), "--format", "lm-eval", "--out", str(out),
                                        "--config", config])
        assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (out / "data").iterdir()) == ["discard-text-1024.jsonl"]


@pytest.mark.slow
def test_real_lm_eval_on_a_tiny_local_model_scores_end_to_end(tiny_model, llama_dataset, tmp_path):
    """The real ``lm_eval`` CLI, offline, on the exported tasks and a tiny local Llama; its
    ``--log_samples`` files are then scored by ``memgen score`` query by query."""
    pytest.importorskip("lm_eval")
    tasks = tmp_path / "tasks"
    rc, _, err = cli("export", str(llama_dataset), "--format", "lm-eval", "--out", str(tasks), "--max-gen-toks", "8")
    assert rc == 0, err
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf"), "HF_DATASETS_CACHE": str(tmp_path / "hf" / "datasets"),
           "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "lm_eval", "--model", "hf",
           "--model_args", f"pretrained={tiny_model},dtype=float32", "--device", "cpu", "--batch_size", "2",
           "--include_path", str(tasks), "--tasks", "memgen", "--log_samples", "--output_path", str(tmp_path / "res")]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    logs = sorted((tmp_path / "res").rglob("samples_memgen_*.jsonl"))
    assert len(logs) == 1  # one task over every config
    samples = logs[0]
    rows = read_jsonl(samples)
    assert {r["filtered_resps"][0] for r in rows} == {"1: unknown"}  # the tiny model's known answer

    expected = tiny_model_outcomes(llama_dataset)
    assert outcomes_of(llama_dataset, samples) == expected
    rc, out, err = cli("score", "--dataset", str(llama_dataset), "--predictions", str(samples), "--format", "json")
    assert rc == 0, err
    report = json.loads(out)["models"][0]
    assert report["queries"] == len(expected)
    assert report["outcomes"]["correct"] == sum(v == "correct" for v in expected.values())
    assert report["outcomes"]["false_absent"] == sum(v == "false_absent" for v in expected.values())
    assert set(report["by_probe"]) >= {"overwrite", "discard"}
    # lm-eval's own table agrees with memgen's share of questions answered right, per probe too
    results = json.loads(next((tmp_path / "res").rglob("results_*.json")).read_text())["results"]["memgen"]
    assert results["query_accuracy,none"] == pytest.approx(report["overall"]["accuracy"])
    for probe, cell in report["by_probe"].items():
        assert results[f"probe_{probe},none"] == pytest.approx(cell["accuracy"]), probe
