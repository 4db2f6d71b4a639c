"""End to end: the real server over stdio, a real LSP client, the real engine on tiny models.

Run with both VS Code's and Neovim's client capabilities, on both tiny models.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import sys
import time
from collections.abc import Sequence
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from lsp_server.completion.service import Completer, CompletionRequest
from lsp_server.engine.llama import LlamaEngine
from lsp_server.engine.types import EngineConfig
from lsp_server.settings import load_settings

SERVER = ClientServerConfig(
    server_command=[sys.executable, "-m", "lsp_server", "--log-level", "DEBUG"],
    server_env={**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parents[1])},
)
CLIENTS = ["neovim", "visual_studio_code"]

SOURCE = (
    "import math\n\n\n"
    "def area(radius):\n"
    "    return math.pi * radius ** 2\n\n\n"
    "def circumference(radius):\n"
    "    return "
)


def options(model: pathlib.Path | str, **completion: Any) -> dict[str, Any]:
    return {
        "model": {"path": str(model), "threads": 1, "contextSize": 4096},
        "completion": {"maxTokens": 24, **completion},
        "context": {"enabled": False},
        "engine": {"warmup": False, "prefetch": False},
    }


def plain(value: Any) -> Any:
    """pygls hands unknown results over as namedtuples: back to dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


async def stats(client: LanguageClient) -> dict[str, Any]:
    return plain(await client.protocol.send_request_async("qwenLsp/stats", {}))  # type: ignore[no-any-return]


async def wait_model(client: LanguageClient, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        data = await stats(client)
        if data["model"] not in ("idle", "loading") or time.monotonic() > deadline:
            return data
        await asyncio.sleep(0.05)


async def wait_index(client: LanguageClient, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (await stats(client))["index"] != "ready" and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def start(
    client: LanguageClient, spec: str, workspace: pathlib.Path, init: dict[str, Any]
) -> None:
    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(spec),
            workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)],
            initialization_options=init,
        )
    )


def open_doc(
    client: LanguageClient, path: pathlib.Path, text: str, language_id: str = "python"
) -> str:
    path.write_text(text)
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id=language_id, version=1, text=text
            )
        )
    )
    return uri


def end_of(text: str) -> types.Position:
    lines = text.split("\n")
    return types.Position(line=len(lines) - 1, character=len(lines[-1]))


async def inline(
    client: LanguageClient, uri: str, pos: types.Position
) -> types.InlineCompletionList | None:
    return await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=pos,
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked
            ),
        )
    )


def expected(
    model: pathlib.Path,
    workspace: pathlib.Path,
    path: pathlib.Path,
    text: str,
    init: dict[str, Any],
) -> str:
    """What the engine produces for the same prompt, computed here through its API."""
    settings = load_settings(init).settings
    with LlamaEngine(EngineConfig(model_path=str(model), n_ctx=4096, n_threads=1)) as engine:
        completer = Completer(engine, settings)
        pos = end_of(text)
        request = CompletionRequest(
            path=str(path.resolve()),
            text=text,
            line=pos.line,
            character=pos.character,
            display_path=path.name,
            repo_name=workspace.name,
        )
        result = completer.complete(request)
        return result.suggestion.text if result.suggestion else ""


@pytest_lsp.fixture(config=SERVER, params=CLIENTS)
async def client(lsp_client: LanguageClient, request: pytest.FixtureRequest):
    lsp_client.client_spec = request.param  # type: ignore[attr-defined]
    lsp_client.registrations = []  # type: ignore[attr-defined]

    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(params: types.RegistrationParams) -> None:
        lsp_client.registrations.extend(params.registrations)  # type: ignore[attr-defined]

    yield
    await lsp_client.shutdown_session()


