"""``memgen run``: a local transformers model and an OpenAI-compatible server (a loopback server
started here that serves the tiny model's answers), batching, retries, resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from eco_helpers import cli, one_error_line, outcomes_of, tiny_model_outcomes

from memgen.cli import main
from memgen.io.dataset import Dataset


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def episode_ids(root: Path, config: str | None = None) -> list[str]:
    ds = Dataset.open(root)
    return [i for c in ds.configs if config in (None, c) for i in ds.table(c).column("id").to_pylist()]


def run_in_process(*args: str):
    res = CliRunner().invoke(main, ["run", *args, "--quiet"])
    return res


@pytest.fixture(scope="module")
def tiny_runner(tiny_model):
    from memgen.harness.runners.hf import HFRunner

    return HFRunner(tiny_model, device="cpu", batch_size=4)


class Server:
    """An OpenAI-compatible server on 127.0.0.1 answering with the tiny model.

    ``fail_first``: that many requests get HTTP 503 first; ``fail_after``: after that many
    answers every request gets HTTP 500; ``reject``: every request gets HTTP 400;
    ``context``: a prompt of more characters gets HTTP 400 (a context-length error); ``delay``:
    seconds before each answer."""

    def __init__(self, runner, fail_first=0, fail_after=None, reject=False, delay=0.0, context=None):
        self.runner, self.fail_first, self.fail_after, self.reject, self.delay = \
            runner, fail_first, fail_after, reject, delay
        self.context = context
        self.requests: list[dict] = []
        self.answered = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, payload = server.handle(self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def handle(self, path: str, body: dict) -> tuple[int, dict]:
        from memgen.harness.runners import Prompt

        with self.lock:
            self.requests.append({"path": path, **body})
            n = len(self.requests)
            if self.reject:
                return 400, {"error": {"message": "This model's maximum context length is 8 tokens"}}
            if n <= self.fail_first:
                return 503, {"error": {"message": "overloaded"}}
            if self.fail_after is not None and self.answered >= self.fail_after:
                return 500, {"error": {"message": "engine died"}}
            time.sleep(self.delay)
            prompt = body["messages"][-1]["content"] if path.endswith("/chat/completions") else body["prompt"]
            if self.context is not None and len(prompt) > self.context:
                return 400, {"error": {"message": f"This model's maximum context length is {self.context} "
                                                  "tokens.\x1b[31m"}}
            text = self.runner.answer([Prompt("x", "x", prompt, 1)])[0]
            self.answered += 1
        if path.endswith("/chat/completions"):
            return 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
        return 200, {"choices": [{"index": 0, "text": text}]}

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hf_runner_answers_every_episode_in_batches_and_scores(tiny_model, llama_dataset, tmp_path):
    out = tmp_path / "preds.jsonl"
    res = run_in_process("--dataset", str(llama_dataset), "--hf", str(tiny_model), "--batch-size", "3",
                         "--device", "cpu", "--out", str(out))
    assert res.exit_code == 0, res.output
    rows = rows_of(out)
    assert sorted(r["id"] for r in rows) == sorted(episode_ids(llama_dataset))
    assert {r["answer_block"] for r in rows} == {"1: unknown"} and {r["model"] for r in rows} == {"hf:tiny-llama"}
    assert outcomes_of(llama_dataset, out) == tiny_model_outcomes(llama_dataset)


def test_hf_run_resumes_and_keeps_the_answers_it_has(tiny_model, llama_dataset, tmp_path):
    out = tmp_path / "preds.jsonl"
    res = run_in_process("--dataset", str(llama_dataset), "--hf", str(tiny_model), "--config", "overwrite-text-1024",
                         "--out", str(out))
    assert res.exit_code == 0, res.output
    first = out.read_bytes()
    assert sorted(r["id"] for r in rows_of(out)) == episode_ids(llama_dataset, "overwrite-text-1024")
    res = run_in_process("--dataset", str(llama_dataset), "--hf", str(tiny_model), "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "2 of 4 episodes already answered; 2 to go" in res.stderr
    assert out.read_bytes().startswith(first)
    assert sorted(r["id"] for r in rows_of(out)) == sorted(episode_ids(llama_dataset))


def test_openai_path_against_a_loopback_server_serving_the_tiny_model(tiny_runner, llama_dataset, tmp_path):
    out = tmp_path / "preds.jsonl"
    with Server(tiny_runner) as server:
        res = run_in_process("--dataset", str(llama_dataset), "--openai-base-url", server.url, "--model", "tiny",
                             "--concurrency", "3", "--max-new-tokens", "12", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert len(server.requests) == 4
    prompts = {p for c in Dataset.open(llama_dataset).configs
               for p in Dataset.open(llama_dataset).table(c).column("prompt").to_pylist()}
    for req in server.requests:
        assert req["path"] == "/v1/chat/completions" and req["model"] == "tiny" and req["temperature"] == 0
        assert req["max_tokens"] == 12 and req["messages"][0]["role"] == "user"
        assert req["messages"][0]["content"] in prompts
    assert {r["model"] for r in rows_of(out)} == {"openai:tiny"}
    assert outcomes_of(llama_dataset, out) == tiny_model_outcomes(llama_dataset)


def test_completions_api_and_transient_errors_are_retried(tiny_runner, llama_dataset, tmp_path):
    out = tmp_path / "preds.jsonl"
    with Server(tiny_runner, fail_first=3) as server:
        res = run_in_process("--dataset", str(llama_dataset), "--openai-base-url", server.url, "--model", "tiny",
                             "--api", "completions", "--concurrency", "1", "--retries", "3", "--backoff", "0.01",
                             "--out", str(out))
    assert res.exit_code == 0, res.output
    assert len(server.requests) == 4 + 3 and server.requests[-1]["path"] == "/v1/completions"
    assert outcomes_of(llama_dataset, out) == tiny_model_outcomes(llama_dataset)


def test_a_run_that_fails_midway_keeps_its_answers_and_resumes(tiny_runner, llama_dataset, tmp_path):
    out = tmp_path / "preds.jsonl"
    args = ["--dataset", str(llama_dataset), "--model", "tiny", "--concurrency", "1", "--retries", "2",
            "--backoff", "0.01", "--out", str(out)]
    with Server(tiny_runner, fail_after=1) as broken:
        rc, _, err = cli("run", "--openai-base-url", broken.url, *args, "--quiet")
    assert rc == 1
    one_error_line(err, "no answer after 3 tries", "HTTP 500", "re-run the same command to resume")
    kept = rows_of(out)
    assert len(kept) == 1
    with Server(tiny_runner) as healthy:
        res = run_in_process("--openai-base-url", healthy.url, *args)
    assert res.exit_code == 0, res.output
    assert len(healthy.requests) == 3  # only the episodes not answered before
    rows = rows_of(out)
    assert rows[0] == kept[0] and sorted(r["id"] for r in rows) == sorted(episode_ids(llama_dataset))


def test_a_killed_run_leaves_a_valid_file_and_a_rerun_finishes_it(tiny_runner, llama_dataset, tmp_path):
    out = tmp_path / "preds.jsonl"
    args = ["--dataset", str(llama_dataset), "--model", "tiny", "--concurrency", "1", "--out", str(out), "--quiet"]
    with Server(tiny_runner, delay=0.5) as slow:
        proc = subprocess.Popen([sys.executable, "-m", "memgen.cli", "run", "--openai-base-url", slow.url, *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (out.exists() and out.read_bytes().count(b"\n") >= 2):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    rows = rows_of(out)  # every line is a complete row
    assert 2 <= len(rows) < 4, "the run was killed in the middle"
    with open(out, "ab") as f:  # as if a kill had landed inside a write
        f.write(b'{"id": "overwrite-text-1024-00')
    with Server(tiny_runner) as server:
        rc, stdout, err = cli("run", "--openai-base-url", server.url, *args)
    assert rc == 0, err
    assert "cut off an incomplete last line" in err and f"{len(rows)} of 4 episodes already answered" in err
    assert len(server.requests) == 4 - len(rows)
    assert sorted(r["id"] for r in rows_of(out)) == sorted(episode_ids(llama_dataset))
    assert outcomes_of(llama_dataset, out) == tiny_model_outcomes(llama_dataset)


def test_bad_run_input_gets_one_line_and_writes_nothing(tiny_model, tiny_runner, llama_dataset, small_dataset,
                                                        tmp_path):
    (tmp_path / "no-config").mkdir()
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama", "hidden_size": ')
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"id": "x", "config": "c", "model": "openai:gpt", "answer_block": "1: a"}) + "\n")
    out = tmp_path / "o.jsonl"
    ds = str(llama_dataset)
    cases = [
        (["--dataset", ds, "--hf", str(tmp_path / "missing")], 2, ["--hf", "no such folder"]),
        (["--dataset", ds, "--hf", str(tmp_path / "no-config")], 2, ["not a transformers model folder"]),
        (["--dataset", ds, "--hf", str(broken)], 2, ["cannot load a model and tokenizer"]),
        (["--dataset", ds, "--hf", str(tiny_model), "--openai-base-url", "http://127.0.0.1:1/v1"], 2,
         ["give one model"]),
        (["--dataset", ds, "--openai-base-url", "http://127.0.0.1:1/v1"], 2, ["--model"]),
        (["--dataset", ds, "--openai-base-url", "localhost:8000", "--model", "m"], 2, ["http://"]),
        (["--dataset", ds, "--openai-base-url", f"http://127.0.0.1:{closed_port()}/v1", "--model", "m",
          "--retries", "1", "--backoff", "0.01"], 1, ["no answer after 2 tries", "refused"]),
        (["--dataset", str(small_dataset), "--hf", str(tiny_model)], 2, ["no text config"]),
        (["--dataset", str(tmp_path / "nothing"), "--hf", str(tiny_model)], 1, ["no such dataset folder"]),
    ]
    for args, code, words in cases:
        rc, _, err = cli("run", *args, "--out", str(out), "--quiet")
        assert rc == code, (args, err)
        one_error_line(err, *words)
        assert not out.exists(), args
    rc, _, err = cli("run", "--dataset", ds, "--openai-base-url", "http://127.0.0.1:1/v1", "--model", "m",
                     "--out", str(other))
    assert rc == 2
    one_error_line(err, "holds answers of model 'openai:gpt'")


def _prompts_by_length(root: Path):
    from memgen.harness.runners import load_prompts

    return sorted(load_prompts(root)[0], key=lambda p: len(p.text))


def test_episodes_the_server_refuses_are_recorded_and_the_run_goes_on(tiny_runner, llama_dataset, tmp_path):
    prompts = _prompts_by_length(llama_dataset)
    cut = (len(prompts[1].text) + len(prompts[2].text)) // 2  # the two longest are over the server's limit
    out = tmp_path / "preds.jsonl"
    with Server(tiny_runner, context=cut) as server:
        res = run_in_process("--dataset", str(llama_dataset), "--openai-base-url", server.url, "--model", "tiny",
                             "--concurrency", "1", "--out", str(out))
    assert res.exit_code == 0, res.output
    stdout = res.stdout
    assert len(server.requests) == 4  # a 400 is not retried
    rows = {r["id"]: r for r in rows_of(out)}
    assert len(rows) == 4
    for p in prompts:
        r = rows[p.id]
        if len(p.text) > cut:
            assert r["answer_block"] is None and r["outcome"] == "refused"
            assert r["detail"].startswith("HTTP 400: This model's maximum context length is")
            assert "\x1b" not in r["detail"] and "\\x1b" in r["detail"]  # no terminal escape kept raw
        else:
            assert r["answer_block"] == "1: unknown" and "outcome" not in r
    refused = sum(len(p.text) > cut for p in prompts)
    assert refused >= 1 and f"{4 - refused} answered, {refused} refused (first: HTTP 400" in stdout
    outcomes = outcomes_of(llama_dataset, out)
    expected = tiny_model_outcomes(llama_dataset)
    for (id_, qid), outcome in outcomes.items():  # memgen score counts the refused episodes' questions
        assert outcome == rows[id_].get("outcome", expected[(id_, qid)])


def test_max_model_len_records_overflow_and_sends_only_what_fits(tiny_model, tiny_runner, llama_dataset,
                                                                  tmp_path):
    """--max-model-len counted with the dataset's tokenizer (the tiny model's, here): prompts that do
    not fit with their reply budget never reach the server; a rerun skips them too."""
    from memgen.harness.runners import default_max_new_tokens
    from memgen.render.text.tokenizers import load_tokenizer

    count = load_tokenizer(str(tiny_model)).count
    need = sorted(count(p.text) + default_max_new_tokens(p.n_questions) for p in _prompts_by_length(llama_dataset))
    limit = need[1]  # two fit (up to ties), the others overflow
    fits = sum(n <= limit for n in need)
    assert 1 <= fits < 4
    out = tmp_path / "preds.jsonl"
    args = ["--dataset", str(llama_dataset), "--model", "tiny", "--max-model-len", str(limit), "--out", str(out)]
    with Server(tiny_runner) as server:
        res = run_in_process("--openai-base-url", server.url, *args)
    assert res.exit_code == 0, res.output
    stdout = res.stdout
    assert len(server.requests) == fits
    rows = rows_of(out)
    over = [r for r in rows if r.get("outcome") == "overflow"]
    assert len(over) == 4 - fits and all(r["answer_block"] is None for r in over)
    assert all(f"exceeds the {limit:,}-token context" in r["detail"] for r in over)
    assert f"{4 - fits} overflow" in stdout
    overflowed = {r["id"] for r in over}
    outcomes = outcomes_of(llama_dataset, out)
    assert {o for (id_, _), o in outcomes.items() if id_ in overflowed} == {"overflow"}
    with Server(tiny_runner) as again:
        res = run_in_process("--openai-base-url", again.url, *args)
    assert res.exit_code == 0 and again.requests == [] and "4 of 4 episodes already answered" in res.stderr


def test_hf_max_model_len_counts_with_the_models_own_tokenizer(tiny_model, tiny_runner, llama_dataset, tmp_path):
    prompts = _prompts_by_length(llama_dataset)
    need = sorted(tiny_runner.count(p) + tiny_runner._budget(p) for p in prompts)
    limit = need[1]
    out = tmp_path / "preds.jsonl"
    res = run_in_process("--dataset", str(llama_dataset), "--hf", str(tiny_model), "--device", "cpu",
                         "--max-model-len", str(limit), "--out", str(out))
    assert res.exit_code == 0, res.output
    rows = rows_of(out)
    assert sum(r.get("outcome") == "overflow" for r in rows) == sum(n > limit for n in need) >= 1
    assert {r["answer_block"] for r in rows if "outcome" not in r} == {"1: unknown"}


@pytest.mark.parametrize("args, words", [
    (["--max-model-len", "0"], ["--max-model-len must be within"]),
    (["--max-model-len", str(10 ** 11)], ["--max-model-len must be within"]),
    (["--max-new-tokens", str(10 ** 11)], ["--max-new-tokens must be within"]),
    (["--max-model-len", "4096", "--tokenizer", "nope"], ["unknown tokenizer 'nope'"]),
])
def test_bad_context_limits_are_one_line(llama_dataset, tmp_path, args, words):
    res = run_in_process("--dataset", str(llama_dataset), "--openai-base-url", "http://127.0.0.1:1/v1",
                         "--model", "m", "--out", str(tmp_path / "o.jsonl"), *args)
    assert res.exit_code == 2, res.output
    one_error_line(res.stderr, *words)
    assert not (tmp_path / "o.jsonl").exists()
