"""The server's process ends when its client does: `shutdown`/`exit`, a closed stdin or a
dead client process, also in the middle of a cold index build. Driven over raw stdio
(the process, its exit code and its log are what is checked)."""

from __future__ import annotations

import glob
import json
import os
import pathlib
import sqlite3
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
FILES = 6000  # a cold build of these takes seconds on two cores


class RawClient:
    """JSON-RPC over the server's stdio, with its stderr kept in a file."""

    def __init__(self, tmp: pathlib.Path) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "XDG_CACHE_HOME": str(tmp / "cache"),
            "XDG_DATA_HOME": str(tmp / "data"),
            "HF_HOME": str(tmp / "hf"),
        }
        self.log_path = tmp / "server.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in `wait`)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lsp_server", "--log-level", "INFO"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )
        self._next = 0
        self._answers: dict[int, Any] = {}
        self._cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = 0
            while (line := out.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if not line:
                return
            message = json.loads(out.read(length))
            if "method" in message and "id" in message:  # a request from the server
                self.send({"id": message["id"], "result": None})
            elif "id" in message:
                with self._cv:
                    self._answers[message["id"]] = message
                    self._cv.notify_all()

    def send(self, message: dict[str, Any]) -> None:
        data = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
        self.proc.stdin.flush()

    def request(self, method: str, params: Any = None, timeout: float = 30) -> Any:
        self._next += 1
        ident = self._next
        self.send({"id": ident, "method": method, "params": params})
        with self._cv:
            assert self._cv.wait_for(lambda: ident in self._answers, timeout), method
            return self._answers.pop(ident).get("result")

    def start(self, workspace: pathlib.Path, process_id: int | None = None) -> None:
        self.request(
            "initialize",
            {
                "processId": process_id,
                "rootUri": workspace.as_uri(),
                "capabilities": {},
                "initializationOptions": {"context": {"enabled": True}},
            },
        )
        self.send({"method": "initialized", "params": {}})

    def wait_index(self, state: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.request("qwenLsp/stats")["index"] != state:
            assert time.monotonic() < deadline, f"the index never became {state}"
            time.sleep(0.01)

    def wait(self, timeout: float) -> tuple[int, float, str]:
        """Exit code, seconds until the process ended, its log."""
        started = time.monotonic()
        try:
            code = self.proc.wait(timeout)
        finally:
            self.proc.kill()
            self._log.close()
        return code, time.monotonic() - started, self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def big_workspace(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("big")
    for i in range(FILES):
        folder = root / f"pkg{i % 60}"
        folder.mkdir(exist_ok=True)
        (folder / f"mod{i}.py").write_text(
            "".join(f"def function_{i}_{k}(a, b):\n    return a * {k} + b\n\n" for k in range(20))
        )
    return root


def indexed_rows(tmp: pathlib.Path) -> int:
    [db] = glob.glob(str(tmp / "cache" / "qwen-lsp" / "index" / "*.sqlite3"))
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM files").fetchone()[0])


NOISE = ("Traceback", "closed database", "closed file", "did not stop")


def test_shutdown_during_a_cold_index_stops_it_saves_it_and_exits(
    big_workspace: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    client = RawClient(tmp_path)
    client.start(big_workspace)
    client.wait_index("building")
    client.request("shutdown")
    client.send({"method": "exit"})
    code, seconds, log = client.wait(timeout=30)
    assert code == 0, log[-3000:]
    assert not [line for line in log.splitlines() if any(n in line for n in NOISE)], log[-3000:]
    # Cancelled, not finished: what was parsed is saved, and the rest is for next time.
    assert 0 <= indexed_rows(tmp_path) < FILES
    assert seconds < 10, seconds


def test_a_closed_stdin_during_a_cold_index_ends_the_process(
    big_workspace: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    client = RawClient(tmp_path)
    client.start(big_workspace)
    client.wait_index("building")
    assert client.proc.stdin is not None
    client.proc.stdin.close()  # the editor went away without a word
    code, seconds, log = client.wait(timeout=30)
    assert code == 0, log[-3000:]
    assert not [line for line in log.splitlines() if any(n in line for n in NOISE)], log[-3000:]
    assert indexed_rows(tmp_path) < FILES
    assert seconds < 10, seconds


@pytest.mark.skipif(sys.platform == "win32", reason="uses `sleep`")
def test_the_server_exits_when_its_client_process_dies(tmp_path: pathlib.Path) -> None:
    """LSP's processId: a client killed with -9 never sends `exit`, and its server must
    not stay behind holding the model."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "a.py").write_text("def a():\n    return 1\n")
    editor = subprocess.Popen(["sleep", "60"])
    client = RawClient(tmp_path)
    try:
        client.start(workspace, process_id=editor.pid)
        client.wait_index("ready")
        assert client.proc.poll() is None  # alive while its client is
    finally:
        editor.kill()
        editor.wait()
    code, seconds, log = client.wait(timeout=30)
    assert code == 0, log[-3000:]
    assert "client process" in log and "is gone" in log