async def test_inline_completion_matches_engine(client: LanguageClient, tiny_model, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    init = options(tiny_model)
    await start(client, client.client_spec, ws, init)  # type: ignore[attr-defined]
    path = ws / "geometry.py"
    uri = open_doc(client, path, SOURCE)
    assert (await wait_model(client))["model"] == "ready"
    result = await inline(client, uri, end_of(SOURCE))
    want = expected(tiny_model, ws, path, SOURCE, init)
    assert want, "the tiny model produced nothing to compare with"
    assert result is not None and [i.insert_text for i in result.items] == [want]
    item = result.items[0]
    assert item.range is not None and item.range.start == end_of(SOURCE)

    # The plain completion request offers the same suggestion as one item.
    plain = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=end_of(SOURCE)
        )
    )
    items = plain.items if isinstance(plain, types.CompletionList) else plain
    assert [i.text_edit.new_text for i in items] == [want]  # type: ignore[union-attr]

    # An incremental edit, then a new request reflects it.
    edit = "2 * math.pi * radius\n\n\ndef diameter(radius):\n    return "
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=end_of(SOURCE), end=end_of(SOURCE)), text=edit
                )
            ],
        )
    )
    changed = SOURCE + edit
    result = await inline(client, uri, end_of(changed))
    want = expected(tiny_model, ws, path, changed, init)
    assert result is not None and [i.insert_text for i in result.items] == ([want] if want else [])

    data = await stats(client)
    assert data["requests"] == 3
    assert data["cacheHits"] == 1  # the plain completion reused the inline one
    assert data["promptTokens"] > 0 and data["generatedTokens"] > 0
    assert data["evaluatedTokens"] + data["reusedTokens"] <= data["promptTokens"]
    assert len(data["recent"]) == 3


def remote_options(url: str, **completion: Any) -> dict[str, Any]:
    # The serving engine shares two cores with the test: time is not what these check.
    init = options("", **{"timeBudgetMs": 30000, **completion})
    init["model"] = {"backend": "openai", "url": url, "contextSize": 4096}
    return init


async def test_completions_through_a_serving_engine(
    client: LanguageClient, serving_engine: str, tmp_path
):
    """model.backend "openai": the same prompts and post-processing, generated by an
    OpenAI-compatible serving engine (llama-cpp-python's server on loopback); the
    multi-file context goes with them."""
    from lsp_server.engine.remote import RemoteConfig, RemoteEngine

    ws = tmp_path / "ws"
    ws.mkdir()
    init = remote_options(serving_engine)
    await start(client, client.client_spec, ws, init)  # type: ignore[attr-defined]
    path = ws / "geometry.py"
    uri = open_doc(client, path, SOURCE)
    data = await wait_model(client)
    assert data["model"] == "ready" and serving_engine in data["modelMessage"], data
    assert data["backend"]["url"] == serving_engine
    result = await inline(client, uri, end_of(SOURCE))
    settings = load_settings(init).settings
    completer = Completer(RemoteEngine(RemoteConfig(url=serving_engine, n_ctx=4096)), settings)
    pos = end_of(SOURCE)
    want = completer.complete(
        CompletionRequest(
            path=str(path.resolve()),
            text=SOURCE,
            line=pos.line,
            character=pos.character,
            display_path=path.name,
            repo_name=ws.name,
        )
    ).suggestion
    assert want is not None, "the tiny model produced nothing to compare with"
    assert result is not None and [i.insert_text for i in result.items] == [want.text]


async def test_the_context_reaches_a_serving_engine(
    client: LanguageClient, serving_engine: str, tmp_path
):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "shapes.py").write_text("def circle_area(r):\n    return 3.14 * r * r\n")
    init = remote_options(serving_engine)
    init["context"] = {"enabled": True, "budgetTokens": 1024}
    await start(client, client.client_spec, ws, init)  # type: ignore[attr-defined]
    await wait_index(client)
    text = "from shapes import circle_area\n\n\ndef report(r):\n    return circle_area("
    uri = open_doc(client, ws / "main.py", text)
    assert (await wait_model(client))["model"] == "ready"
    await asyncio.sleep(0.3)
    await inline(client, uri, end_of(text))
    last = (await stats(client))["recent"][-1]
    assert any(src.startswith("shapes.py:1-") for src in last["context"]), last
    assert last["generatedTokens"] > 0 and last["promptTokens"] > 0


