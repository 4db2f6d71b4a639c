"""The server's process ends when its client does: `shutdown`/`exit`, a closed stdin or a
dead client process, also in the middle of a cold index build. Driven over raw stdio
(the process, its exit code and its log are what is checked)."""

from __future__ import annotations

import glob
import os
import pathlib
import sqlite3
import subprocess
import sys
import time

import pytest

from lsp_server.testing.lsp_client import StdioServer

FILES = 6000  # a cold build of these takes seconds on two cores


def raw_client(tmp: pathlib.Path) -> StdioServer:
    """The server over raw stdio, its caches in `tmp`, its log in `tmp/server.log`."""
    env = {
        "XDG_CACHE_HOME": str(tmp / "cache"),
        "XDG_DATA_HOME": str(tmp / "data"),
        "HF_HOME": str(tmp / "hf"),
    }
    return StdioServer(env, log_path=tmp / "server.log", log_level="INFO")


def start(
    client: StdioServer, workspace: pathlib.Path, process_id: int | None = None, model: str = ""
) -> None:
    client.initialize(
        workspace,
        {
            "context": {"enabled": True},
            "model": {"path": model, "threads": 1, "contextSize": 2048},
            "engine": {"warmup": False, "prefetch": False},
        },
        process_id=process_id,
    )


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
    client = raw_client(tmp_path)
    start(client, big_workspace)
    client.wait_index("building")
    client.call("shutdown")
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
    client = raw_client(tmp_path)
    start(client, big_workspace)
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
    client = raw_client(tmp_path)
    try:
        start(client, workspace, process_id=editor.pid)
        client.wait_index("ready")
        assert client.proc.poll() is None  # alive while its client is
    finally:
        editor.kill()
        editor.wait()
    code, seconds, log = client.wait(timeout=30)
    assert code == 0, log[-3000:]
    assert "client process" in log and "is gone" in log


