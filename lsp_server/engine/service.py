"""The engine process: one `LlamaEngine` for every qwen-lsp server of a user.

Started by the first server that needs the model (`client.py`), it listens on a Unix
socket in the user's runtime folder (`endpoint.py`) and serves the servers that attach
to it: one queue for all of them (the same `EngineWorker` and priorities as in a
server: a completion preempts another editor's warm-up or prefetch; completions of two
editors run one after the other, never lost), one model, one checkpoint memory bound.
The model is loaded by the first request that needs it, and loaded again when its file
changed on disk. When the last server has left, the process waits `idleExitSeconds`
and exits, which frees the model's memory (GPU included).

If llama.cpp dies (SIGBUS on a model file truncated under it, an abort in a GPU build,
the OOM killer), this process dies and the servers live on: they answer the request in
flight (empty), say it once and start the engine again with the next request.

Run as ``python -m lsp_server.engine.service --key KEY --config JSON`` (servers do).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lsp_server import __version__
from lsp_server.engine import wire
from lsp_server.engine.endpoint import (
    Endpoint,
    ensure_private_dir,
    file_lock,
    hold_lock,
    listen,
    peer_allowed,
    peer_uid,
)
from lsp_server.engine.types import (
    Cancelled,
    CancelToken,
    EngineConfig,
    EngineError,
    ModelLoadError,
    file_identity,
)
from lsp_server.engine.worker import EngineWorker, Job, Priority

if TYPE_CHECKING:
    from lsp_server.engine.llama import LlamaEngine

log = logging.getLogger(__name__)

ACCEPT_POLL_S = 0.2  # how often the accept loop looks at the idle timer and at `stop`


@dataclass
class _Connection:
    """One server's connection: its socket, what it said about itself, its jobs."""

    sock: socket.socket
    number: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    client: dict[str, Any] | None = None  # from `hello`: name, pid, workspace
    attached_at: float = 0.0
    jobs: dict[int, Job[Any]] = field(default_factory=dict)

    def send(self, message: dict[str, Any]) -> None:
        with self.lock:
            try:
                wire.send(self.sock, message)
            except OSError:
                pass  # the server is gone: its reader ends and detaches it


