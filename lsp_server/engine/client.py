"""A server's side of the engine process: `EngineClient` implements `Engine` over the
engine's socket, so the completer and the code actions do not know the model runs in
another process.

Attaching (`EngineClient.attach`): connect to the engine of this model and these load
settings; when none listens, take the start lock, look again (another server may have
started it meanwhile), start it (`python -m lsp_server.engine.service`, in a session of
its own so that it outlives this server) and wait until it accepts. Then `hello` (who
we are, for `qwen-lsp doctor` and the editors' status) and `load` (the model, unless
it is loaded already: the answer is its description).

A request crosses as the prompt's segments, `max_tokens`, the stop rule's parameters,
the job's priority and the time left to its deadline; cancelling the job sends `cancel`
and the engine answers with what it cost until then. If the engine process dies, every
request in flight fails at once with `EngineProcessLost` (never hangs) and the next
request starts the engine again and attaches anew.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

from lsp_server import __version__
from lsp_server.engine import wire
from lsp_server.engine.endpoint import (
    Endpoint,
    EngineUnreachable,
    connect,
    engine_key,
    ensure_private_dir,
    file_lock,
    runtime_dir,
)
from lsp_server.engine.types import (
    NEVER,
    Cancelled,
    CancelToken,
    EngineConfig,
    EngineError,
    Figures,
    Generation,
    ModelInfo,
    ModelLoadError,
    Prompt,
    file_identity,
    text_end,
)

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0  # from starting the engine process until it accepts
LOCK_TIMEOUT_S = 90.0  # waiting for another server that is starting it
CALL_TIMEOUT_S = 30.0  # a quick request (hello, count) that the engine answers at once
CANCEL_GRACE_S = 5.0  # after `cancel`, how long the engine's answer may take
POLL_S = 0.02  # how often a waiting request looks at its cancel token
ATTACH_TRIES = 3  # an engine that exits (idle) just as we attach: start it again
COUNT_CACHE_BYTES = 8 << 20
# A one-shot command (`qwen-lsp complete`) that started the engine leaves it this long at
# most (a script's next call finds the model loaded; a lone call does not hold it for
# `engine.idleExitSeconds`).
ONESHOT_IDLE_S = 30.0


# Longer texts are bounded, not counted exactly (see `EngineClient.count_tokens`).
EXACT_COUNT_CHARS = 1 << 18


class EngineProcessLost(EngineError):
    """The engine process stopped (crashed, was killed) while this server used it."""


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who attaches: shown by `qwen-lsp doctor`, `qwenLsp/stats` and the editors."""

    name: str = "qwen-lsp"  # the editor (LSP clientInfo), e.g. "Neovim 0.12.0"
    workspace: str = ""
    pid: int = 0
    # A command that attaches for one request (`qwen-lsp complete`), not an editor: it
    # leaves a running engine's idle time as the editors set it, and an engine it starts
    # itself stays at most `ONESHOT_IDLE_S` after it.
    oneshot: bool = False


def engine_identity(config: EngineConfig) -> dict[str, Any]:
    """What must be equal for two servers to share an engine: the model file and what
    its load depends on, and this code's version. (The checkpoint bound and the slots
    are the first server's: they are one engine's.)"""
    return {
        "model": os.path.realpath(config.model_path),
        "nCtx": config.n_ctx,
        "nGpuLayers": config.n_gpu_layers,
        "flashAttention": config.flash_attention,
        "kvCacheType": config.kv_cache_type,
        "threads": config.n_threads,
        "batch": config.n_batch,
        "version": __version__,
        "protocol": wire.PROTOCOL,
    }