async def test_a_serving_engine_that_cannot_be_used_is_one_message(
    client: LanguageClient, tmp_path
):
    ws = tmp_path / "ws"
    ws.mkdir()
    init = remote_options("http://127.0.0.1:1/v1")
    await start(client, client.client_spec, ws, init)  # type: ignore[attr-defined]
    uri = open_doc(client, ws / "a.py", SOURCE)
    data = await wait_model(client)
    assert data["model"] == "failed" and "cannot reach" in data["modelMessage"], data
    result = await inline(client, uri, end_of(SOURCE))
    assert result is None or not result.items
    errors = [m for m in client.messages if "completions are off" in m.message]
    assert len(errors) == 1 and "http://127.0.0.1:1/v1" in errors[0].message, client.messages


async def test_cancel_mid_generation(client: LanguageClient, qwen35_model, tmp_path):
    """A long prompt (seconds of prefill on these CPUs) cancelled early answers at once."""
    ws = tmp_path / "ws"
    ws.mkdir()
    init = options(
        qwen35_model, maxTokens=4000, multiline="always", timeBudgetMs=60000, prefixLines=20000
    )
    init["model"]["contextSize"] = 65536
    await start(client, client.client_spec, ws, init)  # type: ignore[attr-defined]
    body = "".join(
        f"def function_{i}(argument):\n    return argument * {i} + {i * 7}\n\n" for i in range(1500)
    )
    uri = open_doc(client, ws / "a.py", body + "def main():\n")
    assert (await wait_model(client))["model"] == "ready"
    params = types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=body.count("\n") + 1, character=0),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Automatic
        ),
    )
    future = client.protocol.send_request(
        "textDocument/inlineCompletion", params, msg_id="cancel-me"
    )
    await asyncio.sleep(0.5)
    sent = time.monotonic()
    client.protocol.notify("$/cancelRequest", types.CancelParams(id="cancel-me"))
    with pytest.raises(Exception, match="cancel"):
        await asyncio.wait_for(asyncio.wrap_future(future), 10)
    assert time.monotonic() - sent < 1.5
    # The engine stops at its next check (between batches or tokens), and counts it.
    deadline = time.monotonic() + 1.0
    while (data := await stats(client))["cancelled"] == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert data["cancelled"] == 1
    assert data["requests"] == 1


async def test_a_burst_of_keystrokes_is_answered_and_only_the_latest_runs(
    client: LanguageClient, qwen35_model, tmp_path
):
    """A client that asks at every keystroke and never cancels (fast typing): every
    request is answered, a newer request for the document supersedes the older ones
    instead of queueing behind them, and the last answer is what a lone request on the
    final text gets (the mirror kept up with 20 incremental edits under load)."""
    ws = tmp_path / "ws"
    ws.mkdir()
    init = options(qwen35_model)
    await start(client, client.client_spec, ws, init)  # type: ignore[attr-defined]
    path = ws / "geometry.py"
    uri = open_doc(client, path, SOURCE)
    assert (await wait_model(client))["model"] == "ready"
    text = SOURCE
    futures = []
    for version, ch in enumerate("2 * math.pi * radius", start=2):
        pos = end_of(text)
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=pos, end=pos), text=ch
                    )
                ],
            )
        )
        text += ch
        futures.append(asyncio.ensure_future(inline(client, uri, end_of(text))))
    results = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 120)
    for result in results[:-1]:  # answered: a suggestion, nothing, or a cancellation
        assert not isinstance(result, Exception) or "cancel" in str(result).lower(), result
    want = expected(qwen35_model, ws, path, text, init)
    last = results[-1]
    assert not isinstance(last, BaseException) and last is not None
    assert [i.insert_text for i in last.items] == ([want] if want else [])
    data = await stats(client)
    assert data["errors"] == 0
    ran = [r for r in data["recent"] if r["outcome"] not in ("cancelled", "cache")]
    assert len(ran) < len(futures) // 2, data["recent"]


