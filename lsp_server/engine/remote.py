"""A serving engine over an OpenAI-compatible HTTP API, in place of the in-process one.

For teams that run the model on a shared server (vLLM, llama.cpp's llama-server,
llama-cpp-python's own server): the same context, the same prompts (sent as text to
`/v1/completions`, so the chat format is applied here, as for the local model) and the
same post-processing; the serving engine keeps its own prompt cache.

Token counts for the context budget use the calibrated estimate of `context.tokens`
(no round trip per snippet). Generation streams (server-sent events), so a request is
cancelled within one token: the connection is closed, which serving engines take as
an abort. Only the standard library speaks HTTP here.
"""

from __future__ import annotations

import http.client
import json
import logging
import queue
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from context.tokens import estimate_tokens
from lsp_server.engine.llama import (
    NEVER,
    Cancelled,
    CancelToken,
    EngineError,
    Figures,
    Generation,
    ModelInfo,
    ModelLoadError,
    _find_stop,
)

log = logging.getLogger(__name__)

# OpenAI's API takes at most four stop strings; the rest are applied here as text arrives.
MAX_STOP_STRINGS = 4
# Models trained for fill-in-the-middle, by the name the server gives them.
_CODER = re.compile(r"coder|codeqwen|starcoder|deepseek-coder|codestral", re.IGNORECASE)
_POLL_S = 0.05  # how often a waiting request looks at its cancel token
MAX_IDLE_CONNECTIONS = 2


@dataclass(frozen=True, slots=True)
class RemoteConfig:
    url: str  # the API's base, up to and including /v1
    model: str = ""  # the model id to ask for; "" takes the first the server lists
    api_key: str = ""
    n_ctx: int = 32768  # at most this many tokens of prompt and answer
    timeout_s: float = 30.0  # to connect, and between two chunks of an answer


