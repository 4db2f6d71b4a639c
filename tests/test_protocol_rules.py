"""What the server does with messages it should not get: lengths it cannot hold, bytes
that are not JSON, requests before `initialize` or after `shutdown`. Driven over raw
stdio and TCP: the answers, the exit code and the log are what is checked."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import re
import subprocess
import sys
import time
from typing import Any

import pytest
from test_lifecycle import raw_client, start

from lsp_server.testing.lsp_client import REPO, StdioServer


def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


@pytest.fixture
def client(tmp_path: pathlib.Path) -> Any:
    made = raw_client(tmp_path)
    yield made
    made.proc.kill()
    made.proc.wait()


def test_lengths_no_memory_can_hold_are_skipped_and_the_next_message_is_read(
    client: StdioServer, tmp_path: pathlib.Path
) -> None:
    start(client, tmp_path)
    for length in (b"100000000000000000000", b"1000000000000"):
        client.write(b"Content-Length: " + length + b'\r\n\r\n{"jsonrpc":"2.0","id":77')
        assert "index" in client.stats()  # resynchronised on the next header
    client.call("shutdown")
    client.send({"method": "exit"})
    code, _, log = client.wait(10)
    assert code == 0
    assert "Traceback" not in log
    assert "over protocol.maxMessageMb" in log


def test_a_message_over_the_bound_is_answered_and_the_stream_goes_on(
    client: StdioServer, tmp_path: pathlib.Path
) -> None:
    client.call(
        "initialize",
        {
            "processId": None,
            "capabilities": {},
            "initializationOptions": {"protocol": {"maxMessageMb": 1}},
        },
    )
    big = {"id": 500, "method": "qwenLsp/stats", "params": {"pad": "x" * (3 << 20)}}
    answer = client.expect(500)
    client.write(frame(big))
    error = answer.result(20)["error"]
    assert error["code"] == -32600
    assert "over protocol.maxMessageMb (1 MB)" in error["message"]
    assert "index" in client.stats()
    # A document whose didOpen was dropped is not completed from a wrong copy: it is not
    # open for the server.
    uri = (tmp_path / "big.py").as_uri()
    doc = {"uri": uri, "languageId": "python", "version": 1, "text": "y" * (2 << 20)}
    client.write(frame({"method": "textDocument/didOpen", "params": {"textDocument": doc}}))
    answer = client.answer(
        "textDocument/inlineCompletion",
        {
            "textDocument": {"uri": uri},
            "position": {"line": 0, "character": 0},
            "context": {"triggerKind": 1},
        },
    )
    assert "not open" in answer["error"]["message"]
    assert any("maxMessageMb" in p for p in client.popups())


def test_bytes_that_are_not_a_message_get_json_rpc_errors(
    client: StdioServer, tmp_path: pathlib.Path
) -> None:
    start(client, tmp_path)
    client.write(b"Content-Length: 9\r\n\r\n{not json")
    assert client.stray()["error"]["code"] == -32700
    client.write(b"Content-Length: 5\r\n\r\n[1,2]")
    assert client.stray()["error"]["code"] == -32600
    client.write(b"Content-Length: 2\r\n\r\n\xff\xfe")
    assert client.stray()["error"]["code"] == -32700
    # Headers without a length, with a length that is not a number, a runaway line.
    client.write(b"Content-Type: x\r\n\r\n{}")
    client.write(b"Content-Length: -5\r\n\r\n{}")
    client.write(b"x" * 20000)
    assert "index" in client.stats()
    assert client.proc.poll() is None


def test_before_initialize_requests_get_server_not_initialized(client: StdioServer) -> None:
    for method in ("textDocument/inlineCompletion", "qwenLsp/stats", "shutdown"):
        error = client.answer(method, {})["error"]
        assert error["code"] == -32002, method
        assert "data" not in error or not error["data"], method


def test_a_second_initialize_is_refused_and_open_documents_stay(
    client: StdioServer, tmp_path: pathlib.Path
) -> None:
    start(client, tmp_path)
    uri = (tmp_path / "a.py").as_uri()
    doc = {"uri": uri, "languageId": "python", "version": 1, "text": "x = 1\n"}
    client.send({"method": "textDocument/didOpen", "params": {"textDocument": doc}})
    again = client.answer("initialize", {"processId": None, "capabilities": {}})
    assert again["error"]["code"] == -32600
    answer = client.answer(
        "textDocument/inlineCompletion",
        {
            "textDocument": {"uri": uri},
            "position": {"line": 1, "character": 0},
            "context": {"triggerKind": 1},
        },
    )
    assert "error" not in answer, answer  # still open (no model: an empty answer)


def test_stats_without_params(client: StdioServer, tmp_path: pathlib.Path) -> None:
    start(client, tmp_path)
    pending = client.expect(1000)
    client.write(frame({"id": 1000, "method": "qwenLsp/stats"}))
    answer = pending.result(10)
    assert "index" in answer["result"], answer


def test_requests_after_shutdown_are_refused_and_exit_is_zero(
    client: StdioServer, tmp_path: pathlib.Path
) -> None:
    start(client, tmp_path)
    client.call("shutdown")
    error = client.answer("qwenLsp/stats", None)["error"]
    assert error["code"] == -32600
    client.send({"method": "exit"})
    code, _, _ = client.wait(10)
    assert code == 0


def test_exit_without_shutdown_exits_1(client: StdioServer, tmp_path: pathlib.Path) -> None:
    start(client, tmp_path)
    client.send({"method": "exit"})
    code, _, _ = client.wait(10)
    assert code == 1


def test_tcp_port_0_logs_the_real_port_and_survives_a_huge_length(
    tmp_path: pathlib.Path,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "c")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lsp_server", "--tcp", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stderr is not None
        port = 0
        deadline = time.monotonic() + 30
        while not port and time.monotonic() < deadline:
            line = proc.stderr.readline().decode()
            if match := re.search(r"serving on TCP 127\.0\.0\.1:(\d+)", line):
                port = int(match.group(1))
        assert port > 0

        async def talk() -> dict[str, Any]:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"Content-Length: 100000000000000000000\r\n\r\n{")
            init = {
                "id": 1,
                "method": "initialize",
                "params": {"processId": None, "capabilities": {}},
            }
            writer.write(frame(init))
            await writer.drain()
            header = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"Content-Length: (\d+)", header).group(1))  # type: ignore[union-attr]
            answer = json.loads(await reader.readexactly(length))
            writer.close()
            return answer  # type: ignore[no-any-return]

        answer = asyncio.run(asyncio.wait_for(talk(), 30))
        assert answer["id"] == 1 and "capabilities" in answer["result"]
    finally:
        proc.kill()
        proc.wait()