async def test_position_past_end_is_an_error(client: LanguageClient, qwen2_model, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    await start(client, client.client_spec, ws, options(qwen2_model))  # type: ignore[attr-defined]
    uri = open_doc(client, ws / "a.py", "x = 1\n")
    await wait_model(client)
    with pytest.raises(Exception, match="past the end"):
        await inline(client, uri, types.Position(line=50, character=0))
    # A column past the end of a line is clamped, as LSP says, and answered.
    result = await inline(client, uri, types.Position(line=0, character=999))
    assert result is not None
    # A lone \r ends a line for LSP (old Mac files): its last line is not past the end.
    uri = open_doc(client, ws / "mac.py", "x = 1\ry = 2\r")
    result = await inline(client, uri, types.Position(line=2, character=0))
    assert result is not None
    assert (await stats(client))["model"] == "ready"


async def test_a_path_with_spaces_and_accents_is_completed(
    client: LanguageClient, qwen2_model, tmp_path
):
    """URIs escape such paths (`my%20project`, `caf%C3%A9`; VS Code on Windows sends
    `file:///c%3A/...`): pygls keys its documents unescaped, and so must every lookup."""
    ws = tmp_path / "my project café"
    ws.mkdir()
    await start(client, client.client_spec, ws, options(qwen2_model))  # type: ignore[attr-defined]
    uri = open_doc(client, ws / "a b.py", SOURCE)
    assert (await wait_model(client))["model"] == "ready"
    assert "%20" in uri
    result = await inline(client, uri, end_of(SOURCE))
    assert result is not None
    assert (await stats(client))["requests"] == 1  # it reached the model


async def test_an_untitled_buffer_is_completed(client: LanguageClient, qwen2_model, tmp_path):
    """A new, never saved buffer (VS Code's `untitled:` scheme) gets suggestions too."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "geometry.py").write_text("def area(radius):\n    return 3.14 * radius ** 2\n")
    init = {**options(qwen2_model), "context": {"enabled": True}}
    await start(client, client.client_spec, ws, init)  # type: ignore[attr-defined]
    uri = "untitled:Untitled-1"
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=SOURCE
            )
        )
    )
    await wait_model(client)
    result = await inline(client, uri, end_of(SOURCE))
    assert result is not None and result.items and result.items[0].insert_text
    data = await stats(client)
    assert data["model"] == "ready" and data["requests"] == 1 and data["errors"] == 0
    assert data["recent"][-1]["path"] == uri and data["recent"][-1]["outcome"] == "ok"


@pytest.mark.parametrize("kind", ["missing", "corrupt"])
async def test_bad_model_one_message_and_server_keeps_answering(
    client: LanguageClient, tmp_path, kind
):
    ws = tmp_path / "ws"
    ws.mkdir()
    model = tmp_path / "model.gguf"
    if kind == "corrupt":
        model.write_bytes(b"GGUF" + os.urandom(4096))
    await start(client, client.client_spec, ws, options(model))  # type: ignore[attr-defined]
    uri = open_doc(client, ws / "a.py", "def f():\n    ")  # a code file: the load starts
    data = await wait_model(client)
    assert data["model"] in ("disabled", "failed")
    for _ in range(3):
        result = await inline(client, uri, types.Position(line=1, character=4))
        assert result is None or not result.items
    plain = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=1, character=4),
        )
    )
    assert plain is None or not (plain.items if isinstance(plain, types.CompletionList) else plain)
    errors = [m for m in client.messages if "completions are off" in m.message]
    assert len(errors) == 1, client.messages
    assert str(model) in errors[0].message


async def test_a_model_file_rewritten_on_disk_is_reloaded_not_read(
    client: LanguageClient, qwen35_model, tmp_path
):
    """llama.cpp maps the model file: truncated or overwritten in place (a download over
    it, a copy), its weights vanish and reading them kills the process (SIGBUS). The
    server notices the change before the next job, drops the engine unread and loads
    the file again; once a broken file is whole again, it loads it at the next request."""
    ws = tmp_path / "ws"
    ws.mkdir()
    model = tmp_path / "model.gguf"
    data = qwen35_model.read_bytes()
    model.write_bytes(data)
    await start(client, client.client_spec, ws, options(model))  # type: ignore[attr-defined]
    uri = open_doc(client, ws / "a.py", SOURCE)
    assert (await wait_model(client))["model"] == "ready"
    first = await inline(client, uri, end_of(SOURCE))
    with open(model, "r+b") as f:  # truncated in place, as an interrupted download leaves it
        f.truncate(len(data) // 2)
    text = SOURCE + "2 * "
    uri = open_doc(client, ws / "b.py", text)
    broken = await inline(client, uri, end_of(text))
    assert broken is None or not broken.items
    data_now = await stats(client)
    assert data_now["model"] in ("failed", "disabled"), data_now  # the half file: refused
    assert any("changed on disk" in m.message for m in client.messages)
    with open(model, "r+b") as f:  # whole again, still in place
        f.write(data)
    await inline(client, uri, end_of(text))  # a request notices and loads it again
    assert (await wait_model(client))["model"] == "ready"
    again = await inline(client, (ws / "a.py").as_uri(), end_of(SOURCE))
    assert again is not None and first is not None
    assert [i.insert_text for i in again.items] == [i.insert_text for i in first.items]


async def test_configuration_changes_apply_and_invalid_values_are_reported(
    client: LanguageClient, qwen2_model, tmp_path
):
    ws = tmp_path / "ws"
    ws.mkdir()
    init = options(qwen2_model)
    init["completion"]["maxTokens"] = "many"  # invalid: reported once, default applies
    await start(client, client.client_spec, ws, init)  # type: ignore[attr-defined]
    uri = open_doc(client, ws / "a.py", SOURCE)
    assert (await wait_model(client))["model"] == "ready"
    assert any("qwenLsp.completion.maxTokens" in m.message for m in client.messages), (
        client.messages
    )
    first = await inline(client, uri, end_of(SOURCE))
    assert first is not None
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"qwenLsp": {"completion": {"enabled": False}}})
    )
    off = await inline(client, uri, end_of(SOURCE))
    assert off is None or not off.items
    assert (await stats(client))["requests"] == 1  # the disabled request never reached the engine


RUBY = "class Greeter\n  def initialize(name)\n    @name = name\n  end\n\n  def greet\n    puts "


async def test_every_language_but_prose_is_completed_by_default(
    client: LanguageClient, qwen2_model, tmp_path
):
    """Like Copilot: a language with no grammar here (Ruby) is completed, Markdown and
    plain text are not until `completion.languages` turns them on; a document whose
    language is off never reaches the model."""
    ws = tmp_path / "ws"
    ws.mkdir()
    await start(client, client.client_spec, ws, options(qwen2_model))  # type: ignore[attr-defined]
    ruby = open_doc(client, ws / "greeter.rb", RUBY, "ruby")
    assert (await wait_model(client))["model"] == "ready"
    result = await inline(client, ruby, end_of(RUBY))
    assert result is not None and result.items and result.items[0].insert_text
    assert (await stats(client))["requests"] == 1

    notes = "# Notes\n\nThe area of a circle is "
    for name, language in (("notes.md", "markdown"), ("notes.txt", "plaintext")):
        uri = open_doc(client, ws / name, notes, language)
        off = await inline(client, uri, end_of(notes))
        assert off is None or not off.items
    assert (await stats(client))["requests"] == 1  # neither reached the engine

    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"qwenLsp": {"completion": {"languages": {"markdown": True, "ruby": False}}}}
        )
    )
    md = (ws / "notes.md").as_uri()
    for _ in range(50):  # the change is applied on the event loop, after this request may come
        on = await inline(client, md, end_of(notes))
        if (await stats(client))["requests"] == 2:
            break
        await asyncio.sleep(0.05)
    assert on is not None and on.items
    off = await inline(client, ruby, end_of(RUBY))
    assert off is None or not off.items
    assert (await stats(client))["requests"] == 2


async def test_tcp_binds_loopback_and_serves(tmp_path):
    """`qwen-lsp --tcp PORT` listens on 127.0.0.1 only and answers initialize."""
    import json
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        *SERVER.server_command,
        "--tcp",
        str(port),
        env=SERVER.server_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        for _ in range(100):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            pytest.fail("the server did not listen")
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {"processId": None, "rootUri": None, "capabilities": {}},
            }
        ).encode()
        writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        header = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length = int(header.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        reply = json.loads(await reader.readexactly(length))
        caps = reply["result"]["capabilities"]
        assert caps["inlineCompletionProvider"] is not None
        assert caps["completionProvider"] is not None
        assert caps["textDocumentSync"]["change"] == 2  # incremental
        writer.close()
        # Only loopback: the port is not bound on the other addresses of this machine.
        host = socket.gethostbyname(socket.gethostname())
        if not host.startswith("127."):
            with pytest.raises(OSError):
                socket.create_connection((host, port), timeout=1).close()
    finally:
        proc.kill()
        await proc.wait()


async def test_completion_prompt_holds_a_definition_from_another_file(
    client: LanguageClient, tiny_model, tmp_path
):
    ws = tmp_path / "ws"
    (ws / "geometry").mkdir(parents=True)
    (ws / "geometry" / "__init__.py").write_text("")
    (ws / "geometry" / "shapes.py").write_text(
        'class Circle:\n    """A circle."""\n\n    def __init__(self, radius: float) -> None:\n'
        "        self.radius = radius\n\n\ndef circle_area(circle: Circle) -> float:\n"
        '    """The area of `circle`."""\n    return 3.14159 * circle.radius ** 2\n'
    )
    init = options(tiny_model)
    init["context"] = {"enabled": True, "budgetTokens": 1024}
    await start(client, client.client_spec, ws, init)  # type: ignore[attr-defined]
    text = "from geometry.shapes import circle_area, Circle\n\n\ndef report(c: Circle) -> str:\n    return str(circle_area("
    uri = open_doc(client, ws / "main.py", text)
    assert (await wait_model(client))["model"] == "ready"
    await wait_index(client)
    await asyncio.sleep(0.3)  # the debounced re-index of the opened document
    await inline(client, uri, end_of(text))
    data = await stats(client)
    used = data["recent"][-1]["context"]
    assert any(src.startswith("geometry/shapes.py:8-") and "circle_area" in src for src in used), (
        used
    )


async def test_an_ignored_file_open_in_the_editor_never_reaches_the_prompt(
    client: LanguageClient, qwen2_model, tmp_path
):
    """Recently viewed files are context, but only those the index accepts: a gitignored
    settings file with a key, open in another tab, stays out of every prompt."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".gitignore").write_text("local_settings.py\n")
    init = options(qwen2_model)
    init["context"] = {"enabled": True, "budgetTokens": 1024}
    await start(client, client.client_spec, ws, init)  # type: ignore[attr-defined]
    await wait_index(client)
    open_doc(client, ws / "local_settings.py", 'SECRET_KEY = "sk-not-for-prompts"\n')
    assert (await wait_model(client))["model"] == "ready"
    open_doc(client, ws / "helpers.py", "def helper():\n    return 'shown'\n")
    text = "def main():\n    return "
    uri = open_doc(client, ws / "main.py", text)
    await asyncio.sleep(0.3)  # the debounced re-index of the opened documents
    await inline(client, uri, end_of(text))
    used = (await stats(client))["recent"][-1]["context"]
    assert any(src.startswith("helpers.py:") for src in used), used
    assert not any(src.startswith("local_settings.py") for src in used), used


async def test_files_changed_on_disk_reach_the_context(
    client: LanguageClient, qwen2_model, tmp_path
):
    ws = tmp_path / "ws"
    ws.mkdir()
    shapes = ws / "shapes.py"
    shapes.write_text("def circle_area(r):\n    return 3.14 * r * r\n")
    init = options(qwen2_model)
    init["context"] = {"enabled": True, "budgetTokens": 1024}
    await start(client, client.client_spec, ws, init)  # type: ignore[attr-defined]
    await wait_index(client)
    # Changed outside the editor: a new definition, then the watcher's notification.
    shapes.write_text(
        "def circle_area(r):\n    return 3.14 * r * r\n\n\ndef square_area(s):\n    return s * s\n"
    )
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=shapes.as_uri(), type=types.FileChangeType.Changed)]
        )
    )
    text = "from shapes import square_area\n\n\ndef report(s):\n    return square_area("
    uri = open_doc(client, ws / "main.py", text)
    assert (await wait_model(client))["model"] == "ready"
    await asyncio.sleep(0.5)  # the watcher's re-index and the debounced document update
    await inline(client, uri, end_of(text))
    used = (await stats(client))["recent"][-1]["context"]
    assert any(src.startswith("shapes.py:5-") for src in used), used
    caps = client_capabilities(client.client_spec).workspace  # type: ignore[attr-defined]
    if (
        caps
        and caps.did_change_watched_files
        and caps.did_change_watched_files.dynamic_registration
    ):
        methods = [r.method for r in client.registrations]  # type: ignore[attr-defined]
        assert methods == [types.WORKSPACE_DID_CHANGE_WATCHED_FILES]