class EngineService:
    def __init__(
        self,
        endpoint: Endpoint,
        config: EngineConfig,
        *,
        idle_exit_s: float,
        shared: bool,
    ) -> None:
        self.endpoint = endpoint
        self.config = config
        self.idle_exit_s = idle_exit_s
        self.shared = shared
        self.worker: EngineWorker[Any] = EngineWorker(name="qwen-lsp-engine")
        self.engine: LlamaEngine | None = None
        self.model_state = "not loaded"  # not loaded | loading | ready | failed
        self.model_message = ""
        self.loads = 0
        self.jobs_served = 0
        self.started = time.monotonic()
        self._failure: tuple[tuple[int, ...] | None, str] | None = None
        # Held to tokenize (from the connections' threads, beside a decode: llama.cpp's
        # vocabulary is read-only) and to load or free the model (the engine thread).
        self._vocab_lock = threading.Lock()
        self._lock = threading.Lock()
        self._connections: dict[int, _Connection] = {}
        self._next = 0
        self._pending = 0  # requests queued or running
        self._idle_since = time.monotonic()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._socket_inode = 0

    # ---- the process --------------------------------------------------------------------

    def serve(self) -> int:
        self._listener = listen(self.endpoint)
        self._socket_inode = os.stat(self.endpoint.socket_path).st_ino
        self._listener.settimeout(ACCEPT_POLL_S)
        log.info(
            "engine %s (pid %d, %s) listening on %s for %s",
            self.endpoint.key,
            os.getpid(),
            "shared" if self.shared else "private",
            self.endpoint.socket_path,
            os.path.basename(self.config.model_path),
        )
        try:
            while not self._stop.is_set():
                try:
                    sock, _ = self._listener.accept()
                except TimeoutError:
                    if self._idle_expired() and self._leave_if_idle():
                        break
                    continue
                except OSError:
                    if self._stop.is_set():
                        break
                    raise
                self._accept(sock)
        finally:
            self._close()
        return 0

    def stop(self) -> None:
        self._stop.set()

    def _idle_expired(self) -> bool:
        with self._lock:
            attached = any(c.client is not None for c in self._connections.values())
            if attached:
                return False
            return time.monotonic() - self._idle_since >= self.idle_exit_s

    def _leave_if_idle(self) -> bool:
        """Stop listening, unless a server is starting or attaching right now: under the
        start lock no server can be between "nothing listens" and "start one"."""
        with file_lock(self.endpoint.lock_path, wait_s=0) as locked:
            if not locked or not self._idle_expired():
                return False
            self._unlink_socket()
            log.info(
                "no editor attached for %.0f s: the engine exits",
                time.monotonic() - self._idle_since,
            )
            return True

    def _unlink_socket(self) -> None:
        listener = self._listener
        if listener is None:
            return
        with contextlib.suppress(OSError):
            if os.stat(self.endpoint.socket_path).st_ino == self._socket_inode:  # not a successor's
                os.unlink(self.endpoint.socket_path)
        with contextlib.suppress(OSError):
            listener.close()
        self._listener = None

    def _close(self) -> None:
        self._unlink_socket()
        with self._lock:
            connections = list(self._connections.values())
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        self.worker.cancel_all()
        done = self.worker.submit(lambda token: self._free(), priority=Priority.USER)
        with contextlib.suppress(Exception):
            done.future.result(timeout=10)
        self.worker.shutdown()

    def _free(self) -> None:
        with self._vocab_lock:
            if self.engine is not None:
                self.engine.close()
                self.engine = None

    # ---- connections --------------------------------------------------------------------

    def _accept(self, sock: socket.socket) -> None:
        uid = peer_uid(sock)
        if not peer_allowed(uid):
            log.warning(
                "refused a connection from uid %s (this engine serves uid %d)", uid, os.getuid()
            )
            sock.close()
            return
        with self._lock:
            self._next += 1
            conn = _Connection(sock, self._next)
            self._connections[conn.number] = conn
        threading.Thread(
            target=self._read, args=(conn,), name=f"qwen-lsp-engine-conn-{conn.number}", daemon=True
        ).start()

    def _read(self, conn: _Connection) -> None:
        try:
            while True:
                message = wire.recv(conn.sock)
                if message is None:
                    break
                self._handle(conn, message)
        except wire.ConnectionLost as exc:
            log.warning("connection %d: %s", conn.number, exc)
        except Exception:
            log.exception("connection %d failed", conn.number)
        finally:
            self._detach(conn)

    def _detach(self, conn: _Connection) -> None:
        for job in list(conn.jobs.values()):
            job.cancel("the editor left")
        with self._lock:
            self._connections.pop(conn.number, None)
            was_attached = conn.client is not None
            if was_attached and not any(c.client is not None for c in self._connections.values()):
                self._idle_since = time.monotonic()
        with contextlib.suppress(OSError):
            conn.sock.close()
        if was_attached:
            log.info("%s left", _client_name(conn.client))
            self._broadcast()

    def _handle(self, conn: _Connection, message: dict[str, Any]) -> None:
        op = message.get("op")
        ident = message.get("id")
        try:
            if op == "hello":
                self._hello(conn, message)
            elif op == "status":
                conn.send({"id": ident, "result": self.status()})
            elif op == "count":
                conn.send({"id": ident, "result": self._count(str(message["text"]))})
            elif op == "load":
                self._submit(conn, message, lambda token: self._load_answer())
            elif op == "run":
                self._submit(conn, message, self._run_job(message))
            elif op == "warm":
                prompt = wire.prompt_from_wire(message["prompt"])
                self._submit(
                    conn, message, lambda token: _figures(self._ready().warm(prompt, token))
                )
            elif op == "cancel":
                job = conn.jobs.get(int(message["target"]))
                if job is not None:
                    job.cancel(str(message.get("reason") or "cancelled"))
            elif op == "stop":
                log.info("asked to stop by pid %s", message.get("pid"))
                conn.send({"id": ident, "result": True})
                self.stop()
            else:
                raise EngineError(f"unknown request {op!r}")
        except (KeyError, TypeError, ValueError) as exc:
            conn.send({"id": ident, "error": f"bad {op} request: {exc}", "kind": "engine"})
        except EngineError as exc:
            conn.send({"id": ident, "error": str(exc), "kind": "engine"})

    def _hello(self, conn: _Connection, message: dict[str, Any]) -> None:
        if message.get("protocol") != wire.PROTOCOL:
            conn.send({"id": message.get("id"), "error": "protocol mismatch", "kind": "engine"})
            return
        client = message.get("client") or {}
        conn.client = {
            "name": str(client.get("name") or "qwen-lsp"),
            "pid": int(client.get("pid") or 0),
            "workspace": str(client.get("workspace") or ""),
        }
        conn.attached_at = time.monotonic()
        idle = message.get("idleExitSeconds")
        if isinstance(idle, (int, float)) and idle >= 0 and self.shared:
            self.idle_exit_s = float(idle)  # the latest editor's setting
        log.info("%s attached (pid %d)", conn.client["name"], conn.client["pid"])
        conn.send({"id": message.get("id"), "result": self.status()})
        self._broadcast()

    def _submit(
        self, conn: _Connection, message: dict[str, Any], fn: Callable[[CancelToken], Any]
    ) -> None:
        ident = int(message["id"])
        priority = Priority(min(max(int(message.get("priority", 0)), 0), len(Priority) - 1))
        timeout = message.get("timeoutS")
        job = self.worker.submit(
            fn,
            priority=priority,
            key=f"server:{conn.number}",  # a server's newer request supersedes its older
            timeout_s=max(0.001, float(timeout)) if timeout is not None else None,
        )
        conn.jobs[ident] = job
        with self._lock:
            self._pending += 1
        job.future.add_done_callback(lambda future: self._answer(conn, ident, future))
        self._broadcast()

    def _answer(self, conn: _Connection, ident: int, future: Future[Any]) -> None:
        conn.jobs.pop(ident, None)
        with self._lock:
            self._pending -= 1
            self.jobs_served += 1
        if future.cancelled():
            conn.send({"id": ident, "cancelled": "cancelled"})
        else:
            exc = future.exception()
            if exc is None:
                conn.send({"id": ident, "result": future.result()})
            elif isinstance(exc, Cancelled):
                figures = exc.figures
                conn.send(
                    {
                        "id": ident,
                        "cancelled": str(exc) or "cancelled",
                        "figures": _figures(figures) if figures is not None else None,
                    }
                )
            elif isinstance(exc, ModelLoadError):
                conn.send({"id": ident, "error": str(exc), "kind": "load"})
            elif isinstance(exc, EngineError):
                conn.send({"id": ident, "error": str(exc), "kind": "engine"})
            else:
                log.error("request failed", exc_info=exc)
                conn.send({"id": ident, "error": f"the engine failed: {exc}", "kind": "engine"})
        self._broadcast()

    def _broadcast(self) -> None:
        status = self.status()
        with self._lock:
            connections = [c for c in self._connections.values() if c.client is not None]
        for conn in connections:
            conn.send({"status": status})

    # ---- the model ----------------------------------------------------------------------

    def _ready(self) -> LlamaEngine:
        """The engine, loaded now if it is not (or again if its file changed on disk)."""
        engine = self.engine
        if engine is not None and engine.model_file_changed():
            log.warning("the model file changed on disk: loading it again")
            self._free()
            engine = None
        if engine is not None:
            return engine
        path = self.config.model_path
        identity = file_identity(path)
        if self._failure is not None and self._failure[0] == identity:
            raise ModelLoadError(self._failure[1])  # the same file fails the same way
        self.model_state = "loading"
        self._broadcast()
        started = time.perf_counter()
        try:
            from lsp_server.engine.llama import LlamaEngine  # loads llama.cpp

            with self._vocab_lock:
                self.engine = LlamaEngine(self.config)
        except Exception as exc:
            if not isinstance(exc, EngineError):
                log.exception("model load failed")
            message = (
                str(exc)
                if isinstance(exc, EngineError)
                else f"the model could not be loaded ({exc})"
            )
            self._failure = (identity, message)
            self.model_state, self.model_message = "failed", message
            self._broadcast()
            raise ModelLoadError(message) from exc
        self._failure = None
        self.loads += 1
        self.model_state, self.model_message = "ready", ""
        log.info(
            "model loaded in %.0f ms (load %d)", (time.perf_counter() - started) * 1000, self.loads
        )
        return self.engine

    def _load_answer(self) -> dict[str, Any]:
        engine = self._ready()
        return {"info": wire.info_to_wire(engine.info), "nCtx": engine.n_ctx}

    def _run_job(self, message: dict[str, Any]) -> Callable[[CancelToken], Any]:
        prompt = wire.prompt_from_wire(message["prompt"])
        rule = wire.decode_rule(message.get("rule"))
        max_tokens = int(message["maxTokens"])

        def run(token: CancelToken) -> dict[str, Any]:
            generation = self._ready().run(prompt, max_tokens=max_tokens, rule=rule, cancel=token)
            return wire.generation_to_wire(generation)

        return run

    def _count(self, text: str) -> int:
        with self._vocab_lock:
            engine = self.engine
            if engine is None:
                raise EngineError("the model is not loaded")
            return len(engine.tokenize(text))

    # ---- what it says about itself ------------------------------------------------------

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            clients = [
                {**c.client, "attachedS": round(now - c.attached_at, 1)}
                for c in self._connections.values()
                if c.client is not None
            ]
        engine = self.engine
        return {
            "pid": os.getpid(),
            "version": __version__,
            "shared": self.shared,
            "key": self.endpoint.key,
            "socket": self.endpoint.socket_path,
            "model": self.config.model_path,
            "modelState": self.model_state,
            "modelMessage": self.model_message,
            "modelLoads": self.loads,
            "editors": clients,
            "jobs": self.jobs_served,
            "busy": self._pending > 0,  # a request of some editor runs or waits
            "pending": self._pending,
            "idleExitSeconds": self.idle_exit_s,
            "uptimeS": round(now - self.started, 1),
            "rssMb": _rss_mb(),
            "peakRssMb": _peak_rss_mb(),
            "engine": engine.describe() if engine is not None else None,
        }


def _figures(figures: Any) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(figures)


def _client_name(client: dict[str, Any] | None) -> str:
    return str((client or {}).get("name") or "a server")


def _rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lsp_server.engine.service")
    parser.add_argument("--key", required=True)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--config", required=True, help="the EngineConfig as JSON")
    parser.add_argument("--idle-exit", type=float, default=300.0)
    parser.add_argument("--private", action="store_true", help="one server's engine")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    from lsp_server.cli import setup_logging

    setup_logging(args.log_level)
    endpoint = Endpoint(ensure_private_dir(args.folder), args.key)
    if hold_lock(endpoint.pid_path) is None:
        log.info("an engine for %s runs already: leaving", args.key)
        return 0
    config = wire.config_from_wire(json.loads(args.config))
    service = EngineService(endpoint, config, idle_exit_s=args.idle_exit, shared=not args.private)
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    signal.signal(signal.SIGINT, lambda *_: service.stop())
    return service.serve()


if __name__ == "__main__":
    sys.exit(main())
