"""The command line, run as a user would: `python -m lsp_server ...` in a subprocess."""

from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import stat
import subprocess
import sys
from collections.abc import Sequence

import pytest

from lsp_server import __version__
from lsp_server.commands import parse_location

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return "


def run(*args: str, cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "lsp_server", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or ROOT,
        timeout=120,
    )


def test_version_and_help():
    assert run("--version").stdout.strip() == f"qwen-lsp {__version__}"
    out = run("--help").stdout
    for command in ("complete", "doctor", "--tcp", "--log-file", "--log-level"):
        assert command in out


@pytest.mark.parametrize("value", ["a.py:3", "a.py", "a.py:x:1", "a.py:0:1"])
def test_bad_locations_are_rejected(value):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_location(value)


def test_location_keeps_colons_in_paths():
    assert parse_location("C:/src/a.py:10:4") == ("C:/src/a.py", 10, 4)


def test_complete_json_matches_text_output(tmp_path, tiny_model):
    source = tmp_path / "calc.py"
    source.write_text(SOURCE)
    loc = f"{source}:6:12"
    settings = json.dumps(
        {"model": {"threads": 1, "contextSize": 2048}, "completion": {"maxTokens": 16}}
    )
    as_json = run("complete", loc, "--model", str(tiny_model), "--settings", settings, "--json")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    figures = data["figures"]
    assert figures["promptTokens"] > 0
    assert figures["evaluatedTokens"] + figures["reusedTokens"] == figures["promptTokens"]
    assert figures["generatedTokens"] > 0
    assert figures["prefillMs"] >= 0 and figures["generateMs"] >= 0
    if data["text"]:
        assert data["range"]["start"] == {"line": 6, "column": 12}
    plain = run("complete", loc, "--model", str(tiny_model), "--settings", settings)
    assert plain.returncode == 0, plain.stderr
    shown, _, footer = plain.stdout.rpartition("--- ")
    assert shown.rstrip("\n") == (data["text"] or "(no suggestion)")
    assert "prompt" in footer and "evaluated" in footer


def test_complete_without_model_says_how_to_get_one(tmp_path):
    source = tmp_path / "a.py"
    source.write_text("x = 1\n")
    result = run("complete", f"{source}:1:1", "--model", str(tmp_path / "missing.gguf"))
    assert result.returncode == 1
    assert "missing.gguf" in result.stderr


def test_complete_position_past_the_end(tmp_path, qwen2_model):
    source = tmp_path / "a.py"
    source.write_text("x = 1\n")
    result = run("complete", f"{source}:40:1", "--model", str(qwen2_model))
    assert result.returncode == 2
    assert "past the end" in result.stderr


def _lsp_session(
    *args: str,
    requests: Sequence[dict[str, object]] = (),
    options: dict[str, object] | None = None,
) -> str:
    """Run the server over stdio for initialize, `requests`, shutdown/exit; return its
    stderr."""

    def frame(payload: dict[str, object]) -> bytes:
        body = json.dumps(payload).encode()
        return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)

    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "processId": None,
                "rootUri": None,
                "capabilities": {},
                "initializationOptions": options or {"model": {"path": "/nonexistent/model.gguf"}},
            },
        },
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        *requests,
        {"jsonrpc": "2.0", "id": 2, "method": "shutdown"},
        {"jsonrpc": "2.0", "method": "exit"},
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "lsp_server", *args],
        input=b"".join(frame(m) for m in messages),
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert b'"id": 2' in proc.stdout or b'"id":2' in proc.stdout  # shutdown was answered
    return proc.stderr.decode("utf-8", "replace")


def test_message_bodies_are_logged_only_at_debug():
    """pygls logs every message it sends at INFO; the editor's log (and any log file)
    must not fill with completions and stats at the default level."""
    assert "Sending data" not in _lsp_session()
    assert "Sending data" in _lsp_session("--log-level", "DEBUG")


def test_an_error_the_server_means_is_not_logged_as_a_crash():
    """A completion past the end of the document is answered with an error: the log must
    not show a traceback for each one (at the default level, nothing)."""
    uri = "file:///tmp/qwen-lsp-cli-test/a.py"
    requests: list[dict[str, object]] = [
        {
            "jsonrpc": "2.0",
            "method": "textDocument/didOpen",
            "params": {
                "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "x\n"}
            },
        },
        {
            "jsonrpc": "2.0",
            "id": 10,
            "method": "textDocument/completion",
            "params": {"textDocument": {"uri": uri}, "position": {"line": 40, "character": 0}},
        },
    ]
    quiet = _lsp_session(requests=requests)
    assert "Traceback" not in quiet and "past the end" not in quiet, quiet
    debug = _lsp_session("--log-level", "DEBUG", requests=requests)
    assert "past the end" in debug and "Traceback" not in debug


