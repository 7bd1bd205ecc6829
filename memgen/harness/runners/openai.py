"""Any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, TGI, ...) as a runner.

Standard library HTTP only (``urllib``).  Requests run in a thread pool of ``concurrency``
workers; a connection failure, a timeout, or HTTP 408/409/429/5xx is retried with exponential
backoff (``backoff * 2**attempt`` seconds, capped at 60, with up to 10% jitter).  A request the
server turns down for what it holds (HTTP 400, 413, 422: a prompt over its context limit, say;
or a reply whose ``message.refusal`` is set) is the episode's ``refused`` outcome and the run
goes on; any other HTTP error (401, 404, ...: every request would get it) fails at once with
the server's message.  With ``max_model_len``, prompts counted (by ``counter``) over it with
their reply budget are ``overflow`` and never sent.  Answers are written as they arrive, so an
interrupted run resumes where it stopped (:class:`memgen.harness.runners.PredictionLog`).

The server is untrusted (DESIGN.md section 9): redirects are never followed (a POST is not
re-sent, and the API key never goes to another origin), a reply is read up to
``MAX_REPLY_BYTES`` within ``timeout`` seconds of wall-clock time, and a reply that is not the
expected JSON (not UTF-8, nested too deep, content that is not text) is one clear error.
"""

from __future__ import annotations

import http.client
import json
import math
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from memgen.format.errors import DataError, MemgenError, UsageError
from memgen.harness.runners import (
    MAX_NEW_TOKENS,
    Failed,
    Prompt,
    Reply,
    check_max_model_len,
    cut_at_stop,
    default_max_new_tokens,
    fit_or_overflow,
)

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
#: statuses that refuse this one request (its size or content), not every request
REFUSED_STATUS = frozenset({400, 413, 422})
APIS = ("chat", "completions")
#: ceilings checked up front or while reading (a reply larger than this is refused)
MAX_REPLY_BYTES = 16 << 20
MAX_RETRIES = 100
MAX_CONCURRENCY = 256
MAX_TIMEOUT_S = 24 * 3600.0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: urllib would re-send a POST as a bodiless GET, and with it the
    ``Authorization`` header, to wherever the server points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


