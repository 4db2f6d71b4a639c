"""A `qwen-lsp` server process driven over raw JSON-RPC on its stdio, with no LSP
library in between: what the tests of the process itself (its exit code, its log, what
it answers to malformed input) and the benchmarks that run several servers or many
thousands of messages use.

    server = StdioServer(env={"XDG_CACHE_HOME": ...}, log_path=tmp / "server.log")
    server.initialize(workspace, {"model": {"path": ...}})
    server.wait_model()
    answer = server.request("textDocument/inlineCompletion", params).result(30)
    code = server.close()

Requests the server sends are answered at once (`workspace/configuration` with no
settings, others with null); its notifications are kept in `notes`.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import IO, Any

REPO = pathlib.Path(__file__).resolve().parents[2]


class StdioServer:
    """`python -m lsp_server` over stdio. `env` is added to this process's environment
    (with the repository on PYTHONPATH); the server's stderr goes to `log_path` (or
    nowhere). `command` replaces `python -m lsp_server` (the options follow it)."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        log_path: pathlib.Path | None = None,
        log_level: str = "WARNING",
        command: Sequence[str] = (),
    ) -> None:
        self.log_path = log_path
        self._log: IO[bytes] | None = open(log_path, "wb") if log_path else None  # noqa: SIM115 (closed in `wait`)
        self.proc = subprocess.Popen(
            [*(command or (sys.executable, "-m", "lsp_server")), "--log-level", log_level],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log if self._log is not None else subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        )
        self._next = 0
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.notes: list[dict[str, Any]] = []  # notifications from the server, in order
        self._strays: list[dict[str, Any]] = []  # answers to no request of ours (id null)
        self._stray_cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    # ---- the wire --------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        """Send one message as it is (`jsonrpc` added)."""
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    def write(self, data: bytes) -> None:
        """Write bytes to the server's stdin as they are (framed or not)."""
        assert self.proc.stdin is not None
        with self._lock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = 0
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            message = json.loads(out.read(length))
            if "method" in message and "id" in message:  # a request of the server's
                result: Any = [None] if message["method"] == "workspace/configuration" else None
                self.send({"id": message["id"], "result": result})
            elif "method" in message:
                self.notes.append(message)
            elif "id" in message:
                with self._lock:
                    future = self._pending.pop(message["id"], None)
                if future is not None:
                    future.set_result(message)
                else:
                    with self._stray_cv:
                        self._strays.append(message)
                        self._stray_cv.notify_all()

    # ---- messages --------------------------------------------------------------------

    def send_request(self, method: str, params: Any = None) -> tuple[int, Future[dict[str, Any]]]:
        """Send a request: its id (for `$/cancelRequest`) and the future of the whole
        response message (with `result` or `error`)."""
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            self._next += 1
            ident = self._next
            self._pending[ident] = future
        self.send({"id": ident, "method": method, "params": params})
        return ident, future

    def expect(self, ident: int) -> Future[dict[str, Any]]:
        """The future answer to a request sent by hand (`write`) with the id `ident`."""
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            self._pending[ident] = future
        return future

    def stray(self, timeout: float = 10) -> dict[str, Any]:
        """The next answer to no request of ours (an error about a message the server
        could not read has a null id)."""
        with self._stray_cv:
            assert self._stray_cv.wait_for(lambda: self._strays, timeout), "no stray answer"
            return self._strays.pop(0)

    def request(self, method: str, params: Any = None) -> Future[dict[str, Any]]:
        return self.send_request(method, params)[1]

    def answer(self, method: str, params: Any = None, timeout: float = 30) -> dict[str, Any]:
        """The whole response message to a request."""
        return self.request(method, params).result(timeout)

    def call(self, method: str, params: Any = None, timeout: float = 30) -> Any:
        """The result of a request (None for an error)."""
        return self.answer(method, params, timeout).get("result")

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"method": method, "params": params})

    def popups(self) -> list[str]:
        """The texts of the `window/showMessage` notifications so far."""
        return [
            n["params"]["message"] for n in list(self.notes) if n["method"] == "window/showMessage"
        ]

    # ---- LSP -------------------------------------------------------------------------

    def initialize(
        self,
        workspace: pathlib.Path,
        options: dict[str, Any],
        process_id: int | None = None,
        client_name: str = "",
        timeout: float = 60,
    ) -> dict[str, Any]:
        """`initialize` (`options` as initializationOptions) then `initialized`."""
        params: dict[str, Any] = {
            "processId": process_id,
            "rootUri": workspace.as_uri(),
            "workspaceFolders": [{"uri": workspace.as_uri(), "name": workspace.name}],
            "capabilities": {},
            "initializationOptions": options,
        }
        if client_name:
            params["clientInfo"] = {"name": client_name, "version": "1.0"}
        answer = self.answer("initialize", params, timeout)
        self.notify("initialized", {})
        return answer

    def stats(self, timeout: float = 30) -> dict[str, Any]:
        return self.call("qwenLsp/stats", {}, timeout)  # type: ignore[no-any-return]

    def wait_model(self, timeout: float = 60) -> dict[str, Any]:
        """`qwenLsp/stats` once the model is no longer loading (ready or failed)."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.stats()
            if data["model"] not in ("idle", "loading") or time.monotonic() > deadline:
                return data
            time.sleep(0.05)

    def wait_index(self, state: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.stats()["index"] != state:
            assert time.monotonic() < deadline, f"the index never became {state}"
            time.sleep(0.01)

    def open(self, path: pathlib.Path, text: str, language_id: str = "python") -> str:
        """Write `text` to `path` and open it; its URI."""
        path.write_text(text)
        uri = path.as_uri()
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": language_id, "version": 1, "text": text}},
        )
        return uri

    def inline(self, uri: str, line: int, character: int) -> Future[dict[str, Any]]:
        return self.request(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": character},
                "context": {"triggerKind": 1},
            },
        )

    # ---- the process -----------------------------------------------------------------

    def rss_kb(self) -> int:
        """The server process's resident memory (Linux)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def wait(self, timeout: float) -> tuple[int, float, str]:
        """Exit code, seconds until the process ended, its log (killed if it has not
        ended within `timeout`: the wait raises then)."""
        started = time.monotonic()
        try:
            code = self.proc.wait(timeout)
        finally:
            self.proc.kill()
            if self._log is not None:
                self._log.close()
        log = self.log_path.read_text(errors="replace") if self.log_path else ""
        return code, time.monotonic() - started, log

    def close(self, timeout: float = 30) -> int | None:
        """`shutdown` and `exit` (killed when it does not answer); its exit code."""
        if self.proc.poll() is None:
            try:
                self.answer("shutdown", None, timeout)
                self.notify("exit", None)
                self.proc.wait(timeout)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
        return self.proc.returncode