class _Connection:
    """One socket to the engine, a reader thread, and the requests awaiting answers."""

    def __init__(self, sock: socket.socket, on_status: Callable[[dict[str, Any]], None]) -> None:
        self.sock = sock
        self._on_status = on_status
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self.lost: str | None = None  # why the connection ended, once it has
        self._reader = threading.Thread(
            target=self._read, name="qwen-lsp-engine-reader", daemon=True
        )
        self._reader.start()

    def request(self, message: dict[str, Any]) -> tuple[int, Future[dict[str, Any]]]:
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            if self.lost is not None:
                raise EngineProcessLost(self.lost)
            ident = next(self._ids)
            self._pending[ident] = future
        self.send({**message, "id": ident})
        return ident, future

    def send(self, message: dict[str, Any]) -> None:
        try:
            with self._send_lock:
                wire.send(self.sock, message)
        except OSError as exc:
            self._fail(f"the engine process cannot be reached ({exc})")
            raise EngineProcessLost(self.lost or str(exc)) from exc

    def call(self, message: dict[str, Any], timeout: float = CALL_TIMEOUT_S) -> Any:
        _, future = self.request(message)
        try:
            answer = future.result(timeout)
        except FutureTimeout:
            raise EngineError(
                f"the engine did not answer {message['op']} in {timeout:.0f} s"
            ) from None
        return _result(answer)

    def _read(self) -> None:
        reason = "the engine process closed the connection"
        try:
            while True:
                message = wire.recv(self.sock)
                if message is None:
                    break
                if "status" in message:
                    self._on_status(message["status"])
                    continue
                with self._lock:
                    future = self._pending.pop(message.get("id", -1), None)
                if future is not None and not future.done():
                    future.set_result(message)
        except (wire.ConnectionLost, OSError) as exc:
            reason = f"the connection to the engine process broke ({exc})"
        self._fail(reason)

    def _fail(self, reason: str) -> None:
        with self._lock:
            if self.lost is None:
                self.lost = reason
            pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(EngineProcessLost(reason))

    def close(self) -> None:
        self._fail("closed")
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


def _result(answer: dict[str, Any]) -> Any:
    if "result" in answer:
        return answer["result"]
    if "cancelled" in answer:
        exc = Cancelled(answer["cancelled"])
        if answer.get("figures"):
            exc.figures = wire.figures_from_wire(answer["figures"])
        raise exc
    message = str(answer.get("error") or "the engine failed")
    if answer.get("kind") == "load":
        raise ModelLoadError(message)
    raise EngineError(message)