class OpenAIRunner:
    """Greedy (temperature 0) answers from ``model`` at ``base_url`` (e.g.
    ``http://localhost:8000/v1``), through ``/chat/completions`` (one user message) or
    ``/completions`` (the prompt as is).

    ``retries``: attempts per request beyond the first; ``timeout``: seconds per attempt.
    ``max_model_len``: the server's context in tokens, prompts counted with ``counter`` (a
    :class:`~memgen.render.text.tokenizers.LengthCounter`, needed with it)."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, api: str = "chat",
                 max_tokens: int | None = None, concurrency: int = 4, retries: int = 5, backoff: float = 1.0,
                 timeout: float = 600.0, stop: Sequence[str] = (), max_model_len: int | None = None,
                 counter=None):
        if not base_url.startswith(("http://", "https://")):
            raise UsageError(f"--openai-base-url {base_url!r}: give an http:// or https:// URL "
                             "(e.g. http://localhost:8000/v1)")
        if not model:
            raise UsageError("--model: give the served model's name (--openai-base-url needs --model)")
        if api not in APIS:
            raise UsageError(f"--api {api!r}: choose {' or '.join(APIS)}")
        if not (1 <= concurrency <= MAX_CONCURRENCY and 0 <= retries <= MAX_RETRIES
                and math.isfinite(backoff) and 0 <= backoff <= 60
                and math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT_S):
            raise UsageError(f"use 1 <= --concurrency <= {MAX_CONCURRENCY}, 0 <= --retries <= {MAX_RETRIES}, "
                             f"0 <= --backoff <= 60 and 0 < --timeout <= {MAX_TIMEOUT_S:.0f} (seconds)")
        if api_key is not None and (not api_key.isprintable() or not api_key.isascii()):
            raise UsageError("--api-key (or OPENAI_API_KEY) holds a line break or another character that cannot "
                             "go into an HTTP header; check how it was set")
        if max_tokens is not None and not 1 <= max_tokens <= MAX_NEW_TOKENS:
            raise UsageError(f"--max-new-tokens must be within 1..{MAX_NEW_TOKENS:,}")
        if check_max_model_len(max_model_len) is not None and counter is None:
            raise UsageError("--max-model-len needs a tokenizer to count prompts with (--tokenizer)")
        self.max_model_len, self.counter = max_model_len, counter
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/{'chat/completions' if api == 'chat' else 'completions'}"
        self.model, self.api, self.api_key = model, api, api_key
        self.max_tokens, self.concurrency = max_tokens, concurrency
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self.stop = tuple(stop)
        self.name = f"openai:{model}"
        self._stop_event = threading.Event()

    def _budget(self, p: Prompt) -> int:
        return self.max_tokens or default_max_new_tokens(p.n_questions)

    def _body(self, p: Prompt) -> bytes:
        body: dict = {"model": self.model, "temperature": 0, "max_tokens": self._budget(p)}
        if self.api == "chat":
            body["messages"] = [{"role": "user", "content": p.text}]
        else:
            body["prompt"] = p.text
        return json.dumps(body).encode("utf-8")

    def _post(self, data: bytes) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        deadline = time.monotonic() + self.timeout
        with _OPENER.open(req, timeout=self.timeout) as resp:
            body = bytearray()
            while chunk := resp.read1(1 << 16):  # the deadline bounds a server that sends a byte at a time
                body += chunk
                if len(body) > MAX_REPLY_BYTES:
                    raise DataError(f"{self.url}: the reply is larger than {MAX_REPLY_BYTES >> 20} MiB")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the reply took longer than --timeout {self.timeout:g} s")
        try:
            return json.loads(bytes(body).decode("utf-8"))
        except RecursionError:
            raise json.JSONDecodeError("nested too deep", "", 0) from None

    def _reply(self, p: Prompt, payload: dict) -> Reply:
        try:
            choice = payload["choices"][0]
            content = choice["message"]["content"] if self.api == "chat" else choice["text"]
        except (KeyError, IndexError, TypeError):
            raise DataError(f"{self.url}: answer for {p.id} has no choices[0]"
                            f"{'.message.content' if self.api == 'chat' else '.text'}") from None
        refusal = choice["message"].get("refusal") if self.api == "chat" else None
        if not content and isinstance(refusal, str) and refusal:  # OpenAI's refusal: no content, a reason
            return Failed("refused", f"the model refused: {_one_line(refusal)}")
        text = _content_text(content)
        if text is None:
            raise DataError(f"{self.url}: answer for {p.id}: the content is a {type(content).__name__}, not text")
        return cut_at_stop(text, self.stop)

    def answer_one(self, p: Prompt) -> Reply:
        """The server's reply to one prompt, after up to ``retries`` retries, or its refusal
        (:class:`Failed`); raises :class:`MemgenError` (one line) when it still fails."""
        data = self._body(p)
        reason = ""
        for attempt in range(self.retries + 1):
            if self._stop_event.is_set():
                raise MemgenError("stopped")
            try:
                return self._reply(p, self._post(data))
            except urllib.error.HTTPError as e:
                detail = _error_text(e)
                if 300 <= e.code < 400:
                    raise MemgenError(f"{self.url}: HTTP {e.code} redirect for {p.id}, not followed (a POST is "
                                      "never re-sent elsewhere); give the server's final URL") from None
                if e.code in REFUSED_STATUS:
                    return Failed("refused", f"HTTP {e.code}: {detail}")
                if e.code not in RETRY_STATUS:
                    raise MemgenError(f"{self.url}: HTTP {e.code} for {p.id}: {detail}") from None
                reason = f"HTTP {e.code}: {detail}"
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as e:
                reason = str(getattr(e, "reason", None) or e) or type(e).__name__
            except (json.JSONDecodeError, UnicodeDecodeError):
                reason = "the answer is not UTF-8 JSON"
            except ValueError as e:  # e.g. an integer of more digits than Python converts
                reason = f"the answer is not usable JSON ({str(e)[:80]})"
            if attempt < self.retries:
                delay = min(60.0, self.backoff * 2 ** attempt) * (1 + 0.1 * random.random())
                if self._stop_event.wait(delay):
                    raise MemgenError("stopped")
        raise MemgenError(f"{self.base_url}: no answer after {self.retries + 1} tries ({reason}); "
                          "answers so far are kept: re-run the same command to resume")

    def run(self, prompts: Sequence[Prompt], write: Callable[[Prompt, Reply], None],
            advance: Callable[[int], None] = lambda n: None) -> None:
        """Answer ``prompts`` with ``concurrency`` requests in flight; ``write`` each answer (or
        ``overflow``/``refused`` outcome) on this thread as it arrives.  On the first failure,
        requests not yet sent are dropped, answers that already arrived are written, and the
        failure is raised."""
        prompts, over = fit_or_overflow(prompts, lambda p: self.counter.count(p.text), self._budget,
                                        self.max_model_len)
        for p, failed in over:
            write(p, failed)
            advance(1)
        self._stop_event.clear()
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="memgen-openai")
        futures: dict[Future, Prompt] = {pool.submit(self.answer_one, p): p for p in prompts}
        written: set[Future] = set()
        try:
            for fut in as_completed(futures):
                reply = fut.result()
                write(futures[fut], reply)
                written.add(fut)
                advance(1)
        except BaseException:
            self._stop_event.set()
            for fut in futures:
                fut.cancel()
            pool.shutdown(wait=True)
            for fut, p in futures.items():
                if fut not in written and fut.done() and not fut.cancelled() and fut.exception() is None:
                    write(p, fut.result())
            raise
        pool.shutdown(wait=True)


def _content_text(content: object) -> str | None:
    """The text of a reply's content: a string, nothing (``""``), or the standard list of
    content parts (the ``text`` of each text part, joined); None for anything else."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [c if isinstance(c, str) else c.get("text") if isinstance(c, dict) else None for c in content]
        if all(isinstance(t, str) for t in parts):
            return "".join(parts)
    return None


def _error_text(e: urllib.error.HTTPError) -> str:
    try:
        body = e.read(1 << 16).decode("utf-8", "replace")
    except OSError:
        body = ""
    try:
        msg = json.loads(body)["error"]
        msg = msg.get("message", msg) if isinstance(msg, dict) else msg
    except (ValueError, KeyError, TypeError, RecursionError):
        msg = body
    text = _one_line(str(msg))
    return text or (e.reason if isinstance(e.reason, str) else "") or "no message"


def _one_line(text: str, limit: int = 200) -> str:
    """A server's message as one printable line: whitespace collapsed, control characters
    (a terminal escape, say) written as escapes, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)[:limit]