class RemoteEngine:
    """One OpenAI-compatible endpoint. Thread-safe: each request has its own connection."""

    hybrid = False

    def __init__(self, config: RemoteConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._idle: list[http.client.HTTPConnection] = []
        self.connections_opened = 0  # for completions (tests and figures read it)
        parts = urllib.parse.urlsplit(config.url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ModelLoadError(
                f"model.url must be an http:// or https:// address, not {config.url!r}"
            )
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path.rstrip("/")
        listed = self._models()
        ids = [str(m.get("id", "")) for m in listed if m.get("id")]
        model = config.model or (ids[0] if ids else "")
        if not model:
            raise ModelLoadError(f"the serving engine at {config.url} lists no model")
        if ids and model not in ids:
            raise ModelLoadError(
                f"the serving engine at {config.url} has no model {model!r} "
                f"(it serves: {', '.join(ids[:8])})"
            )
        self.model = model
        served = next((m for m in listed if m.get("id") == model), {})
        limit = served.get("max_model_len")  # vLLM says how long its context is
        n_ctx = min(config.n_ctx, limit) if isinstance(limit, int) and limit > 0 else config.n_ctx
        # Prompts are measured with an estimate (within ~10% of the real count over a whole
        # prompt): keep that much of the serving engine's context free, or a full prompt
        # could be refused as too long.
        self.n_ctx = n_ctx - n_ctx // 10
        coder = bool(_CODER.search(model))
        self.info = ModelInfo(
            path=config.url,
            architecture="remote",
            name=model,
            n_ctx_train=n_ctx,
            n_ctx=self.n_ctx,
            n_vocab=0,
            hybrid=False,
            has_fim_tokens=coder,
            fim_trained=coder,
            chat_template=None,  # Qwen's ChatML (lsp_server.completion.prompt)
            bos="",
            eos="",
            gpu_offload=False,
            size_bytes=0,
        )
        log.info(
            "serving engine at %s, model %s, %d tokens of context", config.url, model, self.n_ctx
        )

    # ---- what the completer and the runtime ask of an engine -----------------------------

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def model_file_changed(self) -> bool:
        return False

    def close(self) -> None:
        """Close the connections kept alive."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # ---- HTTP ---------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self.config.timeout_s)

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        """A connection for a request, and whether it was used before (kept alive)."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        self.connections_opened += 1
        return self._connection(), False

    def _give(self, conn: http.client.HTTPConnection) -> None:
        """Keep a connection whose answer was read to the end, for the next request: over
        the network (TLS above all) a new one costs round trips on every keystroke."""
        with self._lock:
            if len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        conn.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def _models(self) -> list[dict[str, Any]]:
        conn = self._connection()
        try:
            conn.request("GET", f"{self._base}/models", headers=self._headers())
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ModelLoadError(
                f"cannot reach the serving engine at {self.config.url}: {_reason(exc)}"
            ) from exc
        finally:
            conn.close()
        _raise_for_status(response.status, body, self.config.url)
        try:
            data = json.loads(body).get("data")
        except (ValueError, AttributeError) as exc:
            raise ModelLoadError(
                f"{self.config.url}/models did not answer like an OpenAI-compatible API"
            ) from exc
        return [m for m in data or [] if isinstance(m, dict)]

    def generate_text(
        self,
        prompt: str,
        *,
        max_tokens: int = 128,
        stop: Sequence[str] = (),
        rule: Callable[[str], int | None] | None = None,
        cancel: CancelToken = NEVER,
    ) -> Generation:
        """Greedy generation after `prompt`, with the local engine's stopping rules: a
        `stop` string (cut before it), `rule(text)`, `max_tokens`, the cancel token's
        deadline (keeping what came). `Cancelled` when the token is cancelled."""
        figures = Figures(prompt_tokens=estimate_tokens(prompt))
        body = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
        }
        stops = [s for s in stop if s][:MAX_STOP_STRINGS]
        if stops:
            body["stop"] = stops
        started = time.perf_counter()
        text, chunks, reason, first, finished = "", 0, "length", True, False
        stream = _Stream(self, body)
        try:
            for piece, finish in stream.chunks(cancel):
                if first:  # the time to the first token: the server's prompt evaluation
                    figures.prefill_ms = (time.perf_counter() - started) * 1000
                    first = False
                if piece:
                    chunks += 1
                    text += piece
                cut = _find_stop(text, stop)
                if cut is not None:
                    text, reason = text[:cut], "stop"
                    break
                if rule is not None:
                    keep = rule(text)
                    if keep is not None:
                        text, reason = text[:keep], "rule"
                        break
                if finish:  # the end of the stream follows: read it, to keep the connection
                    reason, finished = ("eos" if finish == "stop" else "length"), True
                elif (
                    not finished
                    and cancel.deadline is not None
                    and time.monotonic() > cancel.deadline
                ):
                    reason = "time"
                    break
        except Cancelled as exc:
            figures.generated_tokens = chunks
            exc.figures = figures
            raise
        finally:
            stream.close()
            figures.evaluated_tokens = figures.prompt_tokens
            figures.generated_tokens = chunks
            figures.generate_ms = (time.perf_counter() - started) * 1000 - figures.prefill_ms
        return Generation(text=text, tokens=[], stop_reason=reason, figures=figures)


class _Stream:
    """One streamed completion, read by a thread of its own so that the caller can give
    up at any moment (closing the socket ends the read and tells the server to stop)."""

    def __init__(self, engine: RemoteEngine, body: dict[str, Any]) -> None:
        self._engine = engine
        self._body = json.dumps(body).encode("utf-8", "surrogatepass")
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._conn: http.client.HTTPConnection | None = None
        self._closed = threading.Event()
        self._reusable = False  # the answer was read to its end on a kept-alive connection
        threading.Thread(target=self._read, name="qwen-lsp-remote", daemon=True).start()

    def _respond(self) -> http.client.HTTPResponse:
        """Send the request, on a kept-alive connection when there is one; a connection
        the server closed while idle is replaced once."""
        engine = self._engine
        headers = {**engine._headers(), "Accept": "text/event-stream"}
        for _ in range(2):
            conn, reused = engine._take()
            self._conn = conn
            if self._closed.is_set():
                raise Cancelled("closed")
            try:
                conn.request(
                    "POST", f"{engine._base}/completions", body=self._body, headers=headers
                )
                return conn.getresponse()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                conn.close()
                if not reused:
                    raise
        raise EngineError("unreachable")  # (the loop returns or raises before)

    def _read(self) -> None:
        engine = self._engine
        try:
            response = self._respond()
            if response.status != 200:
                _raise_for_status(response.status, response.read(), engine.config.url)
            for line in response:
                if self._closed.is_set():
                    return
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    response.read()  # the end of the body: the connection can serve again
                    break
                self._queue.put(("data", data))
            self._reusable = response.isclosed() and not response.will_close
            self._queue.put(("end", None))
        except BaseException as exc:  # handed to the caller
            if not self._closed.is_set():
                self._queue.put(("error", exc))

    def chunks(self, cancel: CancelToken) -> Iterator[tuple[str, str | None]]:
        """(text, finish reason) per event, as they come."""
        last = time.monotonic()
        while True:
            if cancel.cancelled:
                raise Cancelled(cancel.reason)
            try:
                kind, value = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                if cancel.deadline is not None and time.monotonic() > cancel.deadline:
                    return  # the caller sees the deadline and keeps what came
                if time.monotonic() - last > self._engine.config.timeout_s:
                    raise EngineError(
                        f"the serving engine at {self._engine.config.url} stopped answering"
                    ) from None
                continue
            last = time.monotonic()
            if kind == "end":
                return
            if kind == "error":
                if isinstance(value, EngineError):
                    raise value
                raise EngineError(
                    f"the serving engine at {self._engine.config.url} failed: {_reason(value)}"
                ) from value
            try:
                choice = json.loads(value)["choices"][0]
            except (ValueError, KeyError, IndexError, TypeError):
                log.debug("skipping an event that is not a completion chunk: %r", value[:200])
                continue
            yield str(choice.get("text") or ""), choice.get("finish_reason")

    def close(self) -> None:
        """After the whole answer, keep the connection for the next request; before it,
        close it: the server takes a closed connection as an abort."""
        self._closed.set()
        conn = self._conn
        if conn is not None and self._reusable:
            self._engine._give(conn)
            return
        if conn is not None:
            sock = conn.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            conn.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is it running?)"
    return str(exc) or type(exc).__name__


def _raise_for_status(status: int, body: bytes, url: str) -> None:
    if status == 200:
        return
    detail = body[:300].decode("utf-8", "replace").strip()
    if status in (401, 403):
        raise ModelLoadError(f"the serving engine at {url} refused the API key (HTTP {status})")
    raise EngineError(f"the serving engine at {url} answered HTTP {status}: {detail}")