class EngineClient:
    """`Engine` over the engine process's socket (see the module's docstring). Methods
    run on the server's engine thread, as with the in-process engine; `describe` and
    `close` from any thread."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        shared: bool = True,
        idle_exit_s: float = 300.0,
        client: ClientInfo | None = None,
        folder: str | None = None,
        log_level: str = "INFO",
    ) -> None:
        self.config = config
        self.shared = shared
        self.idle_exit_s = idle_exit_s
        self.client = client or ClientInfo()
        self.log_level = log_level
        key = engine_key(engine_identity(config)) if shared else f"p{uuid.uuid4().hex[:12]}"
        self.endpoint = Endpoint.for_key(key, folder or runtime_dir())
        self._conn: _Connection | None = None
        self._proc: subprocess.Popen[bytes] | None = None  # when this server started it
        self._status: dict[str, Any] = {}
        self._file_id = file_identity(config.model_path)
        # text -> (its size, its token count): the completer counts the same snippets
        # at every keystroke, and each count is a round trip.
        self._counts: LRUCache[str, tuple[int, int]] = LRUCache(
            COUNT_CACHE_BYTES, getsizeof=lambda entry: entry[0]
        )
        self._count_sock: socket.socket | None = None
        self._count_lock = threading.Lock()
        self._closed = False
        self.restarts = 0
        self.info: ModelInfo
        self._n_ctx = 0

    @classmethod
    def attach(cls, config: EngineConfig, **kw: Any) -> EngineClient:
        """Attach to (or start) the engine and load the model; ModelLoadError when it
        cannot be loaded, EngineUnreachable when the engine cannot be started."""
        client = cls(config, **kw)
        try:
            client._attach()
        except BaseException:
            client.close()
            raise
        return client

    # ---- Engine -------------------------------------------------------------------------

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    def count_tokens(self, text: str) -> int:
        if len(text) > EXACT_COUNT_CHARS:
            # A whole large document (a 50 MB file before the cursor window is cut) is not
            # sent over the socket to be counted: its UTF-8 length bounds its tokens from
            # above (a token is at least one byte), which is all "does it fit" needs.
            return len(text.encode("utf-8", "surrogatepass"))
        cached = self._counts.get(text)
        if cached is not None:
            return cached[1]
        count = self._count(text)
        if len(text) < COUNT_CACHE_BYTES // 8:
            self._counts[text] = (len(text) + 64, count)
        return count

    def run(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        rule: Callable[[str], int | None] | None = None,
        cancel: CancelToken = NEVER,
    ) -> Generation:
        spec, local_rule = wire.encode_rule(rule)
        message = {
            "op": "run",
            "prompt": wire.prompt_to_wire(prompt),
            "maxTokens": max_tokens,
            "rule": spec,
        }
        generation = wire.generation_from_wire(self._job(message, cancel))
        if local_rule is not None and generation.stop_reason in ("length", "eos", "time"):
            ended = text_end(generation.text, (), local_rule)
            if ended is not None:
                generation.text, generation.stop_reason = ended
        return generation

    def _count(self, text: str) -> int:
        """One count, over a connection of its own, answered by the engine at once (not
        queued behind another editor's generation): send, then read the answer here,
        without a hop through the reader thread."""
        self._connection()  # restarts a dead engine
        with self._count_lock:
            sock = self._count_sock
            try:
                if sock is None:
                    sock = self._count_sock = connect(self.endpoint)
                    sock.settimeout(CALL_TIMEOUT_S)
                wire.send(sock, {"op": "count", "id": 0, "text": text})
                answer = wire.recv(sock)
            except (OSError, wire.ConnectionLost) as exc:
                self._drop_count_socket()
                raise EngineProcessLost(self._lost_message(str(exc))) from None
            if answer is None:
                self._drop_count_socket()
                raise EngineProcessLost(self._lost_message("closed"))
        return int(_result(answer))

    def _drop_count_socket(self) -> None:
        sock, self._count_sock = self._count_sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def warm(self, prompt: Prompt, cancel: CancelToken = NEVER) -> Figures:
        answer = self._job({"op": "warm", "prompt": wire.prompt_to_wire(prompt)}, cancel)
        return wire.figures_from_wire(answer)

    def model_file_changed(self) -> bool:
        """The file was replaced or rewritten: the server reloads, and so does the engine
        (it checks before each request)."""
        return file_identity(self.config.model_path) != self._file_id

    def describe(self) -> dict[str, Any]:
        """The engine's checkpoints (one bound for every editor) and the engine process:
        shared or private, its pid, model loads, the editors attached."""
        status = dict(self._status)
        described: dict[str, Any] = dict(status.pop("engine", None) or {})
        status["connected"] = self._conn is not None and self._conn.lost is None
        status["restarts"] = self.restarts
        described["engineProcess"] = status
        return described

    def close(self) -> None:
        """Detach: the engine goes on for the other editors (a private one exits)."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        with self._count_lock:
            self._drop_count_socket()
        proc = self._proc
        if proc is not None and not self.shared:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

    # ---- attaching ----------------------------------------------------------------------

    def _connection(self) -> _Connection:
        """The live connection; after the engine died, start it again and attach."""
        conn = self._conn
        if conn is not None and conn.lost is None:
            return conn
        if self._closed:
            raise EngineError("the engine connection is closed")
        if conn is not None:
            self.restarts += 1
            log.warning("the engine process is gone (%s): starting it again", conn.lost)
            conn.close()
            self._conn = None
            with self._count_lock:
                self._drop_count_socket()
        self._attach()
        assert self._conn is not None
        return self._conn

    def _attach(self) -> None:
        last: Exception | None = None
        for _ in range(ATTACH_TRIES):
            sock = self._connect_or_start()
            conn = _Connection(sock, self._on_status)
            hello: dict[str, Any] = {
                "op": "hello",
                "protocol": wire.PROTOCOL,
                "client": {
                    "name": self.client.name,
                    "pid": self.client.pid or os.getpid(),
                    "workspace": self.client.workspace,
                },
            }
            if not self.client.oneshot:  # (an editor's setting, not a command's)
                hello["idleExitSeconds"] = self.idle_exit_s
            try:
                status = conn.call(hello)
            except EngineProcessLost as exc:  # it was leaving (idle) as we came
                conn.close()
                last = exc
                continue
            self._status = status
            self._conn = conn
            self._file_id = file_identity(self.config.model_path)
            loaded = self._wait(conn, {"op": "load", "priority": 0}, NEVER)
            self.info = wire.info_from_wire(loaded["info"])
            self._n_ctx = int(loaded["nCtx"])
            self._counts.clear()
            log.info(
                "attached to the %s engine (pid %s, %d editor(s))",
                "shared" if self.shared else "private",
                status.get("pid"),
                len(status.get("editors", ())),
            )
            return
        raise EngineUnreachable(f"the engine process exits as it starts ({last})")

    def _connect_or_start(self) -> socket.socket:
        try:
            return connect(self.endpoint)
        except OSError:
            pass
        ensure_private_dir(self.endpoint.folder)
        with file_lock(self.endpoint.lock_path, wait_s=LOCK_TIMEOUT_S) as locked:
            if not locked:
                raise EngineUnreachable(
                    f"another qwen-lsp has been starting the engine for {LOCK_TIMEOUT_S:.0f} s"
                )
            try:
                return connect(self.endpoint)  # started by another server meanwhile
            except OSError:
                pass
            return self._start()

    def _start(self) -> socket.socket:
        """Start the engine process and wait until it accepts (under the start lock)."""
        command = [
            sys.executable,
            "-m",
            "lsp_server.engine.service",
            "--key",
            self.endpoint.key,
            "--folder",
            self.endpoint.folder,
            "--config",
            json.dumps(wire.config_to_wire(self.config)),
            "--idle-exit",
            str(self._start_idle_s()),
            "--log-level",
            self.log_level,
        ]
        if not self.shared:
            command.append("--private")
        log.info(
            "starting the %s engine for %s (log: %s)",
            "shared" if self.shared else "private",
            os.path.basename(self.config.model_path),
            self.endpoint.log_path,
        )
        fd = os.open(self.endpoint.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=fd,
                close_fds=True,
                # Shared: its own session, so that it outlives this server (and the
                # terminal's Ctrl+C); a private one stays in ours.
                start_new_session=self.shared,
            )
        except OSError as exc:
            raise EngineUnreachable(f"cannot start the engine process: {exc}") from exc
        finally:
            os.close(fd)
        self._proc = proc
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                return connect(self.endpoint)
            except OSError:
                pass
            if proc.poll() is not None:
                raise EngineUnreachable(
                    f"the engine process exited at start ({_exit_reason(proc.returncode)}): "
                    f"{_log_tail(self.endpoint.log_path)}"
                )
            if time.monotonic() > deadline:
                proc.kill()
                raise EngineUnreachable(
                    f"the engine process did not start within {START_TIMEOUT_S:.0f} s"
                )
            time.sleep(0.02)

    def _start_idle_s(self) -> float:
        """The idle time of an engine this server starts: its setting; a private engine's
        is 0 (it exits with its server) and a one-shot command's short."""
        if not self.shared:
            return 0.0
        return min(self.idle_exit_s, ONESHOT_IDLE_S) if self.client.oneshot else self.idle_exit_s

    def _on_status(self, status: dict[str, Any]) -> None:
        self._status = status

    # ---- requests -----------------------------------------------------------------------

    def _job(self, message: dict[str, Any], cancel: CancelToken) -> Any:
        message = {**message, "priority": cancel.priority}
        if cancel.deadline is not None:
            message["timeoutS"] = cancel.deadline - time.monotonic()
        try:
            return self._wait(self._connection(), message, cancel)
        except EngineProcessLost as exc:
            raise EngineProcessLost(self._lost_message(str(exc))) from None

    def _wait(self, conn: _Connection, message: dict[str, Any], cancel: CancelToken) -> Any:
        """Send a queued request and wait for its answer, passing a cancel on."""
        ident, future = conn.request(message)
        cancelled_at: float | None = None
        while True:
            try:
                answer = future.result(POLL_S)
                break
            except FutureTimeout:
                pass
            if cancel.cancelled and cancelled_at is None:
                cancelled_at = time.monotonic()
                with contextlib.suppress(EngineError):
                    conn.send({"op": "cancel", "target": ident, "reason": cancel.reason})
            if cancelled_at is not None and time.monotonic() - cancelled_at > CANCEL_GRACE_S:
                raise Cancelled(cancel.reason)  # the engine is slow to stop: not our wait
        return _result(answer)

    def _lost_message(self, reason: str) -> str:
        """Why the engine stopped, as far as this server can tell."""
        detail = ""
        proc = self._proc
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(1)
            if proc.returncode is not None:
                detail = f" ({_exit_reason(proc.returncode)})"
        if self.model_file_changed():
            detail += ": the model file changed on disk while it was in use"
        return f"the engine process stopped{detail}; it starts again with the next request"


def _exit_reason(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def _log_tail(path: str, lines: int = 5) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            tail = fh.read().strip().splitlines()[-lines:]
    except OSError:
        return "(no log)"
    return " | ".join(tail) or "(empty log)"


def _each_engine(
    folder: str | None, timeout: float
) -> Iterator[tuple[socket.socket, dict[str, Any]]]:
    """Each engine of this user that answers, as its open socket and its status (the
    socket is closed when the caller moves on); a socket nobody answers on is skipped."""
    from lsp_server.engine.endpoint import list_endpoints

    for endpoint in list_endpoints(folder):
        try:
            sock = connect(endpoint, timeout)
        except OSError:
            continue
        try:
            sock.settimeout(timeout)
            wire.send(sock, {"op": "status", "id": 1})
            answer = wire.recv(sock)
            if answer and isinstance(answer.get("result"), dict):
                yield sock, answer["result"]
        except (OSError, EngineError, ValueError):
            pass
        finally:
            sock.close()


def engine_status(folder: str | None = None, timeout: float = 2.0) -> list[dict[str, Any]]:
    """The engines running for this user (for `qwen-lsp doctor` and `qwen-lsp engine`),
    each as its status; a socket nobody answers on is left out."""
    return [status for _, status in _each_engine(folder, timeout)]


def stop_engines(folder: str | None = None, timeout: float = 5.0) -> list[int]:
    """Ask every engine of this user to exit now (the model's memory is freed); the pids
    of those that were asked. Waits up to `timeout` for them to be gone."""
    pids = []
    for sock, status in _each_engine(folder, timeout):
        try:
            pid = int(status.get("pid") or 0)
            wire.send(sock, {"op": "stop", "id": 2, "pid": os.getpid()})
            wire.recv(sock)
        except (OSError, EngineError, ValueError):
            continue
        if pid:
            pids.append(pid)
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    # A child of ours that exited is a zombie until reaped: reap it (not ours: ignore).
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def local_engine(
    config: EngineConfig,
    *,
    shared: bool,
    idle_exit_s: float,
    client: ClientInfo,
    log_level: str = "INFO",
) -> Any:
    """The engine for a local model: the engine process (shared by the user's editors, or
    this server's own), or the model in this process where Unix sockets are missing
    (Windows). Raises ModelLoadError / EngineUnreachable with a message for the user."""
    from lsp_server.engine.endpoint import supported

    if not supported():
        from lsp_server.engine.llama import LlamaEngine  # loads llama.cpp

        return LlamaEngine(config)
    return EngineClient.attach(
        config, shared=shared, idle_exit_s=idle_exit_s, client=client, log_level=log_level
    )
