"""Any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, TGI, ...) as a runner.

Standard library HTTP only (``urllib``).  Requests run in a thread pool of ``concurrency``
workers; a connection failure, a timeout, or HTTP 408/409/429/5xx is retried with exponential
backoff (``backoff * 2**attempt`` seconds, capped at 60, with up to 10% jitter); any other HTTP
error fails at once with the server's message.  Answers are written as they arrive, so an
interrupted run resumes where it stopped (:class:`memgen.harness.runners.PredictionLog`).
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from memgen.format.errors import DataError, MemgenError, UsageError
from memgen.harness.runners import Prompt, cut_at_stop, default_max_new_tokens

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
APIS = ("chat", "completions")


class OpenAIRunner:
    """Greedy (temperature 0) answers from ``model`` at ``base_url`` (e.g.
    ``http://localhost:8000/v1``), through ``/chat/completions`` (one user message) or
    ``/completions`` (the prompt as is).

    ``retries``: attempts per request beyond the first; ``timeout``: seconds per attempt."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, api: str = "chat",
                 max_tokens: int | None = None, concurrency: int = 4, retries: int = 5, backoff: float = 1.0,
                 timeout: float = 600.0, stop: Sequence[str] = ()):
        if not base_url.startswith(("http://", "https://")):
            raise UsageError(f"--openai-base-url {base_url!r}: give an http:// or https:// URL "
                             "(e.g. http://localhost:8000/v1)")
        if not model:
            raise UsageError("--model: give the served model's name (--openai-base-url needs --model)")
        if api not in APIS:
            raise UsageError(f"--api {api!r}: choose {' or '.join(APIS)}")
        if concurrency < 1 or retries < 0 or backoff < 0 or timeout <= 0:
            raise UsageError("--concurrency >= 1, --retries >= 0, --backoff >= 0 and --timeout > 0, please")
        if max_tokens is not None and max_tokens < 1:
            raise UsageError("--max-new-tokens must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/{'chat/completions' if api == 'chat' else 'completions'}"
        self.model, self.api, self.api_key = model, api, api_key
        self.max_tokens, self.concurrency = max_tokens, concurrency
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self.stop = tuple(stop)
        self.name = f"openai:{model}"
        self._stop_event = threading.Event()

    def _body(self, p: Prompt) -> bytes:
        body: dict = {"model": self.model, "temperature": 0,
                      "max_tokens": self.max_tokens or default_max_new_tokens(p.n_questions)}
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
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            return json.loads(resp.read())

    def _reply(self, p: Prompt, payload: dict) -> str:
        try:
            choice = payload["choices"][0]
            text = choice["message"]["content"] if self.api == "chat" else choice["text"]
        except (KeyError, IndexError, TypeError):
            raise DataError(f"{self.url}: answer for {p.id} has no choices[0]"
                            f"{'.message.content' if self.api == 'chat' else '.text'}") from None
        return cut_at_stop(text or "", self.stop)

    def answer_one(self, p: Prompt) -> str:
        """The server's reply to one prompt, after up to ``retries`` retries; raises
        :class:`MemgenError` (one line) when it still fails."""
        data = self._body(p)
        reason = ""
        for attempt in range(self.retries + 1):
            if self._stop_event.is_set():
                raise MemgenError("stopped")
            try:
                return self._reply(p, self._post(data))
            except urllib.error.HTTPError as e:
                detail = _error_text(e)
                if e.code not in RETRY_STATUS:
                    raise MemgenError(f"{self.url}: HTTP {e.code} for {p.id}: {detail}") from None
                reason = f"HTTP {e.code}: {detail}"
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as e:
                reason = str(getattr(e, "reason", None) or e) or type(e).__name__
            except json.JSONDecodeError:
                reason = "the answer is not JSON"
            if attempt < self.retries:
                delay = min(60.0, self.backoff * 2 ** attempt) * (1 + 0.1 * random.random())
                if self._stop_event.wait(delay):
                    raise MemgenError("stopped")
        raise MemgenError(f"{self.base_url}: no answer after {self.retries + 1} tries ({reason}); "
                          "answers so far are kept: re-run the same command to resume")

    def run(self, prompts: Sequence[Prompt], write: Callable[[Prompt, str], None],
            advance: Callable[[int], None] = lambda n: None) -> None:
        """Answer ``prompts`` with ``concurrency`` requests in flight; ``write`` each answer on
        this thread as it arrives.  On the first failure, requests not yet sent are dropped,
        answers that already arrived are written, and the failure is raised."""
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


def _error_text(e: urllib.error.HTTPError) -> str:
    try:
        body = e.read().decode("utf-8", "replace")
    except OSError:
        body = ""
    try:
        msg = json.loads(body)["error"]
        msg = msg.get("message", msg) if isinstance(msg, dict) else msg
    except (ValueError, KeyError, TypeError):
        msg = body
    text = " ".join(str(msg).split())[:200]
    return text or (e.reason if isinstance(e.reason, str) else "") or "no message"