def test_a_batch_of_file_changes_under_way_does_not_delay_the_exit(
    big_workspace: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """A checkout touching thousands of files, then the editor closes: the batch stops at
    the file it is on, and the index's store is not closed under it."""
    client = raw_client(tmp_path)
    start(client, big_workspace)
    client.wait_index("ready", timeout=120)
    changes = []
    for path in sorted(big_workspace.rglob("*.py")):
        path.write_text(path.read_text() + "\n\ndef added():\n    return 0\n")
        changes.append({"uri": path.as_uri(), "type": 2})
    client.send({"method": "workspace/didChangeWatchedFiles", "params": {"changes": changes}})
    time.sleep(0.2)
    client.call("shutdown")
    client.send({"method": "exit"})
    code, seconds, log = client.wait(timeout=60)
    assert code == 0, log[-3000:]
    assert not [line for line in log.splitlines() if any(n in line for n in NOISE)], log[-3000:]
    assert seconds < 3, seconds


def test_what_the_protocol_cannot_read_is_answered_never_dropped(
    tmp_path: pathlib.Path, qwen2_model: pathlib.Path
) -> None:
    """Malformed params, a URI no file can have (a lone UTF-16 surrogate), a document
    never opened, a change to a closed one: each request gets an answer (an error where
    it is one), no notification pops up an "Error in server", and the server goes on."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "lib.py").write_text("def old_helper():\n    return 1\n")
    client = raw_client(tmp_path)
    start(client, workspace, model=str(qwen2_model))
    client.wait_index("ready")
    good = (workspace / "a.py").as_uri()
    client.send(
        {
            "method": "textDocument/didOpen",
            "params": {
                "textDocument": {"uri": good, "languageId": "python", "version": 1, "text": "x = "}
            },
        }
    )
    at = {"line": 0, "character": 4}
    unreadable = [
        ("textDocument/inlineCompletion", {}),
        ("textDocument/inlineCompletion", {"textDocument": {"uri": good}}),
        (
            "textDocument/inlineCompletion",
            {"textDocument": {"uri": good}, "position": {"line": -1, "character": 0}, "context": {"triggerKind": 1}},
        ),
        ("textDocument/completion", {"textDocument": {"uri": good}, "position": {"line": "a", "character": 0}}),
        ("textDocument/codeAction", {"textDocument": {"uri": good}, "context": {"diagnostics": []}}),
        ("codeAction/resolve", {}),
    ]  # fmt: skip
    for method, params in unreadable:
        answer = client.answer(method, params, timeout=10)
        assert answer.get("error", {}).get("code") == -32602, (method, answer)
    odd = "file:///tmp/odd\ud800.py"
    never = (workspace / "never.py").as_uri()
    client.send(
        {
            "method": "textDocument/didOpen",
            "params": {
                "textDocument": {"uri": odd, "languageId": "python", "version": 1, "text": "y = "}
            },
        }
    )
    (workspace / "lib.py").write_text("def new_helper():\n    return 2\n")
    client.send(
        {
            "method": "workspace/didChangeWatchedFiles",
            "params": {"changes": [{"uri": odd, "type": 2}, {"uri": (workspace / "lib.py").as_uri(), "type": 2}]},
        }
    )  # fmt: skip
    client.send(
        {
            "method": "textDocument/didChange",
            "params": {
                "textDocument": {"uri": never, "version": 2},
                "contentChanges": [{"text": "z = 1"}],
            },
        }
    )
    for uri in (odd, never):
        for method in ("textDocument/inlineCompletion", "textDocument/completion"):
            params = {"textDocument": {"uri": uri}, "position": at, "context": {"triggerKind": 1}}
            answer = client.answer(method, params, timeout=30)
            assert "result" in answer or answer["error"]["code"] == -32602, (uri, answer)
        actions = client.answer(
            "textDocument/codeAction",
            {
                "textDocument": {"uri": uri},
                "range": {"start": at, "end": at},
                "context": {"diagnostics": []},
            },
        )
        assert "result" in actions, actions
    # The server goes on: its model (loading in the engine process meanwhile) gets ready.
    deadline = time.monotonic() + 30
    stats = client.stats()
    while stats["model"] == "loading" and time.monotonic() < deadline:
        time.sleep(0.1)
        stats = client.stats()
    assert stats["model"] == "ready"
    assert not [p for p in client.popups() if "Error in server" in p], client.popups()
    client.call("shutdown")
    client.send({"method": "exit"})
    code, _, log = client.wait(timeout=30)
    assert code == 0
    assert "-32603" not in log and "Traceback" not in log, log[-3000:]
    assert "UnicodeEncodeError" not in log, log[-3000:]  # the batch with the odd URI went on


def damage(db: str) -> None:
    """Garbage over the second half of the database (rows of its files table): the file
    still opens, reading the rows fails ("database disk image is malformed")."""
    for suffix in ("-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    size = os.path.getsize(db)
    assert size > 16 * 4096, size
    with open(db, "r+b") as f:
        start = size // 2 // 4096 * 4096
        f.seek(start)
        f.write(b"\xa5\x5a" * ((size - start) // 2))


def test_a_damaged_index_database_is_said_once_in_the_editor(tmp_path: pathlib.Path) -> None:
    """Set aside and rebuilt by the index; the user hears of it once, not only the log."""
    workspace = tmp_path / "ws"
    for i in range(200):
        path = workspace / f"pkg{i % 10}" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "".join(f"def function_{i}_{k}(a, b):\n    return a * {k} + b\n\n" for k in range(15))
        )
    client = raw_client(tmp_path)
    start(client, workspace)
    client.wait_index("ready", timeout=120)
    assert client.close() == 0
    assert not [p for p in client.popups() if "index database was damaged" in p]
    [db] = glob.glob(str(tmp_path / "cache" / "qwen-lsp" / "index" / "*.sqlite3"))
    damage(db)
    client = raw_client(tmp_path)
    start(client, workspace)
    client.wait_index("ready", timeout=120)
    lib = workspace / "pkg0" / "mod0.py"
    lib.write_text(lib.read_text() + "\ndef added():\n    return 0\n")
    client.notify(
        "workspace/didChangeWatchedFiles", {"changes": [{"uri": lib.as_uri(), "type": 2}]}
    )
    assert client.stats()["index"] == "ready"
    time.sleep(0.5)  # (the change is written on the documents thread)
    said = [p for p in client.popups() if "index database was damaged" in p]
    assert len(said) == 1 and ".corrupt" in said[0], client.popups()
    assert client.close() == 0
    assert os.path.exists(db + ".corrupt")