async def test_a_50_mb_document_is_answered_and_the_server_keeps_going(
    client: LanguageClient, qwen2_model, tmp_path
):
    ws = tmp_path / "ws"
    ws.mkdir()
    init = options(qwen2_model)
    init["context"] = {"enabled": True}
    await start(client, client.client_spec, ws, init)  # type: ignore[attr-defined]
    line = "value_%07d = compute(value_%07d) + 1  # padding padding padding\n"
    big = "".join(line % (i, i) for i in range(50 * 1024 * 1024 // len(line % (0, 0))))
    big += "def tail():\n    return "
    uri = open_doc(client, ws / "big.py", big)
    assert (await wait_model(client))["model"] == "ready"
    started = time.monotonic()
    result = await inline(client, uri, end_of(big))
    assert result is not None
    assert time.monotonic() - started < 30
    # A code action there: offered, run and answered (an edit or a reason) in time.
    last = big.count("\n")
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(types.Position(last, 0), types.Position(last, 0)),
            context=types.CodeActionContext(
                diagnostics=[
                    types.Diagnostic(
                        range=types.Range(types.Position(last, 4), types.Position(last, 10)),
                        message="missing return value",
                    )
                ]
            ),
        )
    )
    assert actions and isinstance(actions[0], types.CodeAction)
    started = time.monotonic()
    resolved = await client.code_action_resolve_async(actions[0])
    assert time.monotonic() - started < 30
    if resolved.edit is None:
        assert any("nothing was changed" in m.message for m in client.messages)
    small = open_doc(client, ws / "small.py", SOURCE)
    assert await inline(client, small, end_of(SOURCE)) is not None
    assert (await stats(client))["model"] == "ready"