def test_an_api_key_never_reaches_the_log():
    """At DEBUG pygls logs every message, `initialize` with its settings included."""
    options = {"model": {"backend": "openai", "url": "http://127.0.0.1:1/v1", "apiKey": "sk-x1y2"}}
    log = _lsp_session("--log-level", "DEBUG", options=options)
    assert "apiKey" in log and "sk-x1y2" not in log


@pytest.mark.parametrize(
    "key, level",
    [
        (["sk-list-4x9q"], "INFO"),
        ({"k": "sk-object-4x9q"}, "INFO"),
        (918273645, "INFO"),
        ("sk-with)paren}brace-4x9q", "DEBUG"),
    ],
)
def test_no_form_of_the_api_key_reaches_the_log(key: object, level: str) -> None:
    """A key of the wrong type is reported by its kind; a key with `)` or `}` is hidden
    whole at DEBUG too."""
    options = {"model": {"backend": "openai", "url": "http://127.0.0.1:1/v1", "apiKey": key}}
    log = _lsp_session("--log-level", level, options=options)
    assert "apiKey" in log
    for piece in ("4x9q", "918273645", "sk-with", "brace"):
        assert piece not in log, log[-3000:]


def test_a_key_in_the_url_query_is_never_shown(
    serving_engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Some serving engines take the key in the query: it goes with each request, and
    never into a log line (the DEBUG dump of `initialize` included), a message or the
    stats."""
    from lsp_server.engine.remote import RemoteConfig, RemoteEngine

    url = serving_engine + "?key=sk-query-7y6t"
    log = _lsp_session("--log-level", "DEBUG", options={"model": {"backend": "openai", "url": url}})
    assert "sk-query-7y6t" not in log and "?***" in log, log[-3000:]
    with caplog.at_level(logging.INFO):
        engine = RemoteEngine(RemoteConfig(url=url))
    shown = json.dumps(engine.describe()) + engine.info.path + caplog.text
    assert "sk-query-7y6t" not in shown and "?***" in shown, shown


def test_plain_http_to_another_host_is_refused_unless_allowed() -> None:
    from lsp_server.engine.remote import RemoteConfig, RemoteEngine
    from lsp_server.engine.types import EngineError, ModelLoadError

    with pytest.raises(ModelLoadError, match="unencrypted.*allowInsecureHttp"):
        RemoteEngine(RemoteConfig(url="http://10.1.2.3:9/v1"))
    try:  # allowed: it is tried (whatever is or is not there)
        RemoteEngine(
            RemoteConfig(url="http://10.1.2.3:9/v1", allow_insecure_http=True, timeout_s=0.2)
        )
    except EngineError as exc:
        assert "unencrypted" not in str(exc)
    with pytest.raises(ModelLoadError):  # loopback: allowed, nothing listens on port 9
        RemoteEngine(RemoteConfig(url="http://127.0.0.1:9/v1", timeout_s=0.2))


def test_the_log_file_is_readable_by_the_user_only(tmp_path) -> None:
    log = tmp_path / "server.log"
    run = subprocess.run(
        [sys.executable, "-m", "lsp_server", "--log-file", str(log), "--version"],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert run.returncode == 0
    from lsp_server.cli import setup_logging

    setup_logging("INFO", str(log))
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    setup_logging("INFO")


def test_bad_command_lines_get_one_clear_line_not_a_traceback(tmp_path):
    import socket

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lsp_server", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path)},
        )

    (tmp_path / "a.py").write_text("x = 1\n")
    unwritable = run("--log-file", str(tmp_path / "no" / "such" / "log"), "index", str(tmp_path))
    assert unwritable.returncode == 2 and "cannot write the log file" in unwritable.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = run("--tcp", str(taken.getsockname()[1]))
    assert busy.returncode == 1 and "cannot serve on 127.0.0.1:" in busy.stderr
    workspace = run("complete", f"{tmp_path / 'a.py'}:1:2", "--workspace", str(tmp_path / "a.py"))
    assert workspace.returncode == 2 and "not a folder" in workspace.stderr
    size = run("index", str(tmp_path), "--max-file-size", "-5")
    assert size.returncode == 2 and "must be at least 1" in size.stderr
    for result in (unwritable, busy, workspace, size):
        assert "Traceback" not in result.stderr, result.stderr
