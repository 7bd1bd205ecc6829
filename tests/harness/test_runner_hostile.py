"""``memgen run --openai-base-url`` against a server that misbehaves (a loopback server started
here): redirects are not followed and the API key never leaves for another origin; replies that
are not text, not UTF-8, nested too deep, too large or too slow end as one line; bad numbers for
``--timeout`` and ``--retries`` are refused up front."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from eco_helpers import cli, one_error_line

from memgen.cli import main

KEY = "sk-test-secret-0123456789"


class Hostile:
    """A server on 127.0.0.1 whose every POST gets ``reply(handler)``; records each request's
    path and Authorization header."""

    def __init__(self, reply):
        self.seen: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _record(self):
                server.seen.append((self.path, self.headers.get("Authorization")))

            def do_GET(self):
                self._record()
                self._send(200, b'{"choices": [{"message": {"content": "1: stolen"}}]}')

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._record()
                reply(self)

            def _send(self, status, body: bytes, headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.Handler = Handler
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Hostile:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _json(status: int, payload):
    return lambda h: h._send(status, json.dumps(payload).encode())


def _run(ds, url: str, out, *extra: str) -> tuple[int, str]:
    """``memgen run`` on the first episode, in this process (the command's own error handling,
    without a fresh interpreter's start-up per case)."""
    res = CliRunner(env={"OPENAI_API_KEY": KEY}).invoke(main, [
        "run", "--dataset", str(ds), "--openai-base-url", url, "--model", "m", "--limit", "1", "--retries", "0",
        "--out", str(out), "--quiet", *extra])
    assert not isinstance(res.exception, AssertionError) and res.exc_info[0] in (None, SystemExit), res.exc_info
    return res.exit_code, res.stderr


def test_a_redirect_is_not_followed_and_the_key_stays_home(text_dataset, tmp_path):
    with Hostile(lambda h: None) as thief:
        target = f"{thief.url}/steal"
        with Hostile(lambda h: h._send(302, b"", [("Location", target)])) as server:
            rc, err = _run(text_dataset, server.url, tmp_path / "o.jsonl")
        assert thief.seen == []  # nothing reached the other origin: no request, no key
    assert rc == 1
    one_error_line(err, "redirect", "not followed")
    assert KEY not in err
    assert not (tmp_path / "o.jsonl").exists() or "stolen" not in (tmp_path / "o.jsonl").read_text()


@pytest.mark.parametrize(("content", "words"), [
    (7, ["content is a int"]), (2.5, ["content is a float"]), ({"text": "1: x"}, ["content is a dict"]),
    ([{"type": "image_url"}], ["content is a list"]),
])
def test_content_that_is_not_text_is_one_line(text_dataset, tmp_path, content, words):
    with Hostile(_json(200, {"choices": [{"message": {"content": content}}]})) as server:
        rc, err = _run(text_dataset, server.url, tmp_path / "o.jsonl")
    assert rc == 1
    one_error_line(err, *words)


def test_content_parts_are_read_as_text(text_dataset, tmp_path):
    parts = [{"type": "text", "text": "1: "}, {"type": "text", "text": "unknown"}]
    out = tmp_path / "o.jsonl"
    with Hostile(_json(200, {"choices": [{"message": {"content": parts}}]})) as server:
        rc, err = _run(text_dataset, server.url, out)
    assert rc == 0, err
    assert json.loads(out.read_text().splitlines()[0])["answer_block"] == "1: unknown"


@pytest.mark.parametrize(("body", "words"), [
    (b'{"choices": [{"message": {"content": "\xff\xfe"}}]}', ["not UTF-8 JSON"]),
    (b"[" * 100_000 + b"]" * 100_000, ["not UTF-8 JSON"]),
    (b'{"choices": [{"message": {"content": "a"}}], "n": ' + b"9" * 5000 + b"}", ["not usable JSON"]),
])
def test_replies_that_are_not_usable_json_are_one_line(text_dataset, tmp_path, body, words):
    with Hostile(lambda h: h._send(200, body)) as server:
        rc, err = _run(text_dataset, server.url, tmp_path / "o.jsonl")
    assert rc == 1
    one_error_line(err, *words)


def test_a_reply_larger_than_the_ceiling_is_refused_without_reading_it_all(text_dataset, tmp_path):
    def huge(h):
        h.send_response(200)
        h.send_header("Content-Length", str(1 << 30))
        h.end_headers()
        try:
            for _ in range(1 << 14):
                h.wfile.write(b" " * (1 << 16))
        except OSError:
            pass

    with Hostile(huge) as server:
        rc, err = _run(text_dataset, server.url, tmp_path / "o.jsonl")
    assert rc == 1
    one_error_line(err, "larger than 16 MiB")


def test_a_server_dripping_bytes_is_held_to_the_wall_clock_timeout(text_dataset, tmp_path):
    def drip(h):
        h.send_response(200)
        h.send_header("Content-Length", "400")
        h.end_headers()
        try:
            for _ in range(400):
                h.wfile.write(b" ")
                h.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    with Hostile(drip) as server:
        t = time.monotonic()
        rc, err = _run(text_dataset, server.url, tmp_path / "o.jsonl", "--timeout", "1")
        took = time.monotonic() - t
    assert rc == 1
    one_error_line(err, "no answer after 1 tries", "longer than --timeout 1 s")
    assert took < 15  # the drip alone would take 20 s


@pytest.mark.parametrize("args", [["--timeout", "nan"], ["--timeout", "inf"], ["--timeout", "0"],
                                  ["--retries", str(10 ** 11)], ["--backoff", "nan"]])
def test_impossible_limits_are_refused_up_front(text_dataset, tmp_path, args):
    with Hostile(_json(200, {})) as server:
        rc, err = _run(text_dataset, server.url, tmp_path / "o.jsonl", *args)
        assert server.seen == []
    assert rc == 2
    one_error_line(err)


def test_an_api_key_with_a_line_break_is_refused_and_not_echoed(text_dataset, tmp_path):
    with Hostile(_json(200, {})) as server:
        rc, _, err = cli("run", "--dataset", str(text_dataset), "--openai-base-url", server.url, "--model", "m",
                         "--out", str(tmp_path / "o.jsonl"), "--quiet",
                         env={"OPENAI_API_KEY": "sk-abc\r\nX-Injected: 1"}, timeout=60)
        assert server.seen == []
    assert rc == 2
    one_error_line(err, "line break")
    assert "sk-abc" not in err and "Injected" not in err


def _row(out) -> dict:
    return json.loads(out.read_text().splitlines()[0])


def test_a_lone_surrogate_in_the_content_is_stored_not_a_crash(text_dataset, tmp_path):
    out = tmp_path / "o.jsonl"
    body = b'{"choices": [{"message": {"content": "1: a\\ud800b"}}]}'
    with Hostile(lambda h: h._send(200, body)) as server:
        rc, err = _run(text_dataset, server.url, out)
    assert rc == 0, err
    assert _row(out)["answer_block"] == "1: a?b"


def test_a_refusal_is_the_refused_outcome(text_dataset, tmp_path):
    out = tmp_path / "o.jsonl"
    reply = {"choices": [{"message": {"content": None, "refusal": "I can't help with \x1b[2Jthat."}}]}
    with Hostile(_json(200, reply)) as server:
        rc, err = _run(text_dataset, server.url, out)
    assert rc == 0, err
    row = _row(out)
    assert row["answer_block"] is None and row["outcome"] == "refused"
    assert row["detail"].startswith("the model refused: I can't help with") and "\x1b" not in row["detail"]


@pytest.mark.parametrize(("body", "words"), [
    (b'{"choices": [{"message": {"content": ' + b"7" * 40 + b"}}]}", ["content is a int"]),
    (b'{"choices": [{"message": {"content": NaN}}]}', ["content is a float"]),
    (b'{"choices": [{"message": {"content": Infinity}}]}', ["content is a float"]),
    (b'{"choices": {"0": {"message": {"content": "1: x"}}}}', ["no choices[0].message.content"]),
    (b'{"choices": ["1: x"]}', ["no choices[0].message.content"]),
    (b'{"choices": [{"message": "1: x"}]}', ["no choices[0].message.content"]),
    (b'{"choices": [{"message": {"content": [{"type": "text", "text": 5}]}}]}', ["content is a list"]),
    (b'[]', ["no choices[0].message.content"]),
])
def test_replies_of_the_wrong_shape_are_one_line(text_dataset, tmp_path, body, words):
    with Hostile(lambda h: h._send(200, body)) as server:
        rc, err = _run(text_dataset, server.url, tmp_path / "o.jsonl")
    assert rc == 1
    one_error_line(err, *words)


@pytest.mark.parametrize("body", [b"\xff\xfe not utf-8", b'{"error": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
                                  b'{"error": {"message": 1' + b"0" * 5000 + b"}}"])
def test_a_refusal_with_a_hostile_body_is_still_recorded(text_dataset, tmp_path, body):
    out = tmp_path / "o.jsonl"
    with Hostile(lambda h: h._send(400, body)) as server:
        rc, err = _run(text_dataset, server.url, out)
    assert rc == 0, err
    row = _row(out)
    assert row["outcome"] == "refused" and row["detail"].startswith("HTTP 400: ") and len(row["detail"]) < 300


def test_a_terminal_escape_in_an_error_is_not_printed_raw(text_dataset, tmp_path):
    with Hostile(_json(401, {"error": {"message": "bad key \x1b]0;pwned\x07\x1b[2J"}})) as server:
        rc, err = _run(text_dataset, server.url, tmp_path / "o.jsonl")
    assert rc == 1
    one_error_line(err, "HTTP 401", "bad key")
    assert "\x1b" not in err and "\x07" not in err


def test_the_completions_api_reads_text_and_refuses_a_number(text_dataset, tmp_path):
    out = tmp_path / "o.jsonl"
    with Hostile(_json(200, {"choices": [{"text": 12}]})) as server:
        rc, err = _run(text_dataset, server.url, out, "--api", "completions")
    assert rc == 1
    one_error_line(err, "content is a int")


@pytest.mark.parametrize("args", [["--concurrency", str(10 ** 11)], ["--concurrency", "0"],
                                  ["--max-new-tokens", str(2 ** 63)], ["--backoff", "-1"]])
def test_more_impossible_numbers_are_refused_up_front(text_dataset, tmp_path, args):
    with Hostile(_json(200, {})) as server:
        rc, err = _run(text_dataset, server.url, tmp_path / "o.jsonl", *args)
        assert server.seen == []
    assert rc == 2
    one_error_line(err)