CELLS = (
    (
        types.NotebookCellKind.Code,
        "python",
        "import math\n\n\ndef area(radius):\n    return math.pi * radius ** 2",
    ),
    (types.NotebookCellKind.Markup, "markdown", "# Circles\n\nThe area of a circle is "),
    (types.NotebookCellKind.Code, "python", "values = [area(r) for r in range(5)]\nprint("),
)


async def start_with_notebooks(
    client: LanguageClient, ws: pathlib.Path, init: dict[str, Any]
) -> types.InitializeResult:
    """Initialize as a client that syncs notebooks (VS Code's Jupyter support does)."""
    capabilities = client_capabilities(client.client_spec)  # type: ignore[attr-defined]
    capabilities.notebook_document = types.NotebookDocumentClientCapabilities(
        synchronization=types.NotebookDocumentSyncClientCapabilities()
    )
    return await client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities,
            workspace_folders=[types.WorkspaceFolder(uri=ws.as_uri(), name=ws.name)],
            initialization_options=init,
        )
    )


def open_notebook(
    client: LanguageClient,
    notebook: pathlib.Path,
    cells: Sequence[tuple[types.NotebookCellKind, str, str]],
) -> list[str]:
    """Open ``notebook`` with ``cells`` (kind, language, text); the cells' URIs."""
    notebook.write_text("{}")
    cell_uris = [f"vscode-notebook-cell:{notebook}#W{i}sZmlsZQ%3D%3D" for i in range(len(cells))]
    client.notebook_document_did_open(
        types.DidOpenNotebookDocumentParams(
            notebook_document=types.NotebookDocument(
                uri=notebook.as_uri(),
                notebook_type="jupyter-notebook",
                version=1,
                cells=[
                    types.NotebookCell(kind=kind, document=uri)
                    for (kind, _, _), uri in zip(cells, cell_uris, strict=True)
                ],
            ),
            cell_text_documents=[
                types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)
                for (_, language, text), uri in zip(cells, cell_uris, strict=True)
            ],
        )
    )
    return cell_uris


