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
import ipaddress
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
from functools import partial
from typing import Any

from context.tokens import estimate_tokens
from lsp_server.engine.types import (
    ALL_SPECIALS,
    NEVER,
    Cancelled,
    CancelToken,
    EngineError,
    EngineUnreachable,
    Figures,
    Generation,
    ModelInfo,
    ModelLoadError,
    Prompt,
    text_end,
)
from lsp_server.redact import remember, shown_url

log = logging.getLogger(__name__)

# OpenAI's API takes at most four stop strings; the rest are applied here as text arrives.
MAX_STOP_STRINGS = 4
# Models trained for fill-in-the-middle, by the name the server gives them.
# (Qwen's own: the FIM prompt uses Qwen's FIM tokens)
_CODER = re.compile(r"qwen[^/]*coder|codeqwen", re.IGNORECASE)
_POLL_S = 0.05  # how often a waiting request looks at its cancel token
MAX_IDLE_CONNECTIONS = 2
MODELS_TIMEOUT_S = 5.0  # /v1/models answers at once when the server is up
# The server's own max_tokens is not trusted: an answer longer than this many characters
# per token asked for is cut (a broken server sent 10 MB in one event).
MAX_CHARS_PER_TOKEN = 32
END_GRACE_S = 0.5  # after a finish reason, how long the end of the body may take


class ServerUnreachable(EngineUnreachable):
    """The serving engine cannot be reached (not running, the network gone)."""


