"""``openai``: any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, LiteLLM ...).

One request per fact with the paper's prompt, facts run concurrently up to ``max_concurrency``.
Transient failures (429, 5xx, timeouts, refused connections) are retried with exponential backoff
via tenacity, honouring ``Retry-After``; anything that cannot become candidates (non-JSON, a JSON
without ``choices[0].message.content``, an empty answer after cleanup) is an ``InverterError``
naming the endpoint, because silently skipping a fact would leave it un-unlearned.
"""

from __future__ import annotations

import os
import random
import ssl
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from meow_engine.config import InverterConfig
from meow_engine.errors import ConfigError, InverterError, StopRequested
from meow_engine.facts import Fact
from meow_engine.inverters.base import EXTRA_CALL, INVERTERS, STAGE, InversionSet, Inverter, finish
from meow_engine.inverters.cleanup import clean_candidates, split_lines
from meow_engine.inverters.prompt import chat_messages
from meow_engine.progress import Reporter

#: longest Retry-After we honour; a server asking for more gets this (then the retry budget decides)
MAX_RETRY_AFTER_S = 120.0
MAX_BACKOFF_S = 60.0
#: requests per fact: the first, plus one more when it gave fewer than ``n`` usable candidates
CALLS_PER_FACT = 2
_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class _Transient(Exception):
    """A failure worth retrying; ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """Built once: loading the CA bundle costs ~0.1 s, paid per client otherwise."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _snippet(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


class _Backoff:
    """Retry-After when the server sent one, else base·2^(attempt-1) with ±10% jitter."""

    def __init__(self, base_s: float) -> None:
        self.base_s = base_s
        self._rng = random.Random()

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return min(exc.retry_after, MAX_RETRY_AFTER_S)
        wait_s = min(self.base_s * 2 ** (state.attempt_number - 1), MAX_BACKOFF_S)
        return wait_s * (0.9 + 0.2 * self._rng.random())


@INVERTERS.register("openai")
class OpenAIInverter(Inverter):
    name = "openai"

    def __init__(self, config: InverterConfig) -> None:
        super().__init__(config)
        self._abort = threading.Event()

    @property
    def url(self) -> str:
        return self.config.base_url.rstrip("/") + "/chat/completions"

    def prepare(self, facts: Sequence[Fact], context_facts: Sequence[Fact]) -> None:
        cfg = self.config
        if not cfg.base_url:
            raise ConfigError("inverter 'openai' needs base_url (e.g. http://localhost:8000/v1)")
        if not cfg.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"inverter 'openai': base_url {cfg.base_url!r} must start with http:// or https://")
        if not cfg.model:
            raise ConfigError("inverter 'openai' needs model (the model name the endpoint serves)")

    def _client(self) -> httpx.Client:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.Client(
            timeout=httpx.Timeout(self.config.timeout_s),
            headers=headers,
            limits=httpx.Limits(max_connections=self.config.max_concurrency),
            verify=_ssl_context(),
        )

    def invert(self, facts: Sequence[Fact], *, context_facts: Sequence[Fact], reporter: Reporter
               ) -> list[InversionSet]:
        self.prepare(facts, context_facts)
        total = len(facts)
        results: list[InversionSet | None] = [None] * total
        reporter.emit(STAGE, 0, total)
        self._abort.clear()
        client = self._client()
        pool = ThreadPoolExecutor(max_workers=min(self.config.max_concurrency, total),
                                  thread_name_prefix="meow-invert")
        try:
            pending: dict[Future[InversionSet], int] = {
                pool.submit(self._one, client, i, fact): i for i, fact in enumerate(facts)
            }
            done_count = 0
            while pending:
                # Wake up at least every half second so a stop request is seen while requests hang.
                done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    results[pending.pop(fut)] = fut.result()
                    done_count += 1
                    reporter.emit(STAGE, done_count, total)
                reporter.check_stop()
        except BaseException:
            # Stop the queue now; requests in flight see the abort flag before their next retry.
            self._abort.set()
            pool.shutdown(wait=False, cancel_futures=True)
            client.close()
            raise
        pool.shutdown(wait=True)
        client.close()
        return [r for r in results if r is not None]

    def _one(self, client: httpx.Client, index: int, fact: Fact) -> InversionSet:
        n = self.config.n
        raws: list[str] = []
        lines: list[str] = []
        candidates: list[str] = []
        for _ in range(CALLS_PER_FACT):
            raw = self._call(client, fact, index, len(raws))
            raws.append(raw)
            lines.extend(split_lines(raw))
            candidates = clean_candidates(lines, fact.answer)
            if len(candidates) >= n:
                break
        if not candidates:
            raise InverterError(
                f"endpoint {self.url} returned no usable candidates for fact {index} "
                f"after {len(raws)} request(s) (last response: {_snippet(raws[-1]) or 'empty'!r})"
            )
        flags = [EXTRA_CALL] if len(raws) > 1 else []
        return finish(index, candidates, n, raw="\n".join(raws), flags=flags)

    def _call(self, client: httpx.Client, fact: Fact, index: int, call_no: int) -> str:
        cfg = self.config
        body = {
            "model": cfg.model,
            "messages": chat_messages(fact, cfg.n, cfg.prompt),
            "temperature": cfg.temperature,
            "max_tokens": cfg.max_tokens,
            "seed": cfg.seed + 1000 * index + call_no,
        }
        retrying = Retrying(
            stop=stop_after_attempt(cfg.max_retries + 1),
            wait=_Backoff(cfg.retry_wait_s),
            retry=retry_if_exception_type(_Transient),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._post(client, body)
        except _Transient as e:
            raise InverterError(
                f"endpoint {self.url} failed after {cfg.max_retries + 1} attempt(s): {e}"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep(self, seconds: float) -> None:
        if self._abort.wait(seconds):
            raise StopRequested("inversion aborted")

    def _post(self, client: httpx.Client, body: dict[str, Any]) -> str:
        if self._abort.is_set():
            raise StopRequested("inversion aborted")
        try:
            resp = client.post(self.url, json=body)
        except httpx.TimeoutException:
            raise _Transient(f"timed out after {self.config.timeout_s:g} s") from None
        except httpx.TransportError as e:  # refused, reset, DNS, ...
            raise _Transient(f"unreachable ({type(e).__name__}: {_snippet(str(e)) or 'no detail'})") from None
        if resp.status_code in _RETRY_STATUS or resp.status_code >= 500:
            raise _Transient(f"HTTP {resp.status_code}", retry_after=_retry_after(resp))
        if resp.status_code != 200:
            hint = f" (is ${self.config.api_key_env} set?)" if resp.status_code in (401, 403) else ""
            raise InverterError(
                f"endpoint {self.url} answered HTTP {resp.status_code}{hint}: {_snippet(resp.text)!r}"
            )
        try:
            data = resp.json()
        except ValueError:
            raise InverterError(
                f"endpoint {self.url} returned malformed JSON: {_snippet(resp.text)!r}"
            ) from None
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise InverterError(
                f"endpoint {self.url} returned JSON without choices[0].message.content: "
                f"{_snippet(resp.text)!r}"
            ) from None
        if not isinstance(content, str):
            raise InverterError(
                f"endpoint {self.url} returned a non-text message content ({type(content).__name__})"
            )
        return content