async def test_a_notebook_cell_is_completed_with_the_cells_above(
    client: LanguageClient, qwen2_model, tmp_path
):
    """VS Code syncs a Jupyter notebook as one document of cells: a cell is completed as
    part of the notebook's code (the cells of its language joined, Markdown left out),
    and the suggestion lands on the cell's own line. A Markdown cell is not completed."""
    ws = tmp_path / "ws"
    ws.mkdir()
    init = options(qwen2_model)
    result = await start_with_notebooks(client, ws, init)
    assert result.capabilities.notebook_document_sync is not None
    notebook = ws / "analysis.ipynb"
    cell_uris = open_notebook(client, notebook, CELLS)
    assert (await wait_model(client))["model"] == "ready"
    last = CELLS[2][2]
    got = await inline(client, cell_uris[2], end_of(last))
    assert got is not None and len(got.items) == 1
    item = got.items[0]
    assert item.range is not None and item.range.start == end_of(last)  # the cell's line

    # The same as the engine gives for the notebook's code as one document.
    virtual = CELLS[0][2] + "\n\n" + last
    settings = load_settings(init).settings
    with LlamaEngine(EngineConfig(model_path=str(qwen2_model), n_ctx=4096, n_threads=1)) as e:
        pos = end_of(virtual)
        want = Completer(e, settings).complete(
            CompletionRequest(
                path=cell_uris[2],
                text=virtual,
                line=pos.line,
                character=pos.character,
                display_path="analysis.ipynb",
                repo_name="ws",
                language_id="python",
            )
        )
    assert want.suggestion is not None and item.insert_text == want.suggestion.text

    markdown = CELLS[1][2]
    off = await inline(client, cell_uris[1], end_of(markdown))
    assert off is None or not off.items