@dataclass(frozen=True, slots=True)
class RemoteConfig:
    url: str  # the API's base, up to and including /v1
    model: str = ""  # the model id to ask for; "" takes the first the server lists
    api_key: str = ""
    allow_insecure_http: bool = False  # plain http:// to a host that is not loopback
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
        remember(config.api_key)
        self.shown_url = shown_url(config.url)  # what messages, logs and stats show
        parts = urllib.parse.urlsplit(config.url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ModelLoadError(
                f"model.url must be an http:// or https:// address, not {self.shown_url!r}"
            )
        if (
            parts.scheme == "http"
            and not config.allow_insecure_http
            and not _loopback(parts.hostname)
        ):
            raise ModelLoadError(
                f"model.url {self.shown_url} is plain http:// to another machine: your code "
                "and the API key would cross the network unencrypted. Use https://, or set "
                "model.allowInsecureHttp to true for a network you trust"
            )
        if parts.username or parts.password:
            raise ModelLoadError(
                "model.url must not hold a user name or password (it would be shown in "
                "messages and logs): give the key in model.apiKey or $QWEN_LSP_API_KEY"
            )
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        try:
            self._port = parts.port or (443 if self._https else 80)
        except ValueError as exc:
            raise ModelLoadError(f"model.url has a bad port: {self.shown_url!r}") from exc
        self._base = parts.path.rstrip("/")
        self._query = f"?{parts.query}" if parts.query else ""  # e.g. ?api-version=…
        listed = self._models()
        ids = [str(m.get("id", "")) for m in listed if m.get("id")]
        model = config.model or (ids[0] if ids else "")
        if not model:
            raise ModelLoadError(f"the serving engine at {self.shown_url} lists no model")
        if ids and model not in ids:
            raise ModelLoadError(
                f"the serving engine at {self.shown_url} has no model {model!r} "
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
            path=self.shown_url,
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
            "serving engine at %s, model %s, %d tokens of context",
            self.shown_url,
            model,
            self.n_ctx,
        )

    # ---- what the completer and the runtime ask of an engine -----------------------------

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def model_file_changed(self) -> bool:
        return False

    def run(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        rule: Callable[[str], int | None] | None = None,
        cancel: CancelToken = NEVER,
    ) -> Generation:
        return self.generate_text(
            text_for_server(prompt),
            max_tokens=max_tokens,
            stop=prompt.stop,
            rule=rule,
            cancel=cancel,
        )

    def warm(self, prompt: Prompt, cancel: CancelToken = NEVER) -> Figures:
        return Figures()  # a serving engine caches prompts its own way

    def describe(self) -> dict[str, Any]:
        return {"backend": {"url": self.shown_url, "model": self.model}}

    def close(self) -> None:
        """Close the connections kept alive."""
        self._drop_idle()

    # ---- HTTP ---------------------------------------------------------------------------

    def _connection(self, timeout: float | None = None) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=timeout or self.config.timeout_s)

    def _path(self, endpoint: str) -> str:
        return f"{self._base}{endpoint}{self._query}"

    def _drop_idle(self) -> None:
        """Close the kept connections (one went stale: the others were kept as long)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

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
        conn = self._connection(MODELS_TIMEOUT_S)
        try:
            conn.request("GET", self._path("/models"), headers=self._headers())
            response = conn.getresponse()
            body = response.read(1 << 22)
        except (OSError, http.client.HTTPException) as exc:
            raise ServerUnreachable(
                f"cannot reach the serving engine at {self.shown_url}: {_reason(exc)}"
            ) from exc
        finally:
            conn.close()
        _raise_for_status(response.status, body, self.shown_url, response.getheader("Location"))
        try:
            data = json.loads(body).get("data")
        except (ValueError, AttributeError) as exc:
            data = exc
        if not isinstance(data, list):
            raise ModelLoadError(
                f"{self.shown_url}/models did not answer like an OpenAI-compatible API"
            )
        return [m for m in data if isinstance(m, dict)]

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
        text, chunks, reason, first = "", 0, "length", True
        limit = max_tokens * MAX_CHARS_PER_TOKEN
        read_timeout = self.config.timeout_s
        if cancel.deadline is not None:  # a budget longer than the timeout is the limit
            read_timeout = max(read_timeout, cancel.deadline - time.monotonic() + 1)
        stream = _Stream(self, body, read_timeout)
        try:
            for piece, finish in stream.chunks(cancel):
                if first:  # the time to the first token: the server's prompt evaluation
                    figures.prefill_ms = (time.perf_counter() - started) * 1000
                    first = False
                if piece:
                    chunks += 1
                    text += piece
                if len(text) > limit:
                    text, reason = text[:limit], "length"
                    break
                ended = text_end(text, stop, rule)
                if ended is not None:
                    text, reason = ended
                    break
                if finish:
                    reason = "eos" if finish == "stop" else "length"
                    stream.wait_end(END_GRACE_S)  # so that the connection can be kept
                    break
            if stream.deadline_hit:
                reason = "time"
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

    def __init__(self, engine: RemoteEngine, body: dict[str, Any], read_timeout: float) -> None:
        self._engine = engine
        self._body = json.dumps(body).encode("utf-8", "surrogatepass")
        self._read_timeout = read_timeout
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._conn: http.client.HTTPConnection | None = None
        # The socket itself: http.client lets go of it for a `Connection: close` answer,
        # and it must still be closed to abort.
        self._sock: socket.socket | None = None
        self._closed = threading.Event()
        self._reusable = False  # the answer was read to its end on a kept-alive connection
        self.finished = False  # the server gave a finish reason
        self.deadline_hit = False
        threading.Thread(target=self._read, name="qwen-lsp-remote", daemon=True).start()

    def _respond(self) -> http.client.HTTPResponse:
        """Send the request, on a kept-alive connection when there is one; when that one
        went stale (the server closed it while idle), on a new one."""
        engine = self._engine
        headers = {**engine._headers(), "Accept": "text/event-stream"}
        while True:
            conn, reused = engine._take()
            self._conn = conn
            if self._closed.is_set():
                conn.close()
                raise Cancelled("closed")
            conn.timeout = self._read_timeout
            try:
                if conn.sock is None:
                    conn.connect()
                    if self._closed.is_set():  # cancelled while connecting: send nothing
                        conn.close()
                        raise Cancelled("closed")
                conn.request("POST", engine._path("/completions"), body=self._body, headers=headers)
                self._sock = conn.sock
                if conn.sock is not None:
                    conn.sock.settimeout(self._read_timeout)
                return conn.getresponse()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                conn.close()
                if not reused:
                    raise
                engine._drop_idle()

    def _read(self) -> None:
        engine = self._engine
        try:
            response = self._respond()
            if response.status != 200:
                _raise_for_status(
                    response.status,
                    response.read(4096),
                    engine.shown_url,
                    response.getheader("Location"),
                )
            kind = response.getheader("Content-Type") or ""
            if "event-stream" not in kind and "json" in kind:
                # A server (or proxy) that ignored "stream": the whole answer at once.
                self._queue.put(("whole", response.read(1 << 24)))
                self._reusable = response.isclosed() and not response.will_close
                self._queue.put(("end", None))
                return
            done = False
            for line in response:
                if self._closed.is_set():
                    return
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    response.read()  # the end of the body: the connection can serve again
                    done = True
                    break
                self._queue.put(("data", data))
            self._reusable = done and response.isclosed() and not response.will_close
            self._queue.put(("end" if done else "eof", None))
        except BaseException as exc:  # handed to the caller
            if not self._closed.is_set():
                self._queue.put(("error", exc))

    def chunks(self, cancel: CancelToken) -> Iterator[tuple[str, str | None]]:
        """(text, finish reason) per event, as they come."""
        last = time.monotonic()
        url = self._engine.shown_url
        while True:
            if cancel.cancelled:
                raise Cancelled(cancel.reason)
            if cancel.deadline is not None and time.monotonic() > cancel.deadline:
                self.deadline_hit = True  # (also while tokens keep coming)
                return
            try:
                kind, value = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                if cancel.deadline is not None and time.monotonic() > cancel.deadline:
                    self.deadline_hit = True  # the caller keeps what came
                    return
                if time.monotonic() - last > self._read_timeout:
                    raise EngineError(f"the serving engine at {url} stopped answering") from None
                continue
            last = time.monotonic()
            if kind == "end":
                return
            if kind == "eof":
                if self.finished:
                    return  # no [DONE], but a finish reason: a complete answer
                raise EngineError(
                    f"the serving engine at {url} closed the connection in the middle of the answer"
                )
            if kind == "error":
                if isinstance(value, EngineError):
                    raise value
                if isinstance(value, (ConnectionRefusedError, socket.gaierror)):
                    raise ServerUnreachable(
                        f"cannot reach the serving engine at {url}: {_reason(value)}"
                    ) from value
                raise EngineError(
                    f"the serving engine at {url} failed: {_reason(value)}"
                ) from value
            choice = _first_choice(value)
            if choice is None:
                log.debug("skipping an event that is not a completion: %r", value[:200])
                continue
            finish = choice.get("finish_reason")
            if kind == "whole":
                finish = finish or "stop"
            if finish:
                self.finished = True
            text = choice.get("text")
            yield (text if isinstance(text, str) else ""), (str(finish) if finish else None)

    def wait_end(self, grace: float) -> None:
        """After a finish reason: wait (a little) for the end of the body, so that the
        connection can serve the next request; a server slow to close it is not waited for."""
        until = time.monotonic() + grace
        while (left := until - time.monotonic()) > 0:
            try:
                kind, _ = self._queue.get(timeout=left)
            except queue.Empty:
                return
            if kind in ("end", "eof", "error"):
                return

    def close(self) -> None:
        """After the whole answer, keep the connection for the next request; before it,
        close it: the server takes a closed connection as an abort."""
        self._closed.set()
        conn = self._conn
        if conn is not None and self._reusable:
            self._engine._give(conn)
            return
        for sock in (self._sock, conn.sock if conn is not None else None):
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if conn is not None:
            conn.close()


# A control token of Qwen's vocabularies as text, or one of its user-defined tags (`<think>`).
_CONTROL = re.compile(r"<\|[A-Za-z0-9_]+\|>|</?(?:think|tool_call|tool_response)>")


def _loopback(host: str) -> bool:
    """Whether ``host`` is this machine (a name that resolves elsewhere is not)."""
    if host.lower() in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def text_for_server(prompt: Prompt) -> str:
    """The prompt as text for a serving engine, which parses every control-token string
    in it as the token: in the user's code and the workspace's (not in template text, or
    where a segment allows it) each is broken with a zero-width space, so a file holding
    `<|im_end|>` cannot end the prompt or start a turn of its own, and `<think>` in code
    cannot open a thought (serving engines match Qwen's user-defined tokens in any text;
    the local engine cuts them, `LlamaEngine.tokenize`)."""
    parts = []
    for segment in prompt.segments:
        if segment.specials == ALL_SPECIALS:
            parts.append(segment.text)
            continue
        parts.append(_CONTROL.sub(partial(_break_token, set(segment.specials)), segment.text))
    return "".join(parts)


def _break_token(allowed: set[str], match: re.Match[str]) -> str:
    token = match.group(0)
    return token if token in allowed else "<\u200b" + token[1:]


def _first_choice(data: bytes) -> dict[str, Any] | None:
    """`choices[0]` of a completion event, None for anything else."""
    try:
        event = json.loads(data)
    except ValueError:
        return None
    choices = event.get("choices") if isinstance(event, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    return choices[0]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is it running?)"
    return str(exc) or type(exc).__name__


def _raise_for_status(status: int, body: bytes, url: str, location: str | None = None) -> None:
    if status == 200:
        return
    if status in (401, 403):
        raise ModelLoadError(f"the serving engine at {url} refused the API key (HTTP {status})")
    if 300 <= status < 400:
        where = f" to {location}" if location else ""
        raise ModelLoadError(
            f"the serving engine at {url} redirects{where} (HTTP {status}): set model.url to "
            "the address it redirects to"
        )
    detail = body[:300].decode("utf-8", "replace").strip() or "(no details)"
    raise EngineError(f"the serving engine at {url} answered HTTP {status}: {detail}")