async def test_a_notebook_opened_is_warmed_at_the_end_of_its_last_code_cell(
    client: LanguageClient, qwen2_model, tmp_path
):
    """As a file opened is, a notebook opened is warmed where typing most likely starts:
    the end of its last code cell, with the cells joined. The first completion there
    then evaluates only its last line."""
    ws = tmp_path / "ws"
    ws.mkdir()
    init = options(qwen2_model)
    init["engine"] = {"warmup": True, "prefetch": False}
    await start_with_notebooks(client, ws, init)
    notebook = ws / "analysis.ipynb"
    cell_uris = open_notebook(client, notebook, CELLS)
    assert (await wait_model(client))["model"] == "ready"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        warmed = [e for e in (await stats(client))["recent"] if e["kind"] == "warmup"]
        if warmed:
            break
        await asyncio.sleep(0.05)
    assert [e["path"] for e in warmed] == [cell_uris[2]]
    prompt = warmed[0]["evaluatedTokens"]
    await inline(client, cell_uris[2], end_of(CELLS[2][2]))
    done = [e for e in (await stats(client))["recent"] if e["kind"] == "completion"][-1]
    assert done["reusedTokens"] >= prompt and done["evaluatedTokens"] < prompt / 2, (done, prompt)


async def test_a_notebook_cells_imports_bring_their_definitions(
    client: LanguageClient, qwen2_model, tmp_path
):
    """The joined cells are read as the notebook file's text: a module imported in the
    first cell resolves from the notebook's folder, and the definition a cell below uses
    through it (an attribute, which no lookup by name can find) is in its context."""
    ws = tmp_path / "ws"
    (ws / "nb").mkdir(parents=True)
    (ws / "nb" / "helpers.py").write_text(
        "def scale(values, k):\n    return [v * k for v in values]\n"
    )
    init = options(qwen2_model)
    init["context"] = {"enabled": True, "similar": False, "recent": False}
    await start_with_notebooks(client, ws, init)  # (sends `initialized` itself)
    await wait_index(client)
    notebook = ws / "nb" / "analysis.ipynb"
    cells = (
        (types.NotebookCellKind.Code, "python", "import helpers as hp\n"),
        (types.NotebookCellKind.Markup, "markdown", "# Scaling"),
        (types.NotebookCellKind.Code, "python", "doubled = hp.scale("),
    )
    cell_uris = open_notebook(client, notebook, cells)
    assert (await wait_model(client))["model"] == "ready"
    await inline(client, cell_uris[2], end_of(cells[2][2]))
    used = (await stats(client))["recent"][-1]["context"]
    assert any(src.startswith("nb/helpers.py:1-") for src in used), used
